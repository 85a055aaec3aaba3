//! Streamable HTTP upstream: pooled HTTP/1 connections (`conn.rs`, TCP_NODELAY), per-server
//! credential headers, timeouts, streamed responses and mapped session ids.
//!
//! The gateway issues its own `Mcp-Session-Id` to the client and keeps the upstream's to
//! itself: a session id seen by the sandbox is useless anywhere but here, and it is bound to
//! the client that created it. DELETE ends both.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;

use super::conn::{Pool, SendError};
use super::{hop_by_hop, new_session_id, MCP_SESSION_ID};
use crate::config::Limits;
use crate::proxy::body::{boxed, full, Body, IdleTimeoutBody};
use crate::proxy::jsonrpc::{error_response, request_id, SESSION_NOT_FOUND};
use crate::proxy::metrics::Metrics;

struct Session {
    upstream_id: HeaderValue,
    client: Arc<str>,
    /// Milliseconds since `Inner::epoch` of the last request.
    last: AtomicU64,
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
    timeout: Duration,
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
        strip: Vec<HeaderName>,
        limits: &Limits,
        metrics: Arc<Metrics>,
    ) -> HttpUpstream {
        HttpUpstream {
            inner: Arc::new(Inner {
                name: Arc::from(name),
                pool: Arc::new(Pool::new(url.clone(), limits.connect_timeout)),
                url,
                headers,
                strip,
                sessions: DashMap::new(),
                reverse: DashMap::new(),
                timeout: limits.upstream_timeout,
                idle: limits.session_idle,
                epoch: Instant::now(),
                metrics,
            }),
        }
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
        // Requests are small and already buffered by the layer above; collect to know the id
        // for error responses.
        let bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    None,
                    -32700,
                    "request body could not be read",
                )
            }
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
        let upstream_session = match &gw_session {
            None => None,
            Some(s) => match inner.sessions.get(s) {
                Some(sess) if *sess.client == *client_name => {
                    sess.last.store(inner.now_ms(), Ordering::Relaxed);
                    Some(sess.upstream_id.clone())
                }
                _ => {
                    return error_response(
                        StatusCode::NOT_FOUND,
                        id_of(&bytes).as_ref(),
                        SESSION_NOT_FOUND,
                        "session not found: it ended or expired; initialize a new one",
                    )
                }
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
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    id_of(&bytes).as_ref(),
                    -32002,
                    &format!("upstream {} did not answer in time", inner.name),
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(server = %inner.name, error = %e, "upstream unreachable");
                let msg = if matches!(e, SendError::Connect(_)) {
                    "is unreachable"
                } else {
                    "failed"
                };
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    id_of(&bytes).as_ref(),
                    -32002,
                    &format!("upstream {} {msg}", inner.name),
                );
            }
            Ok(Ok(r)) => r,
        };
        inner.metrics.upstream_latency(&inner.name, started.elapsed());

        let (mut rparts, rbody) = res.into_parts();
        let extra_hop = hop_by_hop::connection_listed(&rparts.headers);
        rparts.headers.retain_hop(&extra_hop);
        rparts.headers.remove(header::CONTENT_LENGTH);
        rparts.headers.remove(header::SET_COOKIE);

        // Session bookkeeping.
        let status = rparts.status;
        if let Some(up_id) = rparts.headers.remove(MCP_SESSION_ID) {
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
                        },
                    );
                    inner.reverse.insert(up_id, g.clone());
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
            Response::from_parts(rparts, boxed(rbody))
        } else {
            // A JSON body may not stall for longer than the upstream timeout.
            Response::from_parts(rparts, boxed(IdleTimeoutBody::new(rbody, inner.timeout)))
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
}

trait RetainHop {
    fn retain_hop(&mut self, extra: &[HeaderName]);
}

impl RetainHop for HeaderMap {
    fn retain_hop(&mut self, extra: &[HeaderName]) {
        let names: Vec<HeaderName> = self
            .keys()
            .filter(|k| hop_by_hop::is(k) || extra.contains(k))
            .cloned()
            .collect();
        for n in names {
            self.remove(n);
        }
    }
}
