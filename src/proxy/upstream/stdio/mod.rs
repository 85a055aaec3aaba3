//! stdio upstream: child processes speaking newline-delimited JSON-RPC, presented as a
//! Streamable HTTP server.
//!
//! # Children
//! - **Session-based protocol**: an `initialize` POST without a session id starts a new child and a
//!   new session; the gateway mints the `Mcp-Session-Id`. One child per downstream session, so
//!   no two sessions share a process's state. DELETE ends the session and reaps the child.
//! - **Stateless requests** (no session id, not `initialize`, e.g. the 2026-07-28 revision's
//!   `server/discover` and `tools/call` with `_meta`): one shared child per (server, client).
//!   Clients never share a process; one client's stateless requests share one.
//!
//! # Emulating Streamable HTTP
//! A POSTed request gets `application/json` when the child's first message for it is the
//! response, or `text/event-stream` when notifications or server-initiated requests come first
//! (they are streamed as they arrive, then the response ends the stream). Notifications and
//! responses from the client get 202. GET (with a session) opens the stream for messages not
//! tied to a request. Request ids are renumbered toward the child so that concurrent requests
//! can never collide; `notifications/cancelled` is renumbered too, and a client that goes away
//! before its response cancels the request in the child.
//!
//! Routing of child messages: a response goes to its request; a notification carrying a
//! `progressToken` goes to the request that set that token; other notifications and
//! server-initiated requests go to the most recent open request of the session, else the GET
//! stream, else a small backlog delivered when a GET stream opens.
//!
//! # What the child may write
//! - **stdout**: one JSON-RPC message per line. A line is relayed only if it is one: an object
//!   with `"jsonrpc":"2.0"` that is a request (`method` and a string or number `id`), a
//!   notification (`method`, no `id`) or a response (`id` and exactly one of `result`/`error`),
//!   or a non-empty array of those (`parse_child_line`). Anything else (a banner, `42`,
//!   `{"not":"jsonrpc"}`, a batch with one bad element) is dropped with a warning that names the
//!   server and the reason, never the content. Blank lines are ignored, a trailing `\r` is
//!   stripped.
//! - **Oversized stdout lines** (over `max(max_response_bytes, max_sse_event_bytes)`) are never
//!   buffered: their first 64 KiB are scanned for a top-level `id`. A response's waiting request
//!   gets a JSON-RPC error (`-32002`) at once saying the message exceeded the size limit and was
//!   withheld; when no id can be read, every waiting request of that child process gets it
//!   (rather than waiting for the upstream timeout). An oversized request from the child is
//!   answered with an error (`-32600`) to the child; an oversized notification is dropped.
//! - **stderr** is drained as bytes until EOF, whatever it holds (invalid UTF-8, no newlines),
//!   so the child never blocks or gets `EPIPE` on it. Lines end at `\n` or `\r` (progress
//!   bars) and go to the log at debug level, decoded lossily, with emails and phone numbers
//!   redacted by the detector (`[EMAIL]`, `[PHONE]`). Lines over 8 KiB are logged truncated
//!   (with the number of bytes skipped) and the rest is discarded: memory stays bounded.
//!
//! # Failures
//! When a child exits, its in-flight requests get JSON-RPC errors (`-32002`). The next request
//! starts a new child; for a session, the gateway first replays the session's `initialize` and
//! `notifications/initialized` so the session continues.
//!
//! # Where
//! `http.rs` emulates Streamable HTTP (POST, GET, DELETE; JSON or SSE answers), `router.rs`
//! renumbers ids and routes each child message to whoever waits for it, `child.rs` starts,
//! restarts and reaps children and reads their stdout, `stderr.rs` drains and redacts stderr.

mod child;
mod http;
mod router;
mod stderr;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use serde_json::Value;

use crate::config::Limits;
use crate::detect::Detector;
use crate::json::Parsed;
use crate::proxy::metrics::Metrics;
use crate::vault::SessionStore;
use child::ChildHandle;
use router::Router;

/// Most child processes (sessions plus shared) one stdio server may run at once.
pub const MAX_CHILDREN: usize = 256;

struct Spec {
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

struct Inner {
    name: Arc<str>,
    spec: Spec,
    timeout: Duration,
    max_line: usize,
    /// The `[limits]` setting that `max_line` comes from, named in errors.
    max_line_setting: &'static str,
    metrics: Arc<Metrics>,
    detector: Arc<Detector>,
    sessions: DashMap<String, Arc<Session>>,
    shared: DashMap<Arc<str>, Arc<Session>>,
    generation: AtomicU64,
    idle: Duration,
    epoch: Instant,
    /// The store shared by replicas and this replica's id: sessions are recorded there so that
    /// another replica can say where one runs.
    store: OnceLock<(Arc<dyn SessionStore>, Arc<str>)>,
}

/// The shared-store record of a stdio session: its children run on one replica.
const STDIO_OWNER: &str = "stdio-on-replica:";

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A stdio upstream. Cheap to clone.
#[derive(Clone)]
pub struct StdioUpstream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StdioUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioUpstream")
            .field("name", &self.inner.name)
            .field("command", &self.inner.spec.command)
            .finish_non_exhaustive()
    }
}

/// One child's worth of state: a downstream session (`id` is its `Mcp-Session-Id`), or one
/// client's stateless requests (no id).
struct Session {
    id: Option<String>,
    client: Arc<str>,
    child: tokio::sync::Mutex<Option<ChildHandle>>,
    router: Arc<Mutex<Router>>,
    /// The session's `initialize` request (id removed) and whether `initialized` followed, for
    /// replay into a restarted child.
    init: Mutex<Option<(Parsed<'static>, bool)>>,
    /// Milliseconds since `Inner::epoch` of the last request.
    last: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the router half-updated in a way that
    // matters more than losing the process; recover the guard.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One line for the child: the message written from its own tokens (numbers of any size pass
/// byte for byte), then a newline. The writer never emits a raw newline.
fn line(msg: &Parsed<'_>) -> Bytes {
    let mut b = msg.to_vec();
    b.push(b'\n');
    Bytes::from(b)
}

/// [`line`] for a message the gateway wrote itself.
fn line_of(v: Value) -> Bytes {
    line(&Parsed::from(v))
}

impl Session {
    fn new(id: Option<String>, client: Arc<str>) -> Session {
        Session {
            id,
            client,
            child: tokio::sync::Mutex::new(None),
            router: Arc::new(Mutex::new(Router::default())),
            init: Mutex::new(None),
            last: AtomicU64::new(0),
        }
    }

    async fn shutdown(&self) {
        if let Some(c) = self.child.lock().await.take() {
            c.shutdown().await;
        }
        let mut r = lock(&self.router);
        r.get = None;
        let gens: Vec<u64> = r.pending.values().map(|p| p.generation).collect();
        for g in gens {
            r.fail_generation(g, "");
        }
    }
}

impl StdioUpstream {
    /// An upstream that runs `command args` with `env` added.
    pub fn new(
        name: &str,
        command: &str,
        args: &[String],
        env: &[(String, String)],
        limits: &Limits,
        metrics: Arc<Metrics>,
    ) -> StdioUpstream {
        StdioUpstream {
            inner: Arc::new(Inner {
                name: Arc::from(name),
                spec: Spec {
                    command: command.to_string(),
                    args: args.to_vec(),
                    env: env.to_vec(),
                },
                timeout: limits.upstream_timeout,
                max_line: limits.max_response_bytes.max(limits.max_sse_event_bytes),
                max_line_setting: if limits.max_sse_event_bytes > limits.max_response_bytes {
                    "max_sse_event_bytes"
                } else {
                    "max_response_bytes"
                },
                metrics,
                detector: Arc::new(Detector::builtin()),
                sessions: DashMap::new(),
                store: OnceLock::new(),
                shared: DashMap::new(),
                generation: AtomicU64::new(0),
                idle: limits.session_idle,
                epoch: Instant::now(),
            }),
        }
    }

    /// Number of live sessions (session-based protocol).
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Ends sessions (and shared children) idle for longer than `limits.session_idle`, with no
    /// request in flight and no GET stream open; their children are stopped and reaped.
    pub async fn sweep(&self) -> usize {
        let up = &*self.inner;
        let cutoff = up.now_ms().saturating_sub(up.idle.as_millis() as u64);
        let idle = |s: &Session| {
            let r = lock(&s.router);
            s.last.load(Ordering::Relaxed) < cutoff
                && r.pending.is_empty()
                && r.get.as_ref().is_none_or(|g| g.is_closed())
        };
        let mut stale = Vec::new();
        take_where(&up.sessions, idle, &mut stale);
        take_where(&up.shared, idle, &mut stale);
        let n = stale.len();
        futures_util::future::join_all(stale.iter().map(|s| s.shutdown())).await;
        n
    }

    /// Stops and reaps every child.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Session>> = self
            .inner
            .sessions
            .iter()
            .map(|e| e.value().clone())
            .chain(self.inner.shared.iter().map(|e| e.value().clone()))
            .collect();
        self.inner.sessions.clear();
        self.inner.shared.clear();
        // Concurrently: each child may take EXIT_GRACE to exit.
        futures_util::future::join_all(all.iter().map(|s| s.shutdown())).await;
    }

    /// Records this upstream's sessions in `store` under `replica`, so that a request for one
    /// that reaches another replica gets an error saying where it runs. Set once.
    pub fn share_sessions(&self, store: Arc<dyn SessionStore>, replica: &str) {
        let _ = self.inner.store.set((store, Arc::from(replica)));
    }
}

/// Removes the sessions of `map` for which `pred` holds, adding them to `out`.
fn take_where<K: Eq + std::hash::Hash>(
    map: &DashMap<K, Arc<Session>>,
    pred: impl Fn(&Session) -> bool,
    out: &mut Vec<Arc<Session>>,
) {
    map.retain(|_, s| {
        let take = pred(s);
        if take {
            out.push(s.clone());
        }
        !take
    });
}
