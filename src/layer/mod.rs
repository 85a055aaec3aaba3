//! Tower layers: PII tokenization for `http::Request` / `http::Response` MCP services.
//!
//! Put [`PiiLayer`] in front of a Streamable HTTP MCP service (rmcp's `StreamableHttpService`,
//! an upstream forwarder, ...) with one `.layer(...)`: results, notifications and
//! server-initiated requests reach the client with placeholders (`[EMAIL_1]`), and placeholders
//! in the client's requests reach the service as the real values again.
//!
//! ```no_run
//! use mcp_pii_gateway::layer::{body::{boxed, Body}, PiiLayer};
//! use tower::ServiceBuilder;
//! # async fn serve<S>(mcp_service: S) where
//! #   S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = std::convert::Infallible>
//! #     + Clone + Send + 'static, S::Future: Send {
//! let svc = ServiceBuilder::new()
//!     .layer(PiiLayer::new("crm").scope_header(http::HeaderName::from_static("x-agent-run")))
//!     .service(mcp_service);
//! // hyper: `TowerToHyperService::new(svc.map_request(|r: http::Request<hyper::body::Incoming>| r.map(boxed)))`
//! # }
//! ```
//!
//! # The pieces
//! One concern each, composable in another order or without [`PiiLayer`]:
//! - [`scope::ScopeLayer`]: the client (bearer token → name, or `anonymous`) and the scope
//!   (scope header, else `Mcp-Session-Id`, else the client's default scope); 401 / 403 / 400.
//! - [`trace::TraceLayer`]: one span and one log line per exchange, never a value.
//! - [`rewrite::RewriteLayer`]: restore toward the server (all or nothing; unknown placeholders
//!   and policy denials answer a JSON-RPC error and forward nothing), tokenize toward the model
//!   (JSON bodies, SSE event by event as they arrive). Fails closed.
//!
//! [`RewriteLayer`] drives the transport-free [`PiiCore`](crate::exchange::PiiCore), whose
//! [`Hooks`](crate::exchange::Hooks) are where flow policy and audit plug in
//! ([`PolicyHooks`](crate::exchange::PolicyHooks)). The gateway's stdio front and stdio
//! upstreams speak Streamable HTTP at this boundary, so they go through these layers too.
//!
//! `PiiLayer` is `ScopeLayer` → `TraceLayer` → `RewriteLayer`, outermost first. Ordering
//! matters: the scope must be known before the trace span opens and before rewriting, and any
//! layer that logs bodies must sit *inside* `RewriteLayer`'s request side and *outside* its
//! response side — better: log no bodies at all.
//!
//! # Types and bounds
//! - The stack's body type is [`body::Body`]:
//!   a boxed `Bytes` body (a struct wrapping `UnsyncBoxBody<Bytes, BoxError>`) with
//!   [`body::BoxError`] = `Box<dyn Error + Send + Sync>`.
//!   Convert any body with [`body::boxed`] (hyper's `Incoming`, `Full<Bytes>`, rmcp's
//!   `BoxBody<Bytes, Infallible>`).
//! - `PiiLayer::layer(inner)` (and `RewriteLayer`) accept an inner service
//!   `S: Service<http::Request<Body>, Response = http::Response<ResB>> + Clone + Send + 'static`
//!   with `S::Future: Send + 'static`, `S::Error: Display + Send + 'static` (e.g.
//!   `Infallible` or `BoxError`), `ResB: http_body::Body<Data = Bytes> + Send + 'static`,
//!   `ResB::Error: Into<BoxError>`.
//! - The resulting service takes `http::Request<ReqB>` for any
//!   `ReqB: http_body::Body<Data = Bytes> + Send + 'static, ReqB::Error: Into<BoxError>`,
//!   answers `http::Response<Body>`, and has the inner service's error type: layer-level
//!   failures (limits, bad JSON, unknown placeholders, auth) are HTTP responses with JSON-RPC
//!   error bodies, never service errors.

pub mod body;
pub mod headers;
mod pii;
pub mod response;
pub mod rewrite;
pub mod scope;
pub mod sse;
pub mod trace;

pub use body::{Body, BoxError};
pub use pii::PiiLayer;
pub use rewrite::{Rewrite, RewriteLayer};
pub use scope::{ClientScope, Clients, Scope, ScopeLayer};
pub use trace::{Trace, TraceLayer};
