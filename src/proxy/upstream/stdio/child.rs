//! Child processes: started, restarted with the session's `initialize` replayed, stopped and
//! reaped; their stdout read line by line into the router.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::router::{Oversized, Router};
use super::stderr::{drain_stderr, redact_prefix, STDERR_LINE};
use super::{line, line_of, lock, Inner, Session};
use crate::json::{self, Parsed};
use crate::jsonrpc::{error_object, error_response, INVALID_REQUEST};
use crate::proxy::lines::{read_line_bounded, Ends, LineRead};

/// How long a child gets to exit after its stdin is closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How much of an oversized stdout line is kept to find its `id`.
const ID_PREFIX: usize = 64 << 10;

/// A running child: where its input goes, whether it still runs, and how to stop it.
pub(super) struct ChildHandle {
    stdin: mpsc::Sender<Bytes>,
    alive: Arc<AtomicBool>,
    generation: u64,
    stop: Option<oneshot::Sender<()>>,
    reaped: Option<tokio::task::JoinHandle<()>>,
}

impl ChildHandle {
    pub(super) async fn shutdown(mut self) {
        drop(self.stdin);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(r) = self.reaped.take() {
            let _ = r.await;
        }
    }
}

impl Session {
    /// The live child's stdin and generation, starting (and re-initializing) one if needed.
    pub(super) async fn ensure_child(
        &self,
        up: &Inner,
        replay: bool,
    ) -> Result<(mpsc::Sender<Bytes>, u64), String> {
        let mut slot = self.child.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.alive.load(Ordering::Acquire) {
                return Ok((c.stdin.clone(), c.generation));
            }
        }
        if let Some(old) = slot.take() {
            old.shutdown().await;
            tracing::info!(server = %up.name, "restarting stdio upstream after it exited");
        }
        let generation = up.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let c = spawn(up, self.router.clone(), generation).map_err(|e| {
            tracing::warn!(server = %up.name, error = %e, "cannot start stdio upstream");
            format!("upstream {} could not be started", up.name)
        })?;
        let stdin = c.stdin.clone();
        *slot = Some(c);
        let init = lock(&self.init).clone();
        if let (true, Some((init, initialized))) = (replay, init) {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let n = lock(&self.router).register(Value::Null, tx, None, generation);
            let mut msg = init;
            msg.value["id"] = json!(n);
            let sent = stdin.send(line(&msg)).await.is_ok();
            let answered = sent
                && matches!(tokio::time::timeout(up.timeout, rx.recv()).await, Ok(Some((v, true))) if v.get("result").is_some());
            if !answered {
                return Err(format!(
                    "upstream {} restarted but did not accept the session's initialize",
                    up.name
                ));
            }
            if initialized {
                let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                let _ = stdin.send(line_of(note)).await;
            }
        }
        Ok((stdin, generation))
    }
}

fn spawn(up: &Inner, router: Arc<Mutex<Router>>, generation: u64) -> std::io::Result<ChildHandle> {
    let mut cmd = tokio::process::Command::new(&up.spec.command);
    cmd.args(&up.spec.args)
        .envs(up.spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let alive = Arc::new(AtomicBool::new(true));
    let name = up.name.clone();

    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if stdin.write_all(&b).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
        // Dropping stdin closes it: the child's signal to exit.
    });

    let max_line = up.max_line;
    let too_large = format!(
        "upstream {name} sent a message larger than the gateway's size limit ([limits] {} = {max_line} bytes); it was withheld",
        up.max_line_setting
    );
    // Weak: the reader must not keep the child's stdin open (closing it is how a child is told
    // to exit).
    let stdin_w = tx.downgrade();
    let alive_r = alive.clone();
    let name_r = name.clone();
    let reader = tokio::spawn(async move {
        let mut out = BufReader::new(stdout);
        let mut buf = Vec::with_capacity(8192);
        loop {
            buf.clear();
            match read_line_bounded(&mut out, &mut buf, max_line, ID_PREFIX, Ends::Newline).await {
                Ok(LineRead::Eof) | Err(_) => break,
                Ok(LineRead::TooLong(n)) => {
                    let what = lock(&router).withhold_oversized(&buf, generation, &too_large);
                    tracing::warn!(server = %name_r, bytes = n, limit = max_line, outcome = %what,
                        "stdio upstream sent a message over the size limit; withheld");
                    if let (Oversized::ChildRequest(id), Some(stdin)) = (what, stdin_w.upgrade()) {
                        let err = error_response(
                            id,
                            error_object(
                                INVALID_REQUEST,
                                "request larger than the gateway's size limit; it was not relayed",
                            ),
                        );
                        // Never wait here: a child that does not read its stdin would
                        // block the reader, and so itself on its stdout.
                        let _ = stdin.try_send(line_of(err));
                    }
                }
                Ok(LineRead::Line) => {
                    let text = buf.strip_suffix(b"\r").unwrap_or(&buf);
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match parse_child_line(text).map(Parsed::into_messages) {
                        Ok(messages) => {
                            let mut r = lock(&router);
                            for m in messages {
                                r.route(m)
                            }
                        }
                        Err(why) => {
                            tracing::warn!(server = %name_r, bytes = text.len(), reason = %why,
                                "stdio upstream wrote a line that is not a JSON-RPC message; dropped")
                        }
                    }
                }
            }
        }
        alive_r.store(false, Ordering::Release);
        lock(&router).fail_generation(generation, &name_r);
    });

    let detector = up.detector.clone();
    let name_e = name.clone();
    tokio::spawn(async move {
        let drained = drain_stderr(stderr, |text, skipped| {
            let text = redact_prefix(&detector, &text, STDERR_LINE);
            if skipped == 0 {
                tracing::debug!(server = %name_e, stderr = %text, "upstream stderr");
            } else {
                tracing::debug!(server = %name_e, stderr = %text, skipped_bytes = skipped, "upstream stderr (line truncated)");
            }
        })
        .await;
        if let Err(e) = drained {
            tracing::debug!(server = %name_e, error = %e, "cannot read upstream stderr any more");
        }
    });

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let alive_w = alive.clone();
    let reaped = tokio::spawn(async move {
        tokio::select! {
            status = child.wait() => {
                tracing::info!(server = %name, status = ?status.ok(), "stdio upstream exited");
            }
            _ = stop_rx => {
                // stdin is closed by now; give the child a moment, then kill it.
                if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
        alive_w.store(false, Ordering::Release);
        // The reader sees EOF once the process is gone and fails what is still pending.
        let _ = reader.await;
    });

    Ok(ChildHandle {
        stdin: tx,
        alive,
        generation,
        stop: Some(stop_tx),
        reaped: Some(reaped),
    })
}

/// Why a line from a child's stdout is not relayed. Never holds the line's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum LineRejected {
    #[error("not JSON")]
    NotJson,
    #[error("not an object or an array of objects")]
    NotObject,
    #[error("no \"jsonrpc\": \"2.0\" member")]
    NotJsonRpc,
    #[error("\"method\" is not a string")]
    BadMethod,
    #[error("a request's id must be a string or a number")]
    BadRequestId,
    #[error("a response needs an id and exactly one of result or error (an object)")]
    BadResponse,
    #[error("an empty batch")]
    EmptyBatch,
    #[error("batch element {index}: {reason}")]
    InBatch { index: usize, reason: Box<LineRejected> },
}

/// One line of a child's stdout (without its terminator) as a JSON-RPC message or batch, or
/// why it is none. The only place child output is parsed.
fn parse_child_line(bytes: &[u8]) -> Result<Parsed<'_>, LineRejected> {
    let parsed = json::parse(bytes).map_err(|_| LineRejected::NotJson)?;
    match &parsed.value {
        Value::Array(items) if items.is_empty() => return Err(LineRejected::EmptyBatch),
        Value::Array(items) => {
            for (index, m) in items.iter().enumerate() {
                check_message(m).map_err(|r| LineRejected::InBatch {
                    index,
                    reason: Box::new(r),
                })?;
            }
        }
        m => check_message(m)?,
    }
    Ok(parsed)
}

/// A JSON-RPC 2.0 request, notification or response.
fn check_message(m: &Value) -> Result<(), LineRejected> {
    let o = m.as_object().ok_or(LineRejected::NotObject)?;
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(LineRejected::NotJsonRpc);
    }
    let id = o.get("id");
    match o.get("method") {
        Some(Value::String(_)) => match id {
            None | Some(Value::String(_) | Value::Number(_)) => Ok(()),
            Some(_) => Err(LineRejected::BadRequestId),
        },
        Some(_) => Err(LineRejected::BadMethod),
        None => {
            let one_outcome = match (o.get("result"), o.get("error")) {
                (Some(_), None) => true,
                (None, Some(e)) => e.is_object(),
                _ => false,
            };
            let id_ok = matches!(id, Some(Value::String(_) | Value::Number(_) | Value::Null));
            if one_outcome && id_ok {
                Ok(())
            } else {
                Err(LineRejected::BadResponse)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_jsonrpc_messages_are_relayed() {
        let ok = [
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/message"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"}]"#,
        ];
        for l in ok {
            assert!(parse_child_line(l.as_bytes()).is_ok(), "{l}");
        }
        use LineRejected::*;
        let bad: [(&[u8], LineRejected); 16] = [
            (b"{\"not\":\"jsonrpc\"}", NotJsonRpc),
            (
                b"[1,2,3]",
                InBatch {
                    index: 0,
                    reason: Box::new(NotObject),
                },
            ),
            (b"42", NotObject),
            (b"\"x\"", NotObject),
            (b"null", NotObject),
            (b"[]", EmptyBatch),
            (b"server started", NotJson),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\xff}", NotJson),
            (b"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", NotJsonRpc),
            (b"{\"jsonrpc\":\"2.0\"}", BadResponse),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1}", BadResponse),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}",
                BadResponse,
            ),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"no\"}", BadResponse),
            (b"{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"x\"}", BadRequestId),
            (b"{\"jsonrpc\":\"2.0\",\"method\":7}", BadMethod),
            (
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}},[]]",
                InBatch {
                    index: 1,
                    reason: Box::new(NotObject),
                },
            ),
        ];
        for (l, why) in bad {
            assert_eq!(
                parse_child_line(l).err(),
                Some(why),
                "{}",
                String::from_utf8_lossy(l)
            );
        }
        // The reason never quotes the line.
        let e = parse_child_line(b"{\"secret\":\"ana.lima@example.org\"}").unwrap_err();
        assert!(!e.to_string().contains("ana"), "{e}");
    }
}
