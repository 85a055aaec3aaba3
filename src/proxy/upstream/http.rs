//! Streamable HTTP upstream: pooled HTTP/1 connections (`conn.rs`, TCP_NODELAY), per-server
//! credential headers, timeouts, streamed responses and mapped session ids.
//!
//! The gateway issues its own `Mcp-Session-Id` to the client and keeps the upstream's to
//! itself: a session id seen by the sandbox is useless anywhere but here, and it is bound to
//! the client that created it. DELETE ends both.
//!
//! Response headers toward the client are an allow-list ([`RELAYED_RESPONSE_HEADERS`]): a
//! server's other headers (`X-Debug: ana@…`, `Link: <mailto:…>`, `Set-Cookie`, its own
//! `WWW-Authenticate` challenge) never reach the client, and the allowed ones must have their
//! expected shape. Framing (`Content-Length`, `Transfer-Encoding`) is hyper's.
//!
//! A JSON (non-SSE) response body is read whole here, before the response is released: within
//! `limits.upstream_response_deadline` from its head, with no silence longer than
//! `limits.upstream_timeout`; otherwise the client gets a 504 JSON-RPC error naming the limit.
//! SSE streams are relayed as they arrive and bounded by neither (GET streams idle for hours by
//! design; the rewrite layer bounds each event's size).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;

use super::conn::{DrivenBody, Pool, SendError};
use super::{hop_by_hop, new_session_id, MCP_SESSION_ID};
use crate::config::Limits;
use crate::jsonrpc::{request_id, INTERNAL_ERROR, UPSTREAM_FAILED};
use crate::layer::response::http_error;
use crate::proxy::body::{boxed, full, Body, BodyTimedOut, BoxError, IdleTimeoutBody};
use crate::proxy::metrics::Metrics;
use crate::vault::{SessionStore, SharedSession};

struct Session {
    upstream_id: HeaderValue,
    client: Arc<str>,
    /// Milliseconds since `Inner::epoch` of the last request.
    last: AtomicU64,
    /// Milliseconds since `Inner::epoch` when the shared store last saw it used.
    shared_touch: AtomicU64,
}

/// What the local table says of a gateway session id.
enum Local {
    Found(HeaderValue, bool),
    OtherClient,
    Unknown,
}

struct Inner {
    name: Arc<str>,
    url: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    strip: Vec<HeaderName>,
    pool: Arc<Pool>,
    /// gateway session id → upstream session.
    sessions: DashMap<String, Session>,
    /// upstream session id → gateway session id.
    reverse: DashMap<HeaderValue, String>,
    /// Sessions shared with other replicas (Redis), when configured.
    shared: OnceLock<Arc<dyn SessionStore>>,
    timeout: Duration,
    /// Total time for a JSON response body, from its head.
    deadline: Duration,
    idle: Duration,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

/// A Streamable HTTP upstream. Cheap to clone.
#[derive(Clone)]
pub struct HttpUpstream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// An upstream named `name` at `url`, adding `headers` to every request. `strip` lists
    /// extra request headers never forwarded (e.g. the scope header).
    pub fn new(
        name: &str,
        url: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
        tls: Option<Arc<rustls::ClientConfig>>,
        strip: Vec<HeaderName>,
        limits: &Limits,
        metrics: Arc<Metrics>,
    ) -> HttpUpstream {
        HttpUpstream {
            inner: Arc::new(Inner {
                name: Arc::from(name),
                pool: Arc::new(Pool::new(url.clone(), limits.connect_timeout, tls)),
                url,
                headers,
                strip,
                sessions: DashMap::new(),
                reverse: DashMap::new(),
                shared: OnceLock::new(),
                timeout: limits.upstream_timeout,
                deadline: limits.upstream_response_deadline,
                idle: limits.session_idle,
                epoch: Instant::now(),
                metrics,
            }),
        }
    }

    /// Shares this upstream's sessions with other replicas through `store`: a session begun on
    /// one replica continues on another (POST, GET, DELETE). Set once; later calls are ignored.
    pub fn share_sessions(&self, store: Arc<dyn SessionStore>) {
        let _ = self.inner.shared.set(store);
    }

    /// Number of live mapped sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Relays one request. Never fails: failures become JSON-RPC error responses.
    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        let inner = &*self.inner;
        let (parts, body) = req.into_parts();
        let client_name = super::client_of(&parts.extensions);
        // Collected to know the id for error responses.
        let bytes = match super::request_body(body).await {
            Ok(b) => b,
            Err(res) => return res,
        };
        // The request's id, for the error responses only: parsed when one is needed.
        let is_post = parts.method == Method::POST;
        let id_of = |b: &Bytes| if is_post { request_id(b) } else { None };

        // Map the session id.
        let gw_session = parts
            .headers
            .get(MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let not_found = |bytes: &Bytes| super::session_not_found(id_of(bytes).as_ref());
        let upstream_session = match &gw_session {
            None => None,
            Some(s) => match inner.local_session(s, &client_name) {
                Local::Found(id, touch) => {
                    if touch {
                        inner.touch_shared(s);
                    }
                    Some(id)
                }
                Local::OtherClient => return not_found(&bytes),
                Local::Unknown => match inner.shared_session(s, &client_name).await {
                    Ok(Some(id)) => Some(id),
                    Ok(None) => return not_found(&bytes),
                    Err(e) => {
                        tracing::warn!(server = %inner.name, error = %e, "shared session store unavailable");
                        return http_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            id_of(&bytes).as_ref(),
                            INTERNAL_ERROR,
                            "the session store (Redis) is unavailable; retry shortly; nothing was forwarded",
                        );
                    }
                },
            },
        };

        let mut headers = HeaderMap::with_capacity(parts.headers.len() + inner.headers.len());
        let extra_hop = hop_by_hop::connection_listed(&parts.headers);
        for (k, v) in parts.headers.iter() {
            if hop_by_hop::is(k)
                || extra_hop.contains(k)
                || k == header::HOST
                || k == header::AUTHORIZATION
                || k == header::ORIGIN
                || k == header::CONTENT_LENGTH
                || k == header::COOKIE
                // The gateway must read every body it relays: no compressed answers.
                || k == header::ACCEPT_ENCODING
                || k.as_str() == MCP_SESSION_ID
                || inner.strip.contains(k)
            {
                continue;
            }
            headers.append(k.clone(), v.clone());
        }
        if let Some(u) = upstream_session {
            headers.insert(MCP_SESSION_ID, u);
        }
        for (k, v) in &inner.headers {
            headers.insert(k.clone(), v.clone());
        }
        let mut up = Request::new(full(bytes.clone()));
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = inner.url.clone();
        *up.headers_mut() = headers;

        let started = Instant::now();
        let res = match tokio::time::timeout(inner.timeout, inner.pool.send(up)).await {
            Err(_) => {
                tracing::warn!(server = %inner.name, "upstream timed out");
                return http_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    id_of(&bytes).as_ref(),
                    UPSTREAM_FAILED,
                    &format!("upstream {} did not answer in time", inner.name),
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(server = %inner.name, error = %e, "upstream unreachable");
                let msg = match (e.tls_failure(), &e) {
                    (Some(why), _) => format!("upstream {}: {why}", inner.name),
                    (None, SendError::Connect(_)) => format!("upstream {} is unreachable", inner.name),
                    (None, _) => format!("upstream {} failed", inner.name),
                };
                return http_error(
                    StatusCode::BAD_GATEWAY,
                    id_of(&bytes).as_ref(),
                    UPSTREAM_FAILED,
                    &msg,
                );
            }
            Ok(Ok(r)) => r,
        };
        inner.metrics.upstream_latency(&inner.name, started.elapsed());

        let (mut rparts, rbody) = res.into_parts();
        if rparts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            tracing::warn!(server = %inner.name, "upstream sent a compressed body; refused");
            return http_error(
                StatusCode::BAD_GATEWAY,
                id_of(&bytes).as_ref(),
                UPSTREAM_FAILED,
                &format!(
                    "upstream {} sent a compressed (Content-Encoding) response, which the gateway cannot inspect",
                    inner.name
                ),
            );
        }
        let upstream_session = rparts.headers.remove(MCP_SESSION_ID);
        rparts.headers = relayed_response_headers(&inner.name, rparts.status, &rparts.headers);

        // Session bookkeeping.
        let status = rparts.status;
        if let Some(up_id) = upstream_session {
            let gw = match inner.reverse.get(&up_id) {
                Some(g) => g.clone(),
                None => {
                    let g = new_session_id();
                    inner.sessions.insert(
                        g.clone(),
                        Session {
                            upstream_id: up_id.clone(),
                            client: client_name.clone(),
                            last: AtomicU64::new(inner.now_ms()),
                            shared_touch: AtomicU64::new(inner.now_ms()),
                        },
                    );
                    inner.reverse.insert(up_id.clone(), g.clone());
                    if let (Some(store), Ok(up)) = (inner.shared.get(), up_id.to_str()) {
                        let shared = SharedSession {
                            upstream_id: up.to_owned(),
                            client: client_name.to_string(),
                        };
                        if let Err(e) = store.put(&inner.name, &g, &shared, inner.idle).await {
                            tracing::warn!(
                                server = %inner.name,
                                error = %e,
                                "could not share a new session; it continues on this replica only"
                            );
                        }
                    }
                    g
                }
            };
            rparts.headers.insert(
                MCP_SESSION_ID,
                HeaderValue::from_str(&gw).expect("hex session ids are valid header values"),
            );
        }
        if let Some(gw) = gw_session {
            let ended =
                status == StatusCode::NOT_FOUND || (parts.method == Method::DELETE && status.is_success());
            if ended {
                if let Some((_, s)) = inner.sessions.remove(&gw) {
                    inner.reverse.remove(&s.upstream_id);
                }
                if let Some(store) = inner.shared.get() {
                    if let Err(e) = store.remove(&inner.name, &gw).await {
                        tracing::warn!(server = %inner.name, error = %e, "could not forget an ended shared session");
                    }
                }
            }
        }
        let streaming = rparts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if streaming {
            // SSE streams pass through as they are: GET streams idle for long, and a client
            // whose POST stream breaks resumes it (Last-Event-ID), so cutting one on silence
            // would not end the call anyway. Clients keep their own request timeouts.
            return Response::from_parts(rparts, boxed(rbody));
        }
        // A JSON body must arrive whole within the deadline, and may not stall for longer than
        // the upstream timeout. Read it here, so that a slow one becomes a clear error.
        let deadline = tokio::time::Instant::now() + inner.deadline;
        match read_body(rbody, inner.timeout, deadline, BUFFER_CAP).await {
            Ok(Read::Whole(b)) => Response::from_parts(rparts, full(b)),
            Ok(Read::Partial(prefix, rest)) => {
                // Larger than the gateway buffers here: the layer above enforces its own size
                // limit; the rest streams, still under the same deadline and silence bound.
                let body = DeadlineBody {
                    prefix: Some(prefix),
                    inner: IdleTimeoutBody::new(rest, inner.timeout),
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                };
                Response::from_parts(rparts, boxed(body))
            }
            Err(fail) => {
                let (status, msg) = match fail {
                    BodyFail::Deadline => (
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "upstream {} did not send its whole response within {} \
                             (limits.upstream_response_deadline); nothing of it was relayed",
                            inner.name,
                            humantime::format_duration(inner.deadline)
                        ),
                    ),
                    BodyFail::Silent => (
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "upstream {} stopped sending its response for longer than {} \
                             (limits.upstream_timeout); nothing of it was relayed",
                            inner.name,
                            humantime::format_duration(inner.timeout)
                        ),
                    ),
                    BodyFail::Broken => (
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "upstream {}'s response body could not be read; nothing of it was relayed",
                            inner.name
                        ),
                    ),
                };
                tracing::warn!(server = %inner.name, status = status.as_u16(), "upstream response body failed");
                http_error(status, id_of(&bytes).as_ref(), UPSTREAM_FAILED, &msg)
            }
        }
    }

    /// Ends sessions idle for longer than `limits.session_idle`: forgets the mapping and
    /// deletes the upstream session. Returns how many ended. Also drops pooled connections
    /// that the server closed or that idled for too long.
    pub fn sweep(&self) -> usize {
        let inner = &*self.inner;
        inner.pool.prune();
        let cutoff = inner.now_ms().saturating_sub(inner.idle.as_millis() as u64);
        let stale: Vec<String> = inner
            .sessions
            .iter()
            .filter(|e| e.last.load(Ordering::Relaxed) < cutoff)
            .map(|e| e.key().clone())
            .collect();
        let n = stale.len();
        for gw in stale {
            if let Some((_, s)) = inner.sessions.remove(&gw) {
                inner.reverse.remove(&s.upstream_id);
                if inner.shared.get().is_some() {
                    // Another replica may still serve it: forget it here only. The shared
                    // record expires after the same idle time; the upstream's own session
                    // expiry ends it there.
                    continue;
                }
                let mut req = Request::new(full(Bytes::new()));
                *req.method_mut() = Method::DELETE;
                *req.uri_mut() = inner.url.clone();
                req.headers_mut().insert(MCP_SESSION_ID, s.upstream_id);
                for (k, v) in &inner.headers {
                    req.headers_mut().insert(k.clone(), v.clone());
                }
                let pool = inner.pool.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async move {
                        if let Ok(res) = pool.send(req).await {
                            let _ = res.into_body().collect().await;
                        }
                    })
                    .await;
                });
            }
        }
        n
    }

    /// Forgets all sessions (on shutdown). Upstream sessions expire on their own.
    pub fn shutdown(&self) {
        self.inner.sessions.clear();
        self.inner.reverse.clear();
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The session in this replica's table; marks it used. The flag says whether the shared
    /// store should hear of the use (at most every `idle / 8`).
    fn local_session(&self, gw: &str, client: &str) -> Local {
        let Some(sess) = self.sessions.get(gw) else {
            return Local::Unknown;
        };
        if *sess.client != *client {
            return Local::OtherClient;
        }
        let now = self.now_ms();
        sess.last.store(now, Ordering::Relaxed);
        let every = (self.idle.as_millis() as u64 / 8).max(1);
        let touch = self.shared.get().is_some()
            && now.saturating_sub(sess.shared_touch.load(Ordering::Relaxed)) >= every;
        if touch {
            sess.shared_touch.store(now, Ordering::Relaxed);
        }
        Local::Found(sess.upstream_id.clone(), touch)
    }

    /// Restarts the shared record's idle timer in the background.
    fn touch_shared(&self, gw: &str) {
        let Some(store) = self.shared.get().cloned() else {
            return;
        };
        let (name, gw, idle) = (self.name.clone(), gw.to_owned(), self.idle);
        tokio::spawn(async move {
            // Best effort: a failure shows on the next lookup.
            let _ = store.get(&name, &gw, idle).await;
        });
    }

    /// A session another replica began, from the shared store; adopted into this replica's
    /// table. `Ok(None)` when there is none for this client.
    async fn shared_session(&self, gw: &str, client: &Arc<str>) -> crate::error::Result<Option<HeaderValue>> {
        let Some(store) = self.shared.get() else {
            return Ok(None);
        };
        let Some(shared) = store.get(&self.name, gw, self.idle).await? else {
            return Ok(None);
        };
        if shared.client != **client {
            return Ok(None);
        }
        let Ok(up) = HeaderValue::from_str(&shared.upstream_id) else {
            return Ok(None);
        };
        let now = self.now_ms();
        self.sessions.insert(
            gw.to_owned(),
            Session {
                upstream_id: up.clone(),
                client: client.clone(),
                last: AtomicU64::new(now),
                shared_touch: AtomicU64::new(now),
            },
        );
        self.reverse.insert(up.clone(), gw.to_owned());
        Ok(Some(up))
    }
}

/// The response headers an HTTP upstream may send toward the client (besides
/// `Mcp-Session-Id`, replaced by the gateway's own id), each only in its expected shape:
///
/// - `content-type`: the media type and its `charset`, rebuilt (other parameters dropped);
/// - `mcp-protocol-version`: letters, digits, `.`, `-`, `_`;
/// - `cache-control`: the standard directives, numbers of at most 9 digits, no field lists;
/// - `retry-after`: seconds (at most 9 digits) or an HTTP date;
/// - `allow` on a 405: HTTP method names (RFC 9110 requires it there).
///
/// Everything else is dropped, with a debug log naming the headers (never their values):
/// custom headers (`x-debug`), `link`, `set-cookie`, and `www-authenticate` too: the client
/// authenticates to the gateway, which holds the upstream's credentials itself, so an
/// upstream's challenge (whose realm or `resource_metadata` may name anything) means nothing to
/// the client. `Content-Length`/`Transfer-Encoding` are set by hyper for the relayed body.
pub const RELAYED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "cache-control",
    "retry-after",
    "allow",
];

/// The allowed headers of `from`, sanitized (see [`RELAYED_RESPONSE_HEADERS`]).
fn relayed_response_headers(server: &str, status: StatusCode, from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(4);
    let mut dropped: Vec<&str> = Vec::new();
    for (name, value) in from {
        let kept = match name.as_str() {
            "content-type" => sanitize_content_type(value),
            "mcp-protocol-version" => value
                .to_str()
                .ok()
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= 64
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                })
                .map(|_| value.clone()),
            "cache-control" => sanitize_cache_control(value),
            "retry-after" => value
                .to_str()
                .ok()
                .filter(|v| is_delay_seconds(v) || looks_like_http_date(v))
                .map(|_| value.clone()),
            "allow" if status == StatusCode::METHOD_NOT_ALLOWED => value
                .to_str()
                .ok()
                .filter(|v| {
                    v.len() <= 128
                        && v.bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b',' || b == b' ')
                })
                .map(|_| value.clone()),
            // Framing is hyper's, for the body as relayed.
            "content-length" | "transfer-encoding" => continue,
            _ => None,
        };
        match kept {
            // One of each is enough: a repeated header is kept once.
            Some(v) if !out.contains_key(name) => {
                out.insert(name.clone(), v);
            }
            Some(_) => {}
            None => {
                if !dropped.contains(&name.as_str()) {
                    dropped.push(name.as_str());
                }
            }
        }
    }
    if !dropped.is_empty() {
        tracing::debug!(server, headers = ?dropped, "dropped upstream response headers (not on the allow-list, or not in the expected shape)");
    }
    out
}

/// `type/subtype` and, when present, `charset`, rebuilt from tokens.
fn sanitize_content_type(v: &HeaderValue) -> Option<HeaderValue> {
    let v = v.to_str().ok()?;
    let mut parts = v.split(';');
    let essence = parts.next()?.trim();
    let (ty, sub) = essence.split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    let mut out = essence.to_ascii_lowercase();
    for p in parts {
        if let Some((k, val)) = p.trim().split_once('=') {
            let val = val.trim().trim_matches('"');
            if k.trim().eq_ignore_ascii_case("charset") && is_token(val) && val.len() <= 32 {
                out.push_str("; charset=");
                out.push_str(val);
                break;
            }
        }
    }
    HeaderValue::from_str(&out).ok()
}

/// The standard `Cache-Control` directives, with numeric arguments only.
fn sanitize_cache_control(v: &HeaderValue) -> Option<HeaderValue> {
    const BARE: &[&str] = &[
        "no-cache",
        "no-store",
        "no-transform",
        "must-revalidate",
        "proxy-revalidate",
        "must-understand",
        "private",
        "public",
        "immutable",
    ];
    const NUMERIC: &[&str] = &["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"];
    let v = v.to_str().ok()?;
    let mut out: Vec<String> = Vec::new();
    for d in v.split(',') {
        let d = d.trim().to_ascii_lowercase();
        match d.split_once('=') {
            None if BARE.contains(&d.as_str()) => out.push(d),
            Some((k, n)) if NUMERIC.contains(&k.trim()) && is_delay_seconds(n.trim()) => {
                out.push(format!("{}={}", k.trim(), n.trim()))
            }
            _ => return None,
        }
    }
    HeaderValue::from_str(&out.join(", ")).ok()
}

fn is_delay_seconds(v: &str) -> bool {
    !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit())
}

/// The IMF-fixdate shape, `Sun, 06 Nov 1994 08:49:37 GMT`.
fn looks_like_http_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 29
        && b[..3].iter().all(u8::is_ascii_alphabetic)
        && &b[3..5] == b", "
        && v.ends_with(" GMT")
        && b[5..25]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b' ' || *c == b':')
}

/// An RFC 9110 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Buffered JSON bodies up to this size; past it the rest streams (the rewrite layer's own
/// default response limit).
const BUFFER_CAP: usize = crate::layer::rewrite::DEFAULT_MAX_RESPONSE_BODY;

/// A response body read by [`read_body`].
enum Read {
    /// All of it.
    Whole(Bytes),
    /// The first bytes (more than the cap) and the unread rest.
    Partial(Bytes, DrivenBody),
}

/// Why a response body could not be read.
enum BodyFail {
    /// Not whole by the deadline.
    Deadline,
    /// Silent for longer than the upstream timeout.
    Silent,
    /// The connection failed.
    Broken,
}

/// Reads `body` until its end, `deadline`, a silence of `idle`, or more than `cap` bytes.
async fn read_body(
    mut body: DrivenBody,
    idle: Duration,
    deadline: tokio::time::Instant,
    cap: usize,
) -> Result<Read, BodyFail> {
    // Most bodies come in one frame: keep it as it is, copy only when there are more.
    let mut first: Option<Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    loop {
        let now = tokio::time::Instant::now();
        let until = deadline.min(now + idle);
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) if tokio::time::Instant::now() >= deadline => return Err(BodyFail::Deadline),
            Err(_) => return Err(BodyFail::Silent),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BodyFail::Broken),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not relayed
        };
        if data.is_empty() {
            continue;
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            prev => {
                if let Some(p) = prev {
                    buf.extend_from_slice(&p);
                }
                buf.extend_from_slice(&data);
            }
        }
        let len = first.as_ref().map_or(buf.len(), Bytes::len);
        if len > cap {
            let prefix = first.take().unwrap_or_else(|| buf.split().freeze());
            return Ok(Read::Partial(prefix, body));
        }
    }
    Ok(Read::Whole(first.unwrap_or_else(|| buf.freeze())))
}

/// The rest of a large JSON body: `prefix` first, then `inner`, failing at `deadline`.
struct DeadlineBody {
    prefix: Option<Bytes>,
    inner: IdleTimeoutBody<DrivenBody>,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        if let Some(p) = this.prefix.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(p))));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        std::pin::Pin::new(&mut this.inner).poll_frame(cx)
    }
}
