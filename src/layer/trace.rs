//! One span and one log line per exchange: [`TraceLayer`].
//!
//! The span `mcp_exchange` carries `server`, `client`, `http_method`, and fields the inner
//! layers fill in as they learn them: `mcp_method` (the first request's method, when it looks
//! like a protocol name), `restored`, `placeholders`, `sse_events`, `outcome`. When the response
//! body ends (for a stream: when the stream ends or is dropped), one `exchange` event is logged
//! with `status` and `duration_us`. No value, id, URI or header value is ever recorded.
//!
//! Place it inside [`ScopeLayer`](super::scope::ScopeLayer) (it reads the client from the
//! [`ClientScope`]) and outside [`RewriteLayer`](super::rewrite::RewriteLayer) (whose records
//! land in its span).
//!
//! ```
//! use mcp_pii_gateway::layer::trace::TraceLayer;
//! let layer = TraceLayer::new("crm");
//! # let _ = layer;
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tower_layer::Layer;
use tower_service::Service;
use tracing::{field::Empty, Instrument};

use super::body::{Body, BoxError};
use super::scope::ClientScope;

/// Spans and logs each exchange; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TraceLayer {
    server: Arc<str>,
}

impl TraceLayer {
    /// Traces exchanges with the upstream named `server`.
    pub fn new(server: &str) -> TraceLayer {
        TraceLayer {
            server: Arc::from(server),
        }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            server: self.server.clone(),
        }
    }
}

/// The service made by [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
    server: Arc<str>,
}

impl<S> Trace<S> {
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let client = req
            .extensions()
            .get::<ClientScope>()
            .map(|c| c.client.clone())
            .unwrap_or_else(|| Arc::from("-"));
        let span = tracing::info_span!(
            "mcp_exchange",
            server = %self.server,
            client = %client,
            http_method = %req.method(),
            mcp_method = Empty,
            restored = Empty,
            placeholders = Empty,
            sse_events = Empty,
            outcome = Empty,
        );
        let start = Instant::now();
        let fut = self.inner.call(req).instrument(span.clone());
        Box::pin(async move {
            match fut.await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let (parts, body) = res.into_parts();
                    let body = TraceBody {
                        inner: body,
                        done: Some(Done { span, start, status }),
                    };
                    Ok(Response::from_parts(parts, Body::new(body)))
                }
                Err(e) => {
                    span.record("outcome", "service_error");
                    tracing::warn!(
                        parent: &span,
                        duration_us = start.elapsed().as_micros() as u64,
                        error = %e,
                        "exchange"
                    );
                    Err(e)
                }
            }
        })
    }
}

struct Done {
    span: tracing::Span,
    start: Instant,
    status: u16,
}

impl Done {
    fn log(self, ended: &'static str) {
        let duration_us = self.start.elapsed().as_micros() as u64;
        tracing::info!(parent: &self.span, status = self.status, duration_us, body = ended, "exchange");
    }
}

/// Logs the exchange once, when the body ends, fails or is dropped.
struct TraceBody {
    inner: Body,
    done: Option<Done>,
}

impl http_body::Body for TraceBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(d) = this.done.take() {
                    d.log("complete");
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(d) = this.done.take() {
                    d.log("error");
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TraceBody {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            // hyper drops a body it has fully sent without polling past `is_end_stream`.
            let ended = if http_body::Body::is_end_stream(&self.inner) {
                "complete"
            } else {
                "dropped"
            };
            d.log(ended);
        }
    }
}
