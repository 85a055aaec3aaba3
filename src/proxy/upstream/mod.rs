//! Upstream transports behind one enum, each presented as the same Streamable HTTP service:
//! [`HttpUpstream`] relays to an HTTP server, [`StdioUpstream`] emulates one in front of child
//! processes.
//!
//! Both map sessions: the client only ever sees session ids minted by the gateway, bound to the
//! client that created them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::http::{HeaderName, Request, Response};

use crate::config::{Limits, ServerConfig, Transport};
use crate::proxy::body::Body;
use crate::proxy::metrics::Metrics;

mod conn;
pub mod http;
pub mod stdio;

pub use self::http::HttpUpstream;
pub use self::stdio::StdioUpstream;

/// The `Mcp-Session-Id` header (lower case).
pub const MCP_SESSION_ID: &str = "mcp-session-id";

/// Request extension naming the authenticated client (`anonymous` when absent). Sessions and
/// stdio children are bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(pub Arc<str>);

/// The client a request belongs to: the layer's [`ClientScope`](crate::layer::ClientScope)
/// when present, else a [`ClientName`] extension, else `anonymous`.
pub fn client_of(ext: &::http::Extensions) -> Arc<str> {
    if let Some(cs) = ext.get::<crate::layer::ClientScope>() {
        return cs.client.clone();
    }
    ext.get::<ClientName>()
        .map(|c| c.0.clone())
        .unwrap_or_else(|| Arc::from("anonymous"))
}

/// The whole body of a request to an upstream (small, and already buffered by the layer above),
/// or the 400 to answer when it cannot be read.
async fn request_body(body: Body) -> Result<bytes::Bytes, Response<Body>> {
    use http_body_util::BodyExt;
    body.collect().await.map(|b| b.to_bytes()).map_err(|_| {
        crate::layer::response::http_error(
            ::http::StatusCode::BAD_REQUEST,
            None,
            crate::jsonrpc::PARSE_ERROR,
            "request body could not be read",
        )
    })
}

/// The answer to a request for a session that is unknown, ended, expired or another client's
/// (answering request `id`): 404, and the client initializes a new one.
fn session_not_found(id: Option<&serde_json::Value>) -> Response<Body> {
    crate::layer::response::http_error(
        ::http::StatusCode::NOT_FOUND,
        id,
        crate::jsonrpc::SESSION_NOT_FOUND,
        "session not found: it ended or expired; initialize a new one",
    )
}

/// A fresh session id: 128 random bits, hex.
pub fn new_session_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source is available");
    hex::encode(b)
}

/// One upstream server, whichever its transport. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// Streamable HTTP.
    Http(HttpUpstream),
    /// stdio child processes.
    Stdio(StdioUpstream),
}

impl Upstream {
    /// The upstream for `server`. `strip` lists request headers that are the gateway's own
    /// (the scope header) and never forwarded.
    pub fn new(
        server: &ServerConfig,
        limits: &Limits,
        strip: Vec<HeaderName>,
        metrics: Arc<Metrics>,
    ) -> Upstream {
        match &server.transport {
            Transport::Http { url, headers, tls } => Upstream::Http(HttpUpstream::new(
                &server.name,
                url.clone(),
                headers.clone(),
                tls.as_ref().map(|t| t.config.clone()),
                strip,
                limits,
                metrics,
            )),
            Transport::Stdio { command, args, env } => Upstream::Stdio(StdioUpstream::new(
                &server.name,
                command,
                args,
                env,
                limits,
                metrics,
            )),
        }
    }

    /// Relays one request; failures become JSON-RPC error responses.
    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        match self {
            Upstream::Http(h) => h.call(req).await,
            Upstream::Stdio(s) => s.call(req).await,
        }
    }

    /// Number of live downstream sessions.
    pub fn session_count(&self) -> usize {
        match self {
            Upstream::Http(h) => h.session_count(),
            Upstream::Stdio(s) => s.session_count(),
        }
    }

    /// Ends sessions idle for longer than `limits.session_idle`; returns how many.
    pub async fn sweep(&self) -> usize {
        match self {
            Upstream::Http(h) => h.sweep(),
            Upstream::Stdio(s) => s.sweep().await,
        }
    }

    /// Ends every session: forgets HTTP mappings, stops and reaps stdio children.
    pub async fn shutdown(&self) {
        match self {
            Upstream::Http(h) => h.shutdown(),
            Upstream::Stdio(s) => s.shutdown().await,
        }
    }
}

impl tower_service::Service<Request<Body>> for Upstream {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.call(req).await) })
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded.
pub(crate) mod hop_by_hop {
    use http::{header, HeaderMap, HeaderName};

    /// True for a hop-by-hop header.
    pub(crate) fn is(h: &HeaderName) -> bool {
        h == header::CONNECTION
            || h == header::TE
            || h == header::TRAILER
            || h == header::TRANSFER_ENCODING
            || h == header::UPGRADE
            || h == header::PROXY_AUTHENTICATE
            || h == header::PROXY_AUTHORIZATION
            || h.as_str() == "keep-alive"
            || h.as_str() == "proxy-connection"
    }

    /// Headers named in `Connection`.
    pub(crate) fn connection_listed(h: &HeaderMap) -> Vec<HeaderName> {
        h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect()
    }
}
