//! Routing between a child and the requests waiting on it: ids renumbered toward the child
//! and mapped back, notifications and server-initiated requests sent to the request they belong
//! to (or the GET stream, or a backlog), and waiting requests failed at once when their child
//! exits or writes a message over the size limit.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::json::Parsed;
use crate::jsonrpc::{error_object, error_response, scan_prefix, UPSTREAM_FAILED};

/// Messages kept for a GET stream that is not open yet.
const BACKLOG: usize = 256;

/// One message delivered to a waiting request: `(message, is_final_response)`.
pub(super) type Delivery = (Outgoing, bool);

/// A child's message on its way to the client: its value (to look at) and its bytes, written
/// from the child's own tokens (numbers of any size pass byte for byte).
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) value: Value,
    pub(super) bytes: Bytes,
}

impl Outgoing {
    pub(super) fn new(msg: Parsed<'_>) -> Outgoing {
        let bytes = Bytes::from(msg.to_vec());
        Outgoing {
            value: msg.value,
            bytes,
        }
    }
}

impl From<Value> for Outgoing {
    fn from(value: Value) -> Outgoing {
        Outgoing::new(Parsed::from(value))
    }
}

impl std::ops::Deref for Outgoing {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

pub(super) struct Pending {
    pub(super) orig: Value,
    pub(super) tx: mpsc::UnboundedSender<Delivery>,
    pub(super) progress: Option<Value>,
    pub(super) generation: u64,
    pub(super) seq: u64,
}

#[derive(Default)]
pub(super) struct Router {
    next: u64,
    seq: u64,
    pub(super) pending: HashMap<u64, Pending>,
    pub(super) get: Option<mpsc::UnboundedSender<Delivery>>,
    pub(super) backlog: VecDeque<Outgoing>,
    /// The newest generation whose child exited, and the server's name: a request registered
    /// for it afterwards (the child died between `ensure_child` and `register`) fails at once
    /// instead of waiting for an answer that cannot come.
    exited: Option<(u64, String)>,
}

impl Router {
    pub(super) fn register(
        &mut self,
        orig: Value,
        tx: mpsc::UnboundedSender<Delivery>,
        progress: Option<Value>,
        generation: u64,
    ) -> u64 {
        self.next += 1;
        self.seq += 1;
        let n = self.next;
        self.pending.insert(
            n,
            Pending {
                orig,
                tx,
                progress,
                generation,
                seq: self.seq,
            },
        );
        if let Some((g, server)) = &self.exited {
            if *g >= generation {
                let server = server.clone();
                self.fail_generation(generation, &server);
            }
        }
        n
    }

    pub(super) fn route(&mut self, mut parsed: Parsed<'_>) {
        let msg = &mut parsed.value;
        let is_response = msg.get("method").is_none() && msg.get("id").is_some();
        if is_response {
            let n = msg.get("id").and_then(Value::as_u64);
            if let Some(p) = n.and_then(|n| self.pending.remove(&n)) {
                msg["id"] = p.orig;
                let _ = p.tx.send((Outgoing::new(parsed), true));
            }
            // Else: a cancelled or timed-out request, or an internal replay; nothing waits.
            return;
        }
        if msg.get("method").and_then(Value::as_str) == Some("notifications/cancelled") {
            // The child cancels one of our renumbered requests: name it by the client's id.
            let n = msg.pointer("/params/requestId").and_then(Value::as_u64);
            if let Some(p) = n.and_then(|n| self.pending.get(&n)) {
                msg["params"]["requestId"] = p.orig.clone();
            }
        }
        let token = msg.pointer("/params/progressToken").cloned();
        let msg = Outgoing::new(parsed);
        let target = match &token {
            Some(t) => self
                .pending
                .values()
                .find(|p| p.progress.as_ref() == Some(t))
                .or_else(|| self.pending.values().max_by_key(|p| p.seq)),
            None => self.pending.values().max_by_key(|p| p.seq),
        };
        let msg = match target {
            Some(p) => match p.tx.send((msg, false)) {
                Ok(()) => return,
                Err(mpsc::error::SendError((m, _))) => m,
            },
            None => msg,
        };
        let msg = match &self.get {
            Some(g) => match g.send((msg, false)) {
                Ok(()) => return,
                Err(mpsc::error::SendError((m, _))) => m,
            },
            None => msg,
        };
        self.get = None;
        self.push_backlog(msg);
    }

    fn push_backlog(&mut self, m: Outgoing) {
        if self.backlog.len() == BACKLOG {
            self.backlog.pop_front();
            tracing::debug!("stdio upstream backlog full: dropped the oldest unsolicited message");
        }
        self.backlog.push_back(m);
    }

    /// Fails every request of `generation` (its child exited).
    pub(super) fn fail_generation(&mut self, generation: u64, server: &str) {
        if self.exited.as_ref().is_none_or(|(g, _)| *g < generation) {
            self.exited = Some((generation, server.to_owned()));
        }
        self.fail_all(
            generation,
            &format!(
                "upstream {server} process exited before answering; it will be restarted on the next request"
            ),
        );
    }

    /// Answers every waiting request of `generation` with JSON-RPC error `message`.
    fn fail_all(&mut self, generation: u64, message: &str) -> usize {
        let dead: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.generation == generation)
            .map(|(n, _)| *n)
            .collect();
        for n in &dead {
            self.fail_one(*n, message);
        }
        dead.len()
    }

    /// Answers waiting request `n` with JSON-RPC error `message`; false when nothing waits.
    pub(super) fn fail_one(&mut self, n: u64, message: &str) -> bool {
        let Some(p) = self.pending.remove(&n) else {
            return false;
        };
        let err = error_response(p.orig, error_object(UPSTREAM_FAILED, message));
        let _ = p.tx.send((err.into(), true));
        true
    }

    /// The child of `generation` wrote a line over the size limit, of which `prefix` is the
    /// start; the line was discarded. Tells whoever waits for it, at once: the request it
    /// answers when its id can be read, else every waiting request of that child (none can
    /// be ruled out). Returns the id of the child's own request when the line was one.
    pub(super) fn withhold_oversized(&mut self, prefix: &[u8], generation: u64, message: &str) -> Oversized {
        let scan = scan_prefix(prefix);
        if scan.method {
            return match scan.id {
                Some(id) => Oversized::ChildRequest(id),
                None => Oversized::Notification,
            };
        }
        match scan.id {
            Some(id) => {
                let hit = id.as_u64().is_some_and(|n| {
                    self.pending.get(&n).is_some_and(|p| p.generation == generation)
                        && self.fail_one(n, message)
                });
                Oversized::Response { waiting: hit }
            }
            None => Oversized::Unknown {
                failed: self.fail_all(generation, message),
            },
        }
    }
}

/// What an oversized line from a child turned out to be, as far as its prefix tells.
#[derive(Debug, PartialEq)]
pub(super) enum Oversized {
    /// A request from the child, with its id (the child should get an error).
    ChildRequest(Value),
    /// A notification: dropped.
    Notification,
    /// A response; `waiting` when a request waited for it (and got the error).
    Response { waiting: bool },
    /// No id could be read: this many waiting requests got the error.
    Unknown { failed: usize },
}

/// For the log: never shows the id, which is the child's data.
impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Oversized::ChildRequest(_) => f.write_str("a request from the server, answered with an error"),
            Oversized::Notification => f.write_str("a notification, dropped"),
            Oversized::Response { waiting: true } => f.write_str("a response; its request got the error"),
            Oversized::Response { waiting: false } => f.write_str("a response nothing waited for"),
            Oversized::Unknown { failed } => {
                write!(f, "no readable id; {failed} waiting request(s) got the error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn an_oversized_response_fails_its_request_at_once() {
        let mut r = Router::default();
        let (t1, mut r1) = mpsc::unbounded_channel();
        let (t2, mut r2) = mpsc::unbounded_channel();
        let (t3, mut r3) = mpsc::unbounded_channel();
        let a = r.register(json!("client-a"), t1, None, 1);
        let _b = r.register(json!(9), t2, None, 1);
        let _c = r.register(json!(10), t3, None, 2);
        let prefix = format!(r#"{{"jsonrpc":"2.0","id":{a},"result":{{"content":[{{"text":"xxxx"#);
        assert_eq!(
            r.withhold_oversized(prefix.as_bytes(), 1, "too big"),
            Oversized::Response { waiting: true }
        );
        // Mapped back to the client's id.
        let (err, fin) = r1.try_recv().unwrap();
        assert!(fin);
        assert_eq!(err["id"], "client-a");
        assert_eq!(err["error"]["code"], UPSTREAM_FAILED);
        assert_eq!(err["error"]["message"], "too big");
        assert!(r2.try_recv().is_err() && r3.try_recv().is_err());
        // A request or notification from the child: nobody of ours waits for it.
        let req = br#"{"jsonrpc":"2.0","id":2,"method":"sampling/createMessage","params":{"x":"#;
        assert_eq!(
            r.withhold_oversized(req, 1, "too big"),
            Oversized::ChildRequest(json!(2))
        );
        let note = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"x":"#;
        assert_eq!(r.withhold_oversized(note, 1, "too big"), Oversized::Notification);
        // A response nobody waits for any more.
        let late = br#"{"jsonrpc":"2.0","id":99,"result":"#;
        assert_eq!(
            r.withhold_oversized(late, 1, "too big"),
            Oversized::Response { waiting: false }
        );
        assert!(r2.try_recv().is_err());
        // No id in the prefix: every waiting request of that child fails, not the others.
        let unknown = br#"{"jsonrpc":"2.0","result":{"pad":"xxxxxxxx"#;
        assert_eq!(
            r.withhold_oversized(unknown, 1, "too big"),
            Oversized::Unknown { failed: 1 }
        );
        assert_eq!(r2.try_recv().unwrap().0["id"], 9);
        assert!(r3.try_recv().is_err());
        assert_eq!(r.pending.len(), 1);
    }

    #[test]
    fn routing_prefers_progress_token_then_latest() {
        let mut r = Router::default();
        let (t1, mut r1) = mpsc::unbounded_channel();
        let (t2, mut r2) = mpsc::unbounded_channel();
        let a = r.register(json!("a"), t1, Some(json!(7)), 1);
        let _b = r.register(json!(5), t2, None, 1);
        r.route(json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}).into());
        r.route(json!({"jsonrpc":"2.0","method":"notifications/message","params":{}}).into());
        r.route(json!({"jsonrpc":"2.0","id":a,"result":{}}).into());
        assert_eq!(r1.try_recv().unwrap().0["method"], "notifications/progress");
        let (fin, is_final) = r1.try_recv().unwrap();
        assert!(is_final);
        assert_eq!(fin["id"], "a");
        assert_eq!(r2.try_recv().unwrap().0["method"], "notifications/message");
        r.fail_generation(1, "x");
        let (err, is_final) = r2.try_recv().unwrap();
        assert!(is_final);
        assert_eq!(err["id"], 5);
        assert_eq!(err["error"]["code"], UPSTREAM_FAILED);
        // Nobody waits: unsolicited messages are kept for the GET stream.
        r.route(json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed"}).into());
        assert_eq!(r.backlog.len(), 1);
    }

    #[test]
    fn a_request_registered_after_its_child_exited_fails_at_once() {
        let mut r = Router::default();
        r.fail_generation(3, "crm");
        let (t, mut rx) = mpsc::unbounded_channel();
        r.register(json!(9), t, None, 3);
        let (err, is_final) = rx.try_recv().unwrap();
        assert!(is_final);
        assert_eq!(err["id"], 9);
        assert!(err["error"]["message"].as_str().unwrap().contains("crm"));
        assert!(r.pending.is_empty());
        // A newer child's requests wait for it.
        let (t, mut rx) = mpsc::unbounded_channel();
        r.register(json!(10), t, None, 4);
        assert!(rx.try_recv().is_err());
    }
}
