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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::{new_session_id, MCP_SESSION_ID};
use crate::config::Limits;
use crate::detect::Detector;
use crate::json::{self, Parsed};
use crate::jsonrpc::{
    error_object, error_response, scan_prefix, INVALID_REQUEST, PARSE_ERROR, SESSION_NOT_FOUND,
    UPSTREAM_FAILED,
};
use crate::layer::response::http_error;
use crate::proxy::body::{empty, full, Body, BoxError};
use crate::proxy::lines::{read_line_bounded, Ends, LineRead};
use crate::proxy::metrics::Metrics;
use crate::vault::{SessionStore, SharedSession};

/// Most child processes (sessions plus shared) one stdio server may run at once.
pub const MAX_CHILDREN: usize = 256;
/// Messages kept for a GET stream that is not open yet.
const BACKLOG: usize = 256;
/// How long a child gets to exit after its stdin is closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How much of an oversized stdout line is kept to find its `id`.
const ID_PREFIX: usize = 64 << 10;
/// Longest stderr line logged; longer ones are truncated.
const STDERR_LINE: usize = 8 << 10;
/// Bytes read past [`STDERR_LINE`] so that an email or phone number cut by the truncation is
/// still seen whole by the detector, and redacted (longer than any address: 254 bytes).
const STDERR_LOOKAHEAD: usize = 512;

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

/// One message delivered to a waiting request: `(message, is_final_response)`.
type Delivery = (Outgoing, bool);

/// A child's message on its way to the client: its value (to look at) and its bytes, written
/// from the child's own tokens (numbers of any size pass byte for byte).
#[derive(Debug)]
struct Outgoing {
    value: Value,
    bytes: Bytes,
}

impl Outgoing {
    fn new(msg: Parsed<'_>) -> Outgoing {
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

struct Pending {
    orig: Value,
    tx: mpsc::UnboundedSender<Delivery>,
    progress: Option<Value>,
    generation: u64,
    seq: u64,
}

#[derive(Default)]
struct Router {
    next: u64,
    seq: u64,
    pending: HashMap<u64, Pending>,
    get: Option<mpsc::UnboundedSender<Delivery>>,
    backlog: VecDeque<Outgoing>,
}

impl Router {
    fn register(
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
        n
    }

    fn route(&mut self, mut parsed: Parsed<'_>) {
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
    fn fail_generation(&mut self, generation: u64, server: &str) {
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
    fn fail_one(&mut self, n: u64, message: &str) -> bool {
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
    fn withhold_oversized(&mut self, prefix: &[u8], generation: u64, message: &str) -> Oversized {
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
enum Oversized {
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

struct ChildHandle {
    stdin: mpsc::Sender<Bytes>,
    alive: Arc<AtomicBool>,
    generation: u64,
    stop: Option<oneshot::Sender<()>>,
    reaped: Option<tokio::task::JoinHandle<()>>,
}

impl ChildHandle {
    async fn shutdown(mut self) {
        drop(self.stdin);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(r) = self.reaped.take() {
            let _ = r.await;
        }
    }
}

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

    /// The live child's stdin and generation, starting (and re-initializing) one if needed.
    async fn ensure_child(&self, up: &Inner, replay: bool) -> Result<(mpsc::Sender<Bytes>, u64), String> {
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

/// Reads a child's stderr until EOF as bytes, never holding more than a few KiB: each line
/// (ended by `\n` or `\r`; empty ones skipped) goes to `log` lossily decoded, with the number of
/// bytes skipped when it was longer than [`STDERR_LINE`]. A truncated line comes with
/// [`STDERR_LOOKAHEAD`] bytes past the limit: give it to [`redact_prefix`] so that no cut-off
/// email or phone number is shown.
async fn drain_stderr<R: AsyncRead + Unpin>(
    stderr: R,
    mut log: impl FnMut(std::borrow::Cow<'_, str>, usize),
) -> std::io::Result<()> {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::with_capacity(256);
    let keep = STDERR_LINE + STDERR_LOOKAHEAD;
    loop {
        buf.clear();
        match read_line_bounded(&mut r, &mut buf, STDERR_LINE, keep, Ends::NewlineOrReturn).await? {
            LineRead::Eof => return Ok(()),
            LineRead::Line if buf.is_empty() => {}
            LineRead::Line => log(String::from_utf8_lossy(&buf), 0),
            LineRead::TooLong(n) => {
                log(String::from_utf8_lossy(&buf), n.saturating_sub(STDERR_LINE));
            }
        }
    }
}

/// `text` with every detected span replaced by `[KIND]`.
#[cfg(test)]
fn redact(d: &Detector, text: &str) -> String {
    redact_prefix(d, text, text.len())
}

/// The first `max` bytes of `text` (cut back to a character boundary) with every detected span
/// replaced by `[KIND]`. Detection runs on all of `text`, so a span that starts before the cut
/// and ends after it is still replaced, never shown in part.
fn redact_prefix(d: &Detector, text: &str, max: usize) -> String {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut);
    let mut at = 0;
    for s in d.find(text) {
        if s.start >= cut {
            break;
        }
        out.push_str(&text[at..s.start]);
        out.push('[');
        out.push_str(s.kind.as_str());
        out.push(']');
        at = s.end;
    }
    if at < cut {
        out.push_str(&text[at..cut]);
    }
    out
}

/// Cancels a request in the child when its waiter goes away before the response.
struct CancelGuard {
    router: Arc<Mutex<Router>>,
    stdin: mpsc::Sender<Bytes>,
    n: u64,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if lock(&self.router).pending.remove(&self.n).is_some() {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": self.n, "reason": "the client went away"}});
            let _ = self.stdin.try_send(line_of(note));
        }
    }
}

/// The SSE body of one POSTed request: queued messages, then the response, then the end.
struct SseBody {
    first: Option<Outgoing>,
    rx: mpsc::UnboundedReceiver<Delivery>,
    guard: Option<CancelGuard>,
    done: bool,
    /// For a request's stream: its id, the longest silence allowed and the timer. When the
    /// child stays silent that long the stream ends with a JSON-RPC error (and the guard
    /// cancels the request in the child). GET streams have none.
    deadline: Option<(Value, Duration, Pin<Box<tokio::time::Sleep>>)>,
}

fn sse_event(m: &Outgoing) -> Bytes {
    let mut b = Vec::with_capacity(m.bytes.len() + 24);
    b.extend_from_slice(b"event: message\ndata: ");
    b.extend_from_slice(&m.bytes);
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(v) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(sse_event(&v)))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => {
                let this = &mut *self;
                if let Some((id, _, timer)) = this.deadline.as_mut() {
                    if timer.as_mut().poll(cx).is_ready() {
                        this.done = true;
                        let err = error_response(
                            id.clone(),
                            error_object(
                                UPSTREAM_FAILED,
                                "upstream went silent for longer than the upstream timeout; the request was cancelled",
                            ),
                        );
                        return Poll::Ready(Some(Ok(Frame::data(sse_event(&err.into())))));
                    }
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some((v, fin))) => {
                if fin {
                    self.done = true;
                    if let Some(g) = self.guard.as_mut() {
                        g.armed = false;
                    }
                }
                if let Some((_, idle, timer)) = self.deadline.as_mut() {
                    let next = tokio::time::Instant::now() + *idle;
                    timer.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(Frame::data(sse_event(&v)))))
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }
}

fn sse_response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn json_response(m: &Outgoing) -> Response<Body> {
    let mut r = Response::new(full(m.bytes.clone()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn accepted() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
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
        up.sessions.retain(|_, s| {
            let keep = !idle(s);
            if !keep {
                stale.push(s.clone());
            }
            keep
        });
        up.shared.retain(|_, s| {
            let keep = !idle(s);
            if !keep {
                stale.push(s.clone());
            }
            keep
        });
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

    /// The answer to a request for a session this replica does not hold: where it runs, when
    /// another replica recorded it, or "not found".
    async fn not_here(&self, session: &str, client: &str) -> Response<Body> {
        if let Some((store, here)) = self.inner.store.get() {
            if let Ok(Some(rec)) = store.get(&self.inner.name, session, self.inner.idle).await {
                if let Some(owner) = rec.upstream_id.strip_prefix(STDIO_OWNER) {
                    if rec.client == client && owner != &**here {
                        return http_error(
                            StatusCode::MISDIRECTED_REQUEST,
                            None,
                            SESSION_NOT_FOUND,
                            &format!(
                                "this session's stdio server {} runs on gateway replica {owner:?}, not on {here:?}: \
                                 route requests by their Mcp-Session-Id to the replica that answered initialize \
                                 (sticky sessions), or initialize a new session here",
                                self.inner.name
                            ),
                        );
                    }
                }
            }
        }
        http_error(
            StatusCode::NOT_FOUND,
            None,
            SESSION_NOT_FOUND,
            "session not found: it ended or expired; initialize a new one",
        )
    }

    /// Handles one Streamable HTTP request.
    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let client = super::client_of(&parts.extensions);
        let session_id = parts.headers.get(MCP_SESSION_ID).and_then(|v| v.to_str().ok());
        let session = match session_id {
            None => None,
            Some(s) => {
                let found = match self.inner.sessions.get(s) {
                    Some(sess) if sess.client == client => Some(sess.clone()),
                    _ => None,
                };
                match found {
                    Some(sess) => Some(sess),
                    None => return self.not_here(s, &client).await,
                }
            }
        };
        if let Some(s) = &session {
            s.last.store(self.inner.now_ms(), Ordering::Relaxed);
        }
        match parts.method {
            Method::POST => {
                let bytes = match body.collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => {
                        return http_error(
                            StatusCode::BAD_REQUEST,
                            None,
                            PARSE_ERROR,
                            "request body could not be read",
                        )
                    }
                };
                self.post(session, client, &bytes).await
            }
            Method::GET => match session {
                Some(s) => self.get(&s),
                None => http_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    None,
                    INVALID_REQUEST,
                    "GET needs an Mcp-Session-Id (stateless requests have no stream)",
                ),
            },
            Method::DELETE => match session {
                Some(s) => {
                    if let Some(id) = &s.id {
                        self.inner.sessions.remove(id);
                    }
                    s.shutdown().await;
                    Response::new(empty())
                }
                None => http_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    INVALID_REQUEST,
                    "DELETE needs an Mcp-Session-Id",
                ),
            },
            _ => http_error(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                INVALID_REQUEST,
                "method not allowed",
            ),
        }
    }

    fn get(&self, s: &Arc<Session>) -> Response<Body> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut r = lock(&s.router);
            for m in r.backlog.drain(..) {
                let _ = tx.send((m, false));
            }
            // A new GET stream replaces the old one (which then ends).
            r.get = Some(tx);
        }
        sse_response(crate::proxy::body::boxed(SseBody {
            first: None,
            rx,
            guard: None,
            done: false,
            deadline: None,
        }))
    }

    fn children(&self) -> usize {
        self.inner.sessions.len() + self.inner.shared.len()
    }

    async fn post(&self, session: Option<Arc<Session>>, client: Arc<str>, bytes: &[u8]) -> Response<Body> {
        let up = &*self.inner;
        let mut parsed = match json::parse(bytes) {
            Ok(p) => p.into_owned(),
            Err(e) => {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    PARSE_ERROR,
                    &format!("parse error: {e}"),
                )
            }
        };
        let msg = &mut parsed.value;
        if !msg.is_object() {
            return http_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "JSON-RPC batches are not supported by stdio upstreams; send one message per POST",
            );
        }
        let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = msg.get("id").cloned();
        let is_init = method.as_deref() == Some("initialize");
        let (session, fresh) = match session {
            Some(s) => (s, false),
            None if is_init && id.is_some() => {
                if self.children() >= MAX_CHILDREN {
                    return http_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        id.as_ref(),
                        UPSTREAM_FAILED,
                        &format!(
                            "upstream {} has too many sessions; end some (DELETE) and retry",
                            up.name
                        ),
                    );
                }
                let sid = new_session_id();
                let s = Arc::new(Session::new(Some(sid.clone()), client.clone()));
                up.sessions.insert(sid.clone(), s.clone());
                if let Some((store, here)) = up.store.get() {
                    let rec = SharedSession {
                        upstream_id: format!("{STDIO_OWNER}{here}"),
                        client: client.to_string(),
                    };
                    if let Err(e) = store.put(&up.name, &sid, &rec, up.idle).await {
                        tracing::warn!(server = %up.name, error = %e, "could not record a stdio session in the shared store");
                    }
                }
                (s, true)
            }
            None => {
                if !up.shared.contains_key(&client) && self.children() >= MAX_CHILDREN {
                    return http_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        id.as_ref(),
                        UPSTREAM_FAILED,
                        "too many upstream processes",
                    );
                }
                let s = up
                    .shared
                    .entry(client.clone())
                    .or_insert_with(|| Arc::new(Session::new(None, client.clone())))
                    .clone();
                (s, false)
            }
        };

        session.last.store(up.now_ms(), Ordering::Relaxed);
        match (method.as_deref(), id) {
            (Some(m), Some(orig)) => {
                self.request(session, fresh, m == "initialize", parsed, orig)
                    .await
            }
            (Some(m), None) => {
                if m == "notifications/cancelled" {
                    let r = lock(&session.router);
                    let want = parsed.value.pointer("/params/requestId");
                    let hit = r
                        .pending
                        .iter()
                        .filter(|(_, p)| Some(&p.orig) == want)
                        .max_by_key(|(_, p)| p.seq)
                        .map(|(n, _)| *n);
                    drop(r);
                    match hit {
                        Some(n) => parsed.value["params"]["requestId"] = json!(n),
                        None => return accepted(), // already answered: nothing to cancel
                    }
                }
                if m == "notifications/initialized" {
                    if let Some(i) = lock(&session.init).as_mut() {
                        i.1 = true;
                    }
                }
                match session.ensure_child(up, true).await {
                    Ok((stdin, _)) => {
                        let _ = stdin.send(line(&parsed)).await;
                        accepted()
                    }
                    Err(e) => http_error(StatusCode::BAD_GATEWAY, None, UPSTREAM_FAILED, &e),
                }
            }
            (None, Some(_)) => {
                // The client's answer to a server-initiated request: ids are the child's own.
                match session.ensure_child(up, true).await {
                    Ok((stdin, _)) => {
                        let _ = stdin.send(line(&parsed)).await;
                        accepted()
                    }
                    Err(e) => http_error(StatusCode::BAD_GATEWAY, None, UPSTREAM_FAILED, &e),
                }
            }
            (None, None) => http_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "invalid JSON-RPC message",
            ),
        }
    }

    async fn request(
        &self,
        session: Arc<Session>,
        fresh: bool,
        is_init: bool,
        mut msg: Parsed<'static>,
        orig: Value,
    ) -> Response<Body> {
        let up = &*self.inner;
        let end_fresh = |s: &Arc<Session>| {
            if let Some(id) = &s.id {
                up.sessions.remove(id);
            }
        };
        let (stdin, generation) = match session.ensure_child(up, !is_init).await {
            Ok(x) => x,
            Err(e) => {
                if fresh {
                    end_fresh(&session);
                }
                return http_error(StatusCode::BAD_GATEWAY, Some(&orig), UPSTREAM_FAILED, &e);
            }
        };
        let progress = msg.value.pointer("/params/_meta/progressToken").cloned();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let n = lock(&session.router).register(orig.clone(), tx, progress, generation);
        msg.value["id"] = json!(n);
        if is_init {
            let mut stored = msg.clone();
            if let Some(o) = stored.value.as_object_mut() {
                o.remove("id");
            }
            *lock(&session.init) = Some((stored, false));
        }
        let started = Instant::now();
        if stdin.send(line(&msg)).await.is_err() {
            lock(&session.router).pending.remove(&n);
            if fresh {
                end_fresh(&session);
            }
            return http_error(
                StatusCode::BAD_GATEWAY,
                Some(&orig),
                UPSTREAM_FAILED,
                &format!("upstream {} is not running", up.name),
            );
        }
        let mut guard = CancelGuard {
            router: session.router.clone(),
            stdin,
            n,
            armed: true,
        };
        let first = tokio::time::timeout(up.timeout, rx.recv()).await;
        up.metrics.upstream_latency(&up.name, started.elapsed());
        match first {
            Err(_) => {
                if fresh {
                    end_fresh(&session);
                }
                // The guard cancels the request in the child.
                http_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    Some(&orig),
                    UPSTREAM_FAILED,
                    &format!("upstream {} did not answer in time", up.name),
                )
            }
            Ok(None) => {
                guard.armed = false;
                http_error(
                    StatusCode::BAD_GATEWAY,
                    Some(&orig),
                    UPSTREAM_FAILED,
                    "upstream closed the request",
                )
            }
            Ok(Some((v, true))) => {
                guard.armed = false;
                let mut r = json_response(&v);
                if fresh {
                    if v.get("result").is_some() {
                        let sid = session.id.as_deref().expect("fresh sessions have ids");
                        r.headers_mut().insert(
                            MCP_SESSION_ID,
                            HeaderValue::from_str(sid).expect("hex session ids are valid header values"),
                        );
                    } else {
                        end_fresh(&session);
                        tokio::spawn(async move { session.shutdown().await });
                    }
                }
                r
            }
            Ok(Some((v, false))) => {
                let mut r = sse_response(crate::proxy::body::boxed(SseBody {
                    first: Some(v),
                    rx,
                    guard: Some(guard),
                    done: false,
                    deadline: Some((orig.clone(), up.timeout, Box::pin(tokio::time::sleep(up.timeout)))),
                }));
                if fresh {
                    let sid = session.id.as_deref().expect("fresh sessions have ids");
                    r.headers_mut().insert(
                        MCP_SESSION_ID,
                        HeaderValue::from_str(sid).expect("hex session ids are valid header values"),
                    );
                }
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

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

    #[tokio::test]
    async fn stderr_is_drained_whatever_it_holds() {
        // Invalid UTF-8, a progress bar, 20 MiB without a newline, then more.
        let head: &[u8] = b"bad \xff\xfe bytes\n10%\r20%\rdone\r\n";
        let huge = tokio::io::repeat(b'x').take(20 << 20);
        let tail: &[u8] = b"\nafter\n";
        let input = head.chain(huge).chain(tail);
        let mut logged: Vec<(String, usize)> = Vec::new();
        drain_stderr(input, |t, skipped| logged.push((t.into_owned(), skipped)))
            .await
            .unwrap();
        let texts: Vec<&str> = logged.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts[..4], ["bad \u{fffd}\u{fffd} bytes", "10%", "20%", "done"]);
        let (long, skipped) = &logged[4];
        assert_eq!(long.len(), STDERR_LINE + STDERR_LOOKAHEAD);
        assert_eq!(*skipped, (20 << 20) - STDERR_LINE);
        assert_eq!(texts[5..], ["after"]);
    }

    #[test]
    fn stderr_is_redacted() {
        let d = Detector::builtin();
        assert_eq!(
            redact(&d, "failed for ana.lima@example.org!"),
            "failed for [EMAIL]!"
        );
        // An address cut by the truncation is redacted whole, never shown in part.
        let text = format!("{}ana.lima@example.org and more", "x ".repeat(10));
        assert_eq!(
            redact_prefix(&d, &text, 25),
            format!("{}[EMAIL]", "x ".repeat(10))
        );
        assert_eq!(redact_prefix(&d, &text, 20), "x ".repeat(10));
        assert_eq!(redact_prefix(&d, "é", 1), "");
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
}
