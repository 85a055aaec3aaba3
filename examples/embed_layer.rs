//! An rmcp MCP server protected by `PiiLayer` with one `.layer(...)`, served by hyper.
//!
//! ```text
//! cargo run --example embed_layer                 # serve on 127.0.0.1:8090, run a demo client once
//! cargo run --example embed_layer -- 127.0.0.1:9000 --no-demo
//! ```
//!
//! The server's `lookup_customer` tool returns an email address and a phone number; the client
//! sees `[EMAIL_1]` and `[PHONE_1]`. When the client calls `send_email` with `[EMAIL_1]`, the
//! tool receives the real address. Requests carrying `x-agent-run: <id>` share one scope per id.
//! The data is generated (example.org, a 555-01xx number).

use std::collections::HashMap;

use http::{HeaderName, HeaderValue};
use mcp_pii_gateway::layer::PiiLayer;
use rmcp::{
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolRequestParams, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig,
        streamable_http_server::{
            session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
        },
        StreamableHttpClientTransport,
    },
    ServerHandler, ServiceExt,
};
use tower::ServiceBuilder;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct LookupArgs {
    /// Customer id.
    id: u32,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SendArgs {
    /// Recipient address.
    to: String,
    /// Message text.
    text: String,
}

#[derive(Clone)]
struct Customers {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Customers {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Look up a customer's contact details")]
    async fn lookup_customer(&self, Parameters(args): Parameters<LookupArgs>) -> String {
        format!(
            "customer {}: Ana Lima, ana.lima@example.org, +1 202-555-0143",
            args.id
        )
    }

    #[tool(description = "Send an email")]
    async fn send_email(&self, Parameters(args): Parameters<SendArgs>) -> String {
        // The tool sees the real address, never a placeholder.
        eprintln!(
            "[server] send_email received to={} ({} chars of text)",
            args.to,
            args.text.len()
        );
        format!("queued a message to {}", args.to)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Customers {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "mcp_pii_gateway=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let demo = !args.iter().any(|a| a == "--no-demo");

    // The MCP server, as its author would write it...
    let mcp: StreamableHttpService<Customers, LocalSessionManager> = StreamableHttpService::new(
        || Ok(Customers::new()),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    // ...protected by one layer.
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::new("customers").scope_header(HeaderName::from_static("x-agent-run")))
        .service(mcp);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    eprintln!("MCP endpoint (PII-tokenizing): http://{addr}/mcp");
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let hsvc =
                    hyper::service::service_fn(move |req| tower::ServiceExt::oneshot(svc.clone(), req));
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, hsvc)
                    .await;
            });
        }
    });

    if demo {
        run_demo(&format!("http://{addr}/mcp")).await?;
        eprintln!("still serving; Ctrl-C to stop");
    }
    server.await?;
    Ok(())
}

/// What a model-side client sees.
async fn run_demo(url: &str) -> anyhow::Result<()> {
    let mut headers = HashMap::new();
    headers.insert(
        HeaderName::from_static("x-agent-run"),
        HeaderValue::from_static("demo-run"),
    );
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers),
    );
    let client = ().serve(transport).await?;

    let mut args = serde_json::Map::new();
    args.insert("id".into(), 42.into());
    let r = client
        .call_tool(CallToolRequestParams::new("lookup_customer").with_arguments(args))
        .await?;
    println!("client sees: {}", serde_json::to_string(&r.content)?);

    let mut args = serde_json::Map::new();
    args.insert("to".into(), "[EMAIL_1]".into());
    args.insert("text".into(), "Your order shipped.".into());
    let r = client
        .call_tool(CallToolRequestParams::new("send_email").with_arguments(args))
        .await?;
    println!("client sees: {}", serde_json::to_string(&r.content)?);

    let mut args = serde_json::Map::new();
    args.insert("to".into(), "[EMAIL_9]".into());
    args.insert("text".into(), "hi".into());
    match client
        .call_tool(CallToolRequestParams::new("send_email").with_arguments(args))
        .await
    {
        Ok(r) => println!("unexpected: {}", serde_json::to_string(&r.content)?),
        Err(e) => println!("unknown placeholder rejected: {e}"),
    }
    client.cancel().await?;
    Ok(())
}
