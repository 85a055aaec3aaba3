//! An rmcp upstream for the interop scripts (`scripts/interop/run.sh`, `RMCP_UPSTREAM_BIN`): one `echo` tool, served over Streamable HTTP (hyper, no axum) or stdio.
//! Usage: rmcp_upstream http 127.0.0.1:3003   (endpoint http://127.0.0.1:3003/mcp, any path works)
//!        rmcp_upstream stdio
use rmcp::{
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    },
    ServerHandler, ServiceExt,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// Text to echo back.
    message: String,
}

#[derive(Clone)]
struct Demo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Demo {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Echo back the message")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        format!("Echo: {}", args.message)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("stdio") => {
            let running = Demo::new().serve(rmcp::transport::stdio()).await?;
            running.waiting().await?;
        }
        _ => {
            let addr = args.next().unwrap_or_else(|| "127.0.0.1:3003".into());
            // legacy_session_mode(true) is the default: Mcp-Session-Id for <=2025-11-25 clients;
            // 2026-07-28 requests are always served statelessly.
            let config = StreamableHttpServerConfig::default();
            let service: StreamableHttpService<Demo, LocalSessionManager> =
                StreamableHttpService::new(|| Ok(Demo::new()), Default::default(), config);
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            eprintln!("rmcp demo upstream on http://{addr}/mcp");
            loop {
                let (stream, _) = listener.accept().await?;
                // Small answers must not wait for the peer's delayed ACK (Nagle).
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let mut service = service.clone();
                        async move { tower_service::Service::call(&mut service, req).await }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        }
    }
    Ok(())
}
