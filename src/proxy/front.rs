//! The HTTP front: a hyper 1 server routing `/servers/{name}/mcp` to each server's service
//! stack, plus `/healthz` and `/metrics`.
//!
//! In order, for each MCP request: route → Host and Origin checks (DNS rebinding) → method
//! (POST, GET, DELETE) → body size limit → the server's stack (the `PiiLayer`: bearer
//! authentication, the client's server list and the scope; then restore/tokenize; then the
//! upstream). Every refusal is a JSON-RPC error with the right HTTP status.
//!
//! Shutdown ([`Front::serve`]'s `shutdown` future): stop accepting, ask every connection to
//! finish its in-flight request, wait up to `limits.shutdown_grace`, then stop the upstreams
//! (stdio children are reaped).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use super::body::{boxed, full, Body, BoxError};
use super::jsonrpc::{error_response, from_error, GATEWAY_REJECTED};
use super::metrics::{Metrics, Outcome};
use super::upstream::Upstream;
use crate::config::{Config, Limits};
use crate::error::Error;

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
            }),
        }
    }

    /// The service stack of server `name`, for in-process callers (the stdio front). Requests
    /// given to it skip the front's Host, Origin and size checks.
    pub fn service(&self, name: &str) -> Option<ServerService> {
        self.state.routes.get(name).map(|r| r.service.clone())
    }

    /// Stops every upstream (stdio children are reaped).
    pub async fn shutdown_upstreams(&self) {
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
        let (stop_tx, stop_rx) = watch::channel(false);
        // Idle sessions are ended in the background.
        let sweeper = {
            let ups = self.state.upstreams.clone();
            let every =
                (self.state.limits.session_idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    for u in &ups {
                        let n = u.sweep().await;
                        if n > 0 {
                            tracing::info!(sessions = n, "ended idle sessions");
                        }
                    }
                }
            })
        };
        let mut conns = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE and friends: back off briefly rather than spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let this = self.clone();
                    let mut stop = stop_rx.clone();
                    conns.spawn(async move {
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
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        sweeper.abort();
        tracing::info!(
            connections = conns.len(),
            "shutting down: finishing in-flight requests"
        );
        drop(listener);
        let _ = stop_tx.send(true);
        // GET streams never finish on their own: end them so connections can close.
        self.state.stopping.send_replace(true);
        let grace = self.state.limits.shutdown_grace;
        if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                left = conns.len(),
                "shutdown grace elapsed; closing remaining connections"
            );
            conns.abort_all();
        }
        futures_util::future::join_all(self.state.upstreams.iter().map(|u| u.shutdown())).await;
        tracing::info!("stopped");
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
                self.state.metrics.request(s, Outcome::of(status));
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
            "/healthz" => return (None, text(StatusCode::OK, "text/plain", "ok\n".into())),
            "/metrics" => {
                return (
                    None,
                    text(StatusCode::OK, "text/plain; version=0.0.4", st.metrics.render()),
                )
            }
            _ => {}
        }
        let Some(name) = path
            .strip_prefix("/servers/")
            .and_then(|r| r.strip_suffix("/mcp"))
        else {
            return (
                None,
                reject(
                    st,
                    StatusCode::NOT_FOUND,
                    "not found: MCP servers are at /servers/{name}/mcp",
                ),
            );
        };
        let Some(route) = st.routes.get(name) else {
            return (None, reject(st, StatusCode::NOT_FOUND, "no such server"));
        };
        let server = Some(route.name.clone());
        if let Err(r) = check_host_origin(st, req.headers()) {
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
        let body = if parts.method == Method::POST {
            match collect_limited(body, max).await {
                Ok(b) => full(b),
                Err(true) => return (server, too_large(st, max)),
                Err(false) => {
                    return (
                        server,
                        reject(st, StatusCode::BAD_REQUEST, "request body could not be read"),
                    )
                }
            }
        } else {
            super::body::empty()
        };
        let req = Request::from_parts(parts, body);
        let (service, route_name) = (route.service.clone(), route.name.clone());
        let is_get = req.method() == Method::GET;
        let resp = match call_service(service, req).await {
            Ok(r) => r,
            Err(e) => match e.downcast::<Error>() {
                Ok(e) => from_error(&e, None),
                Err(e) => {
                    tracing::warn!(server = %route_name, error = %e, "service failed");
                    error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        None,
                        -32603,
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
    error_response(status, None, GATEWAY_REJECTED, msg)
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

/// The host part of a Host header value (`example.com:80` → `example.com`, `[::1]:80` → `[::1]`).
fn host_only(h: &str) -> &str {
    if h.starts_with('[') {
        return h.find(']').map_or(h, |i| &h[..=i]);
    }
    h.rsplit_once(':').map_or(h, |(host, _)| host)
}

fn check_host_origin(st: &State, h: &http::HeaderMap) -> Result<(), Box<Response<Body>>> {
    if !st.allowed_hosts.iter().any(|a| a == "*") {
        let host = h
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|v| host_only(v).to_ascii_lowercase());
        let ok = host
            .as_deref()
            .is_some_and(|host| st.allowed_hosts.iter().any(|a| a == host));
        if !ok {
            return Err(rejectb(
                st,
                StatusCode::FORBIDDEN,
                "forbidden: Host header not allowed (DNS rebinding protection); see allowed_hosts",
            ));
        }
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let o = origin
            .to_str()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_ascii_lowercase();
        let ok = if st.allowed_origins.is_empty() {
            // Default: same-host origins only (http://localhost:3000 when localhost is allowed).
            o.split_once("://")
                .map(|(_, rest)| host_only(rest))
                .is_some_and(|host| st.allowed_hosts.iter().any(|a| a == "*" || a == host))
        } else {
            st.allowed_origins.iter().any(|a| a == "*" || *a == o)
        };
        if !ok {
            return Err(rejectb(
                st,
                StatusCode::FORBIDDEN,
                "forbidden: Origin not allowed; see allowed_origins",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::host_only;
    #[test]
    fn hosts() {
        for (i, o) in [
            ("a:1", "a"),
            ("a", "a"),
            ("[::1]:8", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:9", "127.0.0.1"),
        ] {
            assert_eq!(host_only(i), o);
        }
    }
}
