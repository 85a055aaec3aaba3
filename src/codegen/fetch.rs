//! Getting the catalog: `tools/list` from a running gateway's `/mcp` (every page), or from a
//! gateway started in this process from a configuration.
//!
//! ```no_run
//! # async fn run() -> mcp_pii_gateway::Result<()> {
//! use mcp_pii_gateway::codegen::fetch;
//! let headers = vec![("authorization".to_string(), "Bearer t0ken".to_string())];
//! let catalog = fetch::catalog_from_url("http://127.0.0.1:8080/mcp", &headers).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use super::Catalog;
use crate::config::{Config, VaultBackend};
use crate::error::{Error, Result};
use crate::proxy::client::McpHttpClient;
use crate::proxy::stack::Gateway;

/// Pages beyond this many are refused (a server that never stops paging).
const MAX_PAGES: usize = 10_000;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The `tools` of every `tools/list` page at `url`, following `nextCursor`, in one session that
/// is closed afterwards. `headers` go with every request (authorization, a scope header). A
/// request unanswered after 60 s is an error.
pub async fn list_tools(url: &str, headers: &[(String, String)]) -> Result<Vec<Value>> {
    if !url.starts_with("http://") {
        return Err(Error::bad_input(format!(
            "{url:?}: only http:// URLs are supported (for an https gateway, use --config)"
        )));
    }
    let mut client = McpHttpClient::new(url)?;
    for (name, value) in headers {
        client = client.with_header(name, value);
    }
    let unreachable = |e: Error| {
        let e = e.to_string();
        let e = e.strip_prefix("upstream error: ").unwrap_or(&e);
        Error::upstream(format!("cannot reach {url}: {e}"))
    };
    let hello = json!({
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "mcp-pii-gateway-codegen", "version": env!("CARGO_PKG_VERSION")}});
    let init = timed(client.request("initialize", hello))
        .await
        .map_err(unreachable)?;
    if init.response.get("result").is_none() {
        return Err(refused(url, "initialize", init.status, &init.response));
    }
    timed(client.notify("notifications/initialized", json!({})))
        .await
        .map_err(unreachable)?;
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = BTreeSet::new();
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let a = timed(client.request("tools/list", params))
            .await
            .map_err(unreachable)?;
        let Some(result) = a.response.get("result") else {
            return Err(refused(url, "tools/list", a.status, &a.response));
        };
        match result.get("tools") {
            Some(Value::Array(page)) => tools.extend(page.iter().cloned()),
            _ => {
                return Err(Error::bad_input(format!(
                    "{url}: the tools/list result has no `tools` array"
                )))
            }
        }
        cursor = match result.get("nextCursor") {
            None | Some(Value::Null) => {
                let _ = client.close().await;
                return Ok(tools);
            }
            Some(Value::String(c)) if seen.insert(c.clone()) => Some(c.clone()),
            Some(Value::String(c)) => {
                return Err(Error::bad_input(format!(
                    "{url}: tools/list repeats the cursor {c:?}"
                )))
            }
            Some(_) => {
                return Err(Error::bad_input(format!(
                    "{url}: tools/list has a `nextCursor` that is not a string"
                )))
            }
        };
    }
    Err(Error::bad_input(format!(
        "{url}: tools/list did not end within {MAX_PAGES} pages"
    )))
}

/// `request`, or an error once [`REQUEST_TIMEOUT`] has passed.
async fn timed<T>(request: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| {
            Err(Error::upstream(format!(
                "no answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )))
        })
}

/// An answer without a result: says the status and the server's error message.
fn refused(url: &str, method: &str, status: http::StatusCode, response: &Value) -> Error {
    let message = response
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("no JSON-RPC result");
    let hint = if status == http::StatusCode::UNAUTHORIZED {
        " (pass the client's token with --token)"
    } else {
        ""
    };
    Error::upstream(format!(
        "{url}: {method} failed with HTTP {status}: {message}{hint}"
    ))
}

/// The catalog at `url` (see [`list_tools`]).
pub async fn catalog_from_url(url: &str, headers: &[(String, String)]) -> Result<Catalog> {
    Catalog::from_tools(&list_tools(url, headers).await?)
}

/// The catalog of the gateway `config` describes: the gateway is started in this process on
/// `127.0.0.1` (a free port, plain HTTP even when the configuration sets TLS), asked as
/// [`catalog_from_url`] asks at `/mcp`, and stopped. When the configuration requires the scope
/// header and `headers` lack it, a scope key of its own is sent. What the catalog holds depends
/// on the client: pass its `authorization` header when the configuration has clients.
///
/// This gateway lives for one `tools/list`: it keeps its vault in memory and writes no audit
/// log, so that it never appends to the hash chain of a gateway serving the same configuration.
pub async fn catalog_from_config(config: &Config, headers: &[(String, String)]) -> Result<Catalog> {
    let mut config = config.clone();
    config.audit = None;
    config.vault.backend = VaultBackend::Memory;
    let config = &config;
    let gateway = Gateway::from_config(config)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::internal(format!("cannot listen on 127.0.0.1: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("no local address: {e}")))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let front = gateway.front().clone();
    let served = tokio::spawn(async move {
        front
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    let mut headers = headers.to_vec();
    if let Some(h) = config.scope.header.as_ref().filter(|_| config.scope.required) {
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(h.as_str())) {
            headers.push((h.as_str().to_string(), "mcp-pii-gateway-codegen".to_string()));
        }
    }
    let catalog = catalog_from_url(&format!("http://{addr}/mcp"), &headers).await;
    let _ = stop.send(());
    let _ = served.await;
    gateway.flush()?;
    catalog
}
