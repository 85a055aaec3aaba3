//! Streamable HTTP, emulated: POST, GET and DELETE on a session (or none, for stateless
//! requests) become lines to a child, and its messages come back as a JSON answer or an SSE
//! stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::router::{Delivery, Outgoing, Router};
use super::{line, line_of, lock, Session, StdioUpstream, MAX_CHILDREN, STDIO_OWNER};
use crate::json::{self, Parsed};
use crate::jsonrpc::{
    error_object, error_response, INVALID_REQUEST, PARSE_ERROR, SESSION_NOT_FOUND, UPSTREAM_FAILED,
};
use crate::layer::response::http_error;
use crate::proxy::body::{empty, full, Body, BoxError};
use crate::proxy::upstream::{new_session_id, MCP_SESSION_ID};
use crate::vault::SharedSession;

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

/// Gives the client the id of the session its `initialize` opened.
fn set_session_id(r: &mut Response<Body>, session: &Session) {
    let sid = session.id.as_deref().expect("fresh sessions have ids");
    r.headers_mut().insert(
        MCP_SESSION_ID,
        HeaderValue::from_str(sid).expect("hex session ids are valid header values"),
    );
}

fn accepted() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

impl StdioUpstream {
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
        crate::proxy::upstream::session_not_found(None)
    }

    /// Handles one Streamable HTTP request.
    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let client = crate::proxy::upstream::client_of(&parts.extensions);
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
            Method::POST => match crate::proxy::upstream::request_body(body).await {
                Ok(bytes) => self.post(session, client, &bytes).await,
                Err(res) => res,
            },
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
                self.send_unanswered(&session, &parsed).await
            }
            // The client's answer to a server-initiated request: ids are the child's own.
            (None, Some(_)) => self.send_unanswered(&session, &parsed).await,
            (None, None) => http_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "invalid JSON-RPC message",
            ),
        }
    }

    /// Writes a message that gets no answer (a notification, or the client's answer to the
    /// child's request) to the session's child, starting it if needed: 202, or 502 when the
    /// child cannot be started.
    async fn send_unanswered(&self, session: &Session, msg: &Parsed<'_>) -> Response<Body> {
        match session.ensure_child(&self.inner, true).await {
            Ok((stdin, _)) => {
                let _ = stdin.send(line(msg)).await;
                accepted()
            }
            Err(e) => http_error(StatusCode::BAD_GATEWAY, None, UPSTREAM_FAILED, &e),
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
        // Forgets the session this `initialize` opened (`fresh`) when opening it failed.
        let end_if_fresh = |s: &Arc<Session>| {
            if let (true, Some(id)) = (fresh, &s.id) {
                up.sessions.remove(id);
            }
        };
        let (stdin, generation) = match session.ensure_child(up, !is_init).await {
            Ok(x) => x,
            Err(e) => {
                end_if_fresh(&session);
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
            end_if_fresh(&session);
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
                end_if_fresh(&session);
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
                        set_session_id(&mut r, &session);
                    } else {
                        end_if_fresh(&session);
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
                    set_session_id(&mut r, &session);
                }
                r
            }
        }
    }
}
