//! The HTTP front: a hyper 1 server routing `/servers/{name}/mcp` to each server's service
//! stack, plus `/healthz` and `/metrics`.
//!
//! In order, for each MCP request: route → Host and Origin checks (DNS rebinding) → method
//! (POST, GET, DELETE) → body size limit and read deadline → the session cap for `initialize`
//! → the server's stack (the `PiiLayer`: bearer authentication, the client's server list and
//! the scope, with its cap; then restore/tokenize; then the upstream). Every refusal is a
//! JSON-RPC error with the right HTTP status. `/metrics` goes through the same Host and Origin
//! checks; `/healthz` answers anyone (it says `ok` and nothing else).
//!
//! Host and Origin (DNS rebinding): the request's host is the authority of an absolute-form
//! request URI (`POST http://host/servers/x/mcp`) or else the `Host` header; when both are
//! present they must agree. More than one `Host` or `Origin` header is refused. `Origin` is
//! parsed as `scheme://host[:port]` ([`normalize_origin`]).
//!
//! Resource caps (`[limits]`): at most `max_connections` client connections are open at once
//! (past it the accept loop waits: new connections queue in the kernel's listen backlog until
//! one closes); a request body must arrive within `request_body_timeout` (else 408 and the
//! connection is closed); `initialize` is refused with 503 once `max_sessions` sessions exist
//! across all servers.
//!
//! Shutdown ([`Front::serve`]'s `shutdown` future): stop accepting, ask every connection to
//! finish its in-flight request, wait up to `limits.shutdown_grace`, then stop the upstreams
//! (stdio children are reaped).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use super::aggregate::Aggregate;
use super::body::{boxed, full, Body, BoxError};
use super::metrics::{Metrics, Outcome};
use super::upstream::{Upstream, MCP_SESSION_ID};
use crate::config::{normalize_origin, Config, Limits};
use crate::error::Error;
use crate::jsonrpc::{request_id, INTERNAL_ERROR, INVALID_REQUEST};
use crate::layer::response::{from_error, http_error};
use crate::layer::scope::ScopeLimiter;
use crate::vault::{SessionStore, Vault};

/// A server's service stack: layers over its upstream.
pub type ServerService = BoxCloneSyncService<Request<Body>, Response<Body>, BoxError>;

struct Route {
    name: Arc<str>,
    service: ServerService,
}

struct State {
    routes: HashMap<String, Route>,
    upstreams: Vec<Upstream>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// Flips to true when shutdown starts: long-lived GET streams end then.
    stopping: watch::Sender<bool>,
    /// `initialize` requests in flight (each may create a session).
    opening_sessions: AtomicUsize,
    /// The scope cap shared by the stacks, swept with the sessions.
    scope_limiter: OnceLock<Arc<ScopeLimiter>>,
    /// The vault, whose health `/healthz` reports.
    vault: OnceLock<Arc<dyn Vault>>,
    /// The aggregated endpoint `/mcp`, and its service stack (scope layer over it).
    aggregate: OnceLock<(Aggregate, ServerService)>,
}

/// The gateway's HTTP front, built from a validated [`Config`].
#[derive(Clone)]
pub struct Front {
    state: Arc<State>,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("servers", &self.state.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Front {
    /// A front for `config`: one [`Upstream`] per server, each wrapped by `stack(server name,
    /// upstream)` (the PII layers go there; pass [`identity`] for a plain relay).
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        stack: impl Fn(&str, Upstream) -> ServerService,
    ) -> Front {
        let strip: Vec<_> = config.scope.header.iter().cloned().collect();
        let mut routes = HashMap::new();
        let mut upstreams = Vec::new();
        for s in &config.servers {
            let up = Upstream::new(s, &config.limits, strip.clone(), metrics.clone());
            upstreams.push(up.clone());
            routes.insert(
                s.name.clone(),
                Route {
                    name: Arc::from(s.name.as_str()),
                    service: stack(&s.name, up),
                },
            );
        }
        Front {
            state: Arc::new(State {
                routes,
                upstreams,
                allowed_hosts: config.allowed_hosts.clone(),
                allowed_origins: config.allowed_origins.clone(),
                limits: config.limits.clone(),
                metrics,
                stopping: watch::channel(false).0,
                opening_sessions: AtomicUsize::new(0),
                scope_limiter: OnceLock::new(),
                vault: OnceLock::new(),
                aggregate: OnceLock::new(),
            }),
        }
    }

    /// Reports `vault`'s health on `/healthz`: 503 while its store is unreachable, so that a
    /// load balancer drains this replica.
    pub fn with_vault(self, vault: Arc<dyn Vault>) -> Front {
        let _ = self.state.vault.set(vault);
        self
    }

    /// Shares every upstream's sessions through `store` (the Redis vault's): an HTTP upstream's
    /// session continues on any replica; a stdio upstream's runs on `replica`, and another
    /// replica answers requests for it with an error saying so.
    pub fn share_sessions(self, store: Arc<dyn SessionStore>, replica: &str) -> Front {
        for up in &self.state.upstreams {
            match up {
                Upstream::Http(h) => h.share_sessions(store.clone()),
                Upstream::Stdio(s) => s.share_sessions(store.clone(), replica),
            }
        }
        self
    }

    /// Sweeps `limiter` (the scope cap the stacks share) with the idle sessions, so that
    /// forgotten scope keys free their memory even when no request hits the cap.
    pub fn with_scope_limiter(self, limiter: Arc<ScopeLimiter>) -> Front {
        let _ = self.state.scope_limiter.set(limiter);
        self
    }

    /// Serves `aggregate` at `/mcp`, through `service` (the aggregate behind its scope layer).
    pub fn with_aggregate(self, aggregate: Aggregate, service: ServerService) -> Front {
        let _ = self.state.aggregate.set((aggregate, service));
        self
    }

    /// Downstream sessions across every server (HTTP mappings and stdio sessions, and the
    /// sessions of `/mcp`, whose upstream sessions count too).
    pub fn session_count(&self) -> usize {
        let aggregated = self.state.aggregate.get().map_or(0, |(a, _)| a.session_count());
        aggregated
            + self
                .state
                .upstreams
                .iter()
                .map(Upstream::session_count)
                .sum::<usize>()
    }

    /// The service stack of server `name`, for in-process callers (the stdio front). Requests
    /// given to it skip the front's Host, Origin and size checks.
    pub fn service(&self, name: &str) -> Option<ServerService> {
        self.state.routes.get(name).map(|r| r.service.clone())
    }

    /// Stops every upstream (stdio children are reaped).
    pub async fn shutdown_upstreams(&self) {
        if let Some((a, _)) = self.state.aggregate.get() {
            a.shutdown().await;
        }
        futures_util::future::join_all(self.state.upstreams.iter().map(|u| u.shutdown())).await;
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// Serves connections from `listener` until `shutdown` resolves, then shuts down
    /// gracefully (see the module docs).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_tls(listener, None, shutdown).await
    }

    /// [`serve`](Self::serve), with TLS on every accepted connection when `tls` is set (see
    /// [`tls::acceptor`](super::tls::acceptor)); a connection whose handshake fails is closed.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.clone().serve_shard(listener, tls, shutdown, true).await?;
        self.shutdown_upstreams().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// One of several accept loops sharing this front (one per runtime, each on its own
    /// listening socket): [`serve_tls`](Self::serve_tls) without stopping the upstreams at the
    /// end, which the caller does once every loop has returned
    /// ([`shutdown_upstreams`](Self::shutdown_upstreams)). Exactly one of the loops should
    /// `sweep` (end idle sessions, drop closed pooled connections).
    pub async fn serve_shard(
        self,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
        sweep: bool,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Idle sessions are ended in the background.
        let sweeper = sweep.then(|| {
            let ups = self.state.upstreams.clone();
            let aggregate = self.state.aggregate.get().map(|(a, _)| a.clone());
            let limiter = self.state.scope_limiter.get().cloned();
            let every =
                (self.state.limits.session_idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
            AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Some(a) = &aggregate {
                        let n = a.sweep().await;
                        if n > 0 {
                            tracing::info!(sessions = n, "ended idle /mcp sessions");
                        }
                    }
                    for u in &ups {
                        let n = u.sweep().await;
                        if n > 0 {
                            tracing::info!(sessions = n, "ended idle sessions");
                        }
                    }
                    if let Some(l) = &limiter {
                        let n = l.sweep();
                        if n > 0 {
                            tracing::debug!(scopes = n, "forgot idle scope keys");
                        }
                    }
                }
            }))
        });
        let ticker = AbortOnDrop(tokio::spawn(keep_timer_deadline_near()));
        // Open connections are counted by their permits, not joined: a finished connection
        // wakes nobody (the client may open one per call), and shutdown waits for every
        // permit to come back.
        let (kill_tx, kill_rx) = watch::channel(false);
        // One permit per open client connection: at the cap the loop stops accepting, and new
        // connections wait in the listen backlog until one closes.
        // (At most u32::MAX, so that shutdown can wait for all of them in one acquire.)
        let max_conns = self.state.limits.max_connections.min(u32::MAX as usize);
        let slots = Arc::new(tokio::sync::Semaphore::new(max_conns));
        let mut slot: Option<tokio::sync::OwnedSemaphorePermit> = None;
        let mut saturated = false;
        tokio::pin!(shutdown);
        loop {
            if slot.is_none() && slots.available_permits() == 0 && !saturated {
                saturated = true;
                tracing::warn!(
                    max_connections = max_conns,
                    "connection limit reached: new connections wait until one closes (limits.max_connections)"
                );
            }
            tokio::select! {
                _ = &mut shutdown => break,
                permit = slots.clone().acquire_owned(), if slot.is_none() => {
                    // The semaphore is never closed.
                    slot = permit.ok();
                    if saturated && slots.available_permits() > 0 {
                        saturated = false;
                    }
                }
                accepted = listener.accept(), if slot.is_some() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE and friends: back off briefly rather than spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let permit = slot.take();
                    let _ = stream.set_nodelay(true);
                    let this = self.clone();
                    let mut stop = stop_rx.clone();
                    let mut kill = kill_rx.clone();
                    let tls = tls.clone();
                    // The connection's own wake-ups are handled in its poll, not by the
                    // scheduler (see `own_wakes`).
                    tokio::spawn(super::own_wakes::poll_own_wakes(async move {
                        // Held while the connection lives.
                        let _permit = permit;
                        let serve = async move {
                            let stream = match super::tls::accept(tls.as_ref(), stream).await {
                                Ok(s) => s,
                                Err(e) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                            };
                            let svc = hyper::service::service_fn(move |req| {
                                let this = this.clone();
                                async move { Ok::<_, Infallible>(this.handle(req.map(boxed), peer).await) }
                            });
                            let conn = hyper::server::conn::http1::Builder::new()
                                .timer(hyper_util::rt::TokioTimer::new())
                                .header_read_timeout(Duration::from_secs(30))
                                .serve_connection(TokioIo::new(stream), svc);
                            tokio::pin!(conn);
                            tokio::select! {
                                r = conn.as_mut() => { let _ = r; }
                                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                                    conn.as_mut().graceful_shutdown();
                                    let _ = conn.await;
                                }
                            }
                        };
                        // Past the shutdown grace the connection is dropped, closing it.
                        tokio::select! {
                            () = serve => {}
                            _ = kill.wait_for(|k| *k) => {}
                        }
                    }));
                }
            }
        }
        drop(sweeper);
        drop(ticker);
        drop(slot);
        let open = max_conns - slots.available_permits();
        tracing::info!(connections = open, "shutting down: finishing in-flight requests");
        drop(listener);
        let _ = stop_tx.send(true);
        // GET streams never finish on their own: end them so connections can close.
        self.state.stopping.send_replace(true);
        let grace = self.state.limits.shutdown_grace;
        let all = max_conns as u32;
        if tokio::time::timeout(grace, slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                left = max_conns - slots.available_permits(),
                "shutdown grace elapsed; closing remaining connections"
            );
            let _ = kill_tx.send(true);
            // Each connection's task drops it at its next poll; wait for that, boundedly.
            let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
        }
        Ok(())
    }

    /// Handles one request (exposed for in-process use, e.g. tests).
    pub fn handle(
        &self,
        req: Request<Body>,
        peer: SocketAddr,
    ) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>> {
        let this = self.clone();
        Box::pin(async move { this.handle_inner(req, peer).await })
    }

    async fn handle_inner(&self, req: Request<Body>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let (server, resp) = self.route(req).await;
        let status = resp.status();
        match &server {
            Some(s) => {
                self.state.metrics.request(s, Outcome::of_response(&resp));
                tracing::debug!(%peer, %method, server = %s, status = status.as_u16(), micros = started.elapsed().as_micros() as u64, "mcp request");
            }
            None => tracing::debug!(%peer, %method, %path, status = status.as_u16(), "request"),
        }
        resp
    }

    async fn route(&self, req: Request<Body>) -> (Option<Arc<str>>, Response<Body>) {
        let st = &*self.state;
        let path = req.uri().path();
        match path {
            "/healthz" => {
                return match st.vault.get() {
                    Some(v) if !v.healthy() => (
                        None,
                        text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "text/plain",
                            "vault unavailable\n".into(),
                        ),
                    ),
                    _ => (None, text(StatusCode::OK, "text/plain", "ok\n".into())),
                };
            }
            "/metrics" => {
                // Same DNS-rebinding protection as the MCP endpoints: a page on another origin
                // must not read the gateway's counters.
                if let Err(r) = check_host_origin(st, req.uri(), req.headers()) {
                    return (None, *r);
                }
                let mut body = st.metrics.render();
                if let Some(v) = st.vault.get() {
                    body.push_str(
                        "# HELP mcp_gateway_vault_up 1 while the vault's store answers (Redis), else 0.\n\
                         # TYPE mcp_gateway_vault_up gauge\n",
                    );
                    body.push_str(&format!("mcp_gateway_vault_up {}\n", u8::from(v.healthy())));
                }
                return (None, text(StatusCode::OK, "text/plain; version=0.0.4", body));
            }
            _ => {}
        }
        let (service, route_name) = match (path, st.aggregate.get()) {
            ("/mcp", Some((_, svc))) => (svc.clone(), Arc::from("mcp")),
            _ => {
                let Some(name) = path
                    .strip_prefix("/servers/")
                    .and_then(|r| r.strip_suffix("/mcp"))
                else {
                    let msg = if st.aggregate.get().is_some() {
                        "not found: MCP servers are at /mcp (all of them) and /servers/{name}/mcp"
                    } else {
                        "not found: MCP servers are at /servers/{name}/mcp"
                    };
                    return (None, reject(st, StatusCode::NOT_FOUND, msg));
                };
                let Some(route) = st.routes.get(name) else {
                    return (None, reject(st, StatusCode::NOT_FOUND, "no such server"));
                };
                (route.service.clone(), route.name.clone())
            }
        };
        let server = Some(route_name.clone());
        if let Err(r) = check_host_origin(st, req.uri(), req.headers()) {
            return (server, *r);
        }
        if !matches!(*req.method(), Method::POST | Method::GET | Method::DELETE) {
            let mut r = reject(
                st,
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: use POST, GET or DELETE",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            return (server, r);
        }
        // Bearer authentication, the client's server list and the scope header are the
        // PiiLayer's (ScopeLayer), next in the stack.
        let (parts, body) = req.into_parts();
        let max = st.limits.max_body_bytes;
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > max as u64 {
                return (server, too_large(st, max));
            }
        }
        let mut opening = None;
        let body = if parts.method == Method::POST {
            let limit = st.limits.request_body_timeout;
            let bytes = match tokio::time::timeout(limit, collect_limited(body, max)).await {
                Ok(Ok(b)) => b,
                Ok(Err(true)) => return (server, too_large(st, max)),
                Ok(Err(false)) => {
                    return (
                        server,
                        reject(st, StatusCode::BAD_REQUEST, "request body could not be read"),
                    )
                }
                Err(_) => {
                    let mut r = reject(
                        st,
                        StatusCode::REQUEST_TIMEOUT,
                        &format!(
                            "request body not received within {} (limits.request_body_timeout); the connection is closed",
                            humantime::format_duration(limit)
                        ),
                    );
                    // The rest of the body is never read: the connection cannot be reused.
                    r.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return (server, r);
                }
            };
            if !parts.headers.contains_key(MCP_SESSION_ID) && is_initialize(&bytes) {
                match SessionSlot::take(self) {
                    Some(slot) => opening = Some(slot),
                    None => {
                        tracing::warn!(
                            max_sessions = st.limits.max_sessions,
                            "session limit reached: initialize refused (limits.max_sessions)"
                        );
                        st.metrics.add_rejected();
                        return (
                            server,
                            http_error(
                                StatusCode::SERVICE_UNAVAILABLE,
                                request_id(&bytes).as_ref(),
                                INVALID_REQUEST,
                                "too many sessions: the gateway holds its maximum of MCP sessions \
                                 (limits.max_sessions); retry after sessions end; nothing was forwarded",
                            ),
                        );
                    }
                }
            }
            full(bytes)
        } else {
            super::body::empty()
        };
        let req = Request::from_parts(parts, body);
        let is_get = req.method() == Method::GET;
        let resp = call_service(service, req).await;
        // The session (if any) is in its upstream's table now.
        drop(opening);
        let resp = match resp {
            Ok(r) => r,
            Err(e) => match e.downcast::<Error>() {
                Ok(e) => from_error(&e, None),
                Err(e) => {
                    tracing::warn!(server = %route_name, error = %e, "service failed");
                    http_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        None,
                        INTERNAL_ERROR,
                        "internal gateway error",
                    )
                }
            },
        };
        let resp = if is_get && is_sse(&resp) {
            let mut stopping = st.stopping.subscribe();
            let stop = Box::pin(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
            resp.map(|b| super::body::boxed(StopOnShutdown { inner: b, stop }))
        } else {
            resp
        };
        (server, resp)
    }
}

/// A reservation for one session being opened (an `initialize` in flight): counted with the
/// live sessions against `limits.max_sessions` until its answer is back.
struct SessionSlot<'a>(&'a State);

impl<'a> SessionSlot<'a> {
    fn take(front: &'a Front) -> Option<SessionSlot<'a>> {
        let st = &*front.state;
        let opening = st.opening_sessions.fetch_add(1, Ordering::SeqCst) + 1;
        if front.session_count() + opening > st.limits.max_sessions {
            st.opening_sessions.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(SessionSlot(st))
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        self.0.opening_sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// True when `body` is an `initialize` request (alone or in a batch): a request that opens a
/// session. Parsed only when the bytes mention it.
fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct MethodOnly<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Msg<'a> {
        #[serde(borrow)]
        One(MethodOnly<'a>),
        #[serde(borrow)]
        Batch(Vec<MethodOnly<'a>>),
    }
    if memchr::memmem::find(body, b"initialize").is_none() {
        return false;
    }
    match serde_json::from_slice::<Msg>(body) {
        Ok(Msg::One(m)) => m.method.as_deref() == Some("initialize"),
        Ok(Msg::Batch(ms)) => ms.iter().any(|m| m.method.as_deref() == Some("initialize")),
        Err(_) => false,
    }
}

// These two are plain functions returning boxed futures: inlined in the async fn, the boxed
// error's elided lifetimes trip rustc's higher-ranked Send check (rust-lang/rust#102211).
pub(crate) fn call_service(
    svc: ServerService,
    req: Request<Body>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>> {
    Box::pin(svc.oneshot(req))
}

/// Collects at most `max` bytes; `Err(true)` when the body is larger.
fn collect_limited(
    body: Body,
    max: usize,
) -> std::pin::Pin<Box<dyn Future<Output = Result<bytes::Bytes, bool>> + Send>> {
    Box::pin(async move {
        let mut body = body;
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| false)?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max {
                    return Err(true);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    })
}

fn is_sse(r: &Response<Body>) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// A stream that ends cleanly when the gateway starts shutting down.
struct StopOnShutdown {
    inner: Body,
    stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl http_body::Body for StopOnShutdown {
    type Data = bytes::Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, BoxError>>> {
        if self.stop.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }
}

/// The stack that adds nothing: the upstream alone.
pub fn identity(_server: &str, up: Upstream) -> ServerService {
    BoxCloneSyncService::new(up.map_err(|never: Infallible| -> BoxError { match never {} }))
}

fn text(status: StatusCode, ctype: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn reject(st: &State, status: StatusCode, msg: &str) -> Response<Body> {
    st.metrics.add_rejected();
    http_error(status, None, INVALID_REQUEST, msg)
}

fn rejectb(st: &State, status: StatusCode, msg: &str) -> Box<Response<Body>> {
    Box::new(reject(st, status, msg))
}

fn too_large(st: &State, max: usize) -> Response<Body> {
    reject(
        st,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {max} bytes"),
    )
}

/// The host of an authority (`Example.com:80` → `example.com`, `[::1]:80` → `[::1]`), lower
/// case; `None` for anything that is not a plain `host[:port]` (user info, garbage).
fn authority_host(a: &Authority) -> Option<String> {
    if a.as_str().contains('@') || a.host().is_empty() {
        return None;
    }
    Some(a.host().to_ascii_lowercase())
}

/// The request's host for the DNS-rebinding check: the authority of an absolute-form URI, else
/// the single `Host` header; both must agree when both are present.
fn request_host(uri: &Uri, h: &http::HeaderMap) -> Result<Option<String>, &'static str> {
    let mut hosts = h.get_all(header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err("forbidden: more than one Host header");
    }
    let header = match header {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<Authority>().ok())
                .ok_or("forbidden: the Host header is not a host[:port]")?,
        ),
    };
    let target = uri.authority();
    if let Some(t) = target {
        if authority_host(t).is_none() {
            return Err("forbidden: the request target's authority is not a host[:port]");
        }
    }
    match (target, header.as_ref()) {
        (Some(t), Some(hd)) => {
            let same = t.host().eq_ignore_ascii_case(hd.host()) && t.port_u16() == hd.port_u16();
            if !same {
                return Err("forbidden: the request target's authority and the Host header disagree");
            }
            Ok(authority_host(t))
        }
        (Some(a), None) | (None, Some(a)) => authority_host(a)
            .map(Some)
            .ok_or("forbidden: the Host header is not a host[:port]"),
        (None, None) => Ok(None),
    }
}

fn check_host_origin(st: &State, uri: &Uri, h: &http::HeaderMap) -> Result<(), Box<Response<Body>>> {
    let forbid = |msg: &str| rejectb(st, StatusCode::FORBIDDEN, msg);
    // Malformed or ambiguous hosts are refused even when any host is allowed.
    let host = request_host(uri, h).map_err(forbid)?;
    if !st.allowed_hosts.iter().any(|a| a == "*") {
        let ok = host
            .as_deref()
            .is_some_and(|host| st.allowed_hosts.iter().any(|a| a == host));
        if !ok {
            return Err(forbid(
                "forbidden: Host header not allowed (DNS rebinding protection); see allowed_hosts",
            ));
        }
    }
    let mut origins = h.get_all(header::ORIGIN).iter();
    let origin = origins.next();
    if origins.next().is_some() {
        return Err(forbid("forbidden: more than one Origin header"));
    }
    if let Some(origin) = origin {
        let parsed = origin.to_str().ok().and_then(normalize_origin);
        let ok = match parsed.as_deref() {
            None | Some("*") => false,
            Some(o) if st.allowed_origins.is_empty() => {
                // Default: same-host web origins only (http://localhost:3000 when localhost is
                // allowed).
                o.parse::<Uri>().ok().is_some_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https"))
                        && u.host().is_some_and(|host| {
                            let host = if host.contains(':') && !host.starts_with('[') {
                                format!("[{host}]")
                            } else {
                                host.to_owned()
                            };
                            st.allowed_hosts.iter().any(|a| a == "*" || *a == host)
                        })
                })
            }
            Some(o) => st.allowed_origins.iter().any(|a| a == "*" || a == o),
        };
        if !ok {
            return Err(forbid("forbidden: Origin not allowed; see allowed_origins"));
        }
    }
    Ok(())
}

/// A background task of the serve loop, stopped when the loop ends or its future is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often [`keep_timer_deadline_near`] ticks.
const TIMER_TICK: Duration = Duration::from_millis(500);

/// Ticks every [`TIMER_TICK`], doing nothing, for as long as the runtime serves.
///
/// Every connection arms hyper's header-read timeout (30 s) while it waits for a request. When
/// the runtime's timer has nothing due sooner, the new deadline is the earliest one, and tokio
/// must wake the thread parked on the I/O driver (an eventfd write, a context switch) so that
/// it sleeps less long: one to two wake-ups per relayed call when clients open a connection
/// per call, as the rmcp client does. With this tick, a deadline at most [`TIMER_TICK`] away is
/// always pending, so a new 30 s deadline never is the earliest. The cost is two wake-ups a
/// second when idle.
async fn keep_timer_deadline_near() {
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn host_of(uri: &str, hosts: &[&str]) -> Result<Option<String>, &'static str> {
        let mut h = http::HeaderMap::new();
        for v in hosts {
            h.append(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        request_host(&uri.parse().unwrap(), &h)
    }

    #[test]
    fn hosts() {
        for (i, o) in [
            ("a:1", "a"),
            ("A", "a"),
            ("[::1]:8", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:9", "127.0.0.1"),
        ] {
            assert_eq!(host_of("/x", &[i]).unwrap().as_deref(), Some(o), "{i}");
        }
        assert_eq!(host_of("/x", &[]).unwrap(), None);
        assert!(host_of("/x", &["a", "a"]).is_err(), "duplicate Host");
        assert!(host_of("/x", &["u@a"]).is_err(), "user info");
        assert!(host_of("/x", &["a b"]).is_err());
        assert_eq!(
            host_of("http://Evil.example/x", &[]).unwrap().as_deref(),
            Some("evil.example")
        );
        assert!(host_of("http://evil.example/x", &["localhost"]).is_err());
        assert!(host_of("http://localhost:1/x", &["localhost:2"]).is_err());
        assert_eq!(
            host_of("http://localhost:1/x", &["LOCALHOST:1"])
                .unwrap()
                .as_deref(),
            Some("localhost")
        );
    }

    #[test]
    fn initialize_is_recognised() {
        assert!(is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#
        ));
        assert!(is_initialize(
            br#"[{"jsonrpc":"2.0","id":1,"method":"initialize"}]"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"initialize"}}"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
        ));
        assert!(!is_initialize(b"initialize"));
    }
}
