//! A minimal Streamable HTTP MCP client over hyper: enough for the demo, the benchmark and
//! tests (JSON and SSE responses, session ids). Not a general-purpose client.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::sse::SseParser;
use crate::error::{Error, Result};

/// A client bound to one endpoint URL.
#[derive(Debug, Clone)]
pub struct McpHttpClient {
    url: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    session: Option<HeaderValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
    next_id: u64,
}

/// The answer to a request: the response plus anything streamed before it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Messages that came before the response (notifications, server requests).
    pub before: Vec<Value>,
    /// The JSON-RPC response (or the gateway's error body).
    pub response: Value,
}

impl McpHttpClient {
    /// A client for `url` (`http://host:port/path`).
    pub fn new(url: &str) -> Result<McpHttpClient> {
        let url: Uri = url.parse().map_err(|_| Error::bad_input("not a URL"))?;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        Ok(McpHttpClient {
            url,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(conn),
            session: None,
            headers: Vec::new(),
            next_id: 0,
        })
    }

    /// Adds a header to every request (e.g. `authorization`, a scope header).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((n, v));
        }
        self
    }

    /// The session id the server gave on `initialize`, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|v| v.to_str().ok())
    }

    /// Runs `initialize` then `notifications/initialized`; keeps the session id.
    pub async fn initialize(&mut self) -> Result<Value> {
        let a = self
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "mcp-pii-gateway-client", "version": env!("CARGO_PKG_VERSION")}}),
            )
            .await?;
        self.notify("notifications/initialized", json!({})).await?;
        Ok(a.response)
    }

    /// Sends a request; returns the response and anything streamed before it.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Answer> {
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        self.send(Method::POST, Some(msg)).await
    }

    /// Sends a notification.
    pub async fn notify(&mut self, method: &str, params: Value) -> Result<StatusCode> {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        Ok(self.send(Method::POST, Some(msg)).await?.status)
    }

    /// Ends the session (DELETE).
    pub async fn close(&mut self) -> Result<StatusCode> {
        if self.session.is_none() {
            return Ok(StatusCode::OK);
        }
        let s = self.send(Method::DELETE, None).await?.status;
        self.session = None;
        Ok(s)
    }

    async fn send(&mut self, method: Method, body: Option<Value>) -> Result<Answer> {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).expect("a Value always serializes"))
            .unwrap_or_default();
        let mut req = Request::new(Full::new(Bytes::from(bytes)));
        *req.method_mut() = method;
        *req.uri_mut() = self.url.clone();
        let h = req.headers_mut();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(s) = &self.session {
            h.insert("mcp-session-id", s.clone());
            h.insert("mcp-protocol-version", HeaderValue::from_static("2025-11-25"));
        }
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        let res = self
            .client
            .request(req)
            .await
            .map_err(|e| Error::upstream(format!("request failed: {e}")))?;
        let status = res.status();
        if let Some(s) = res.headers().get("mcp-session-id") {
            self.session = Some(s.clone());
        }
        let sse = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = res.into_body();
        let mut before = Vec::new();
        if sse {
            let mut p = SseParser::default();
            while let Some(f) = body.frame().await {
                let f = f.map_err(|e| Error::upstream(format!("stream failed: {e}")))?;
                let Ok(data) = f.into_data() else { continue };
                for ev in p.push(&data) {
                    if ev.data.is_empty() {
                        continue;
                    }
                    let v: Value =
                        serde_json::from_str(&ev.data).map_err(|_| Error::upstream("bad SSE data"))?;
                    if v.get("method").is_none() && v.get("id").is_some() {
                        return Ok(Answer {
                            status,
                            before,
                            response: v,
                        });
                    }
                    before.push(v);
                }
            }
            return Err(Error::upstream("stream ended before the response"));
        }
        let bytes = body
            .collect()
            .await
            .map_err(|e| Error::upstream(format!("body failed: {e}")))?
            .to_bytes();
        let response = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| Error::upstream("response is not JSON"))?
        };
        Ok(Answer {
            status,
            before,
            response,
        })
    }
}
