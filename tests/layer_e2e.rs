//! End to end: a real rmcp server behind `PiiLayer`, served by hyper on 127.0.0.1:0, and real
//! rmcp clients over Streamable HTTP, in both protocol generations (session-based `initialize`
//! and stateless `server/discover`).
//!
//! Test data is generated: `example.org` addresses.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{HeaderName, HeaderValue};
use mcp_pii_gateway::layer::PiiLayer;
use rmcp::{
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResult, ErrorData, ProtocolVersion, ReadResourceRequestParams,
        ReadResourceResponse, ReadResourceResult, ResourceContents, ServerCapabilities, ServerConfig,
    },
    service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService},
    tool, tool_handler, tool_router,
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig,
        streamable_http_server::{
            session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
        },
        StreamableHttpClientTransport,
    },
    RoleClient, RoleServer, ServerHandler, ServiceExt,
};
use tower::ServiceBuilder;

const EMAIL: &str = "ana.lima@example.org";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SendArgs {
    /// Recipient address.
    to: String,
}

#[derive(Clone)]
struct Crm {
    received: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Crm {
    fn new(received: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            received,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Look up the customer's contact")]
    async fn contact(&self) -> String {
        format!("Ana Lima <{EMAIL}>")
    }

    #[tool(description = "Send an email")]
    async fn send_email(&self, Parameters(args): Parameters<SendArgs>) -> String {
        self.received.lock().unwrap().push(args.to.clone());
        format!("sent to {}", args.to)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Crm {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.received.lock().unwrap().push(request.uri.clone());
        let text = format!("card for {}", request.uri);
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// Serves the rmcp server behind `PiiLayer` on a free port; returns the endpoint URL.
async fn serve(received: Arc<Mutex<Vec<String>>>, json_response: bool) -> String {
    let mcp: StreamableHttpService<Crm, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(Crm::new(received.clone())),
        Default::default(),
        StreamableHttpServerConfig::default().with_json_response(json_response),
    );
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::new("crm").scope_header(HeaderName::from_static("x-agent-run")))
        .service(mcp);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
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
    format!("http://{addr}/mcp")
}

async fn client(url: &str, run: &str, stateless: bool) -> RunningService<RoleClient, ()> {
    let mut headers = HashMap::new();
    headers.insert(
        HeaderName::from_static("x-agent-run"),
        HeaderValue::from_str(run).unwrap(),
    );
    let cfg = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers);
    let transport = StreamableHttpClientTransport::from_config(cfg);
    if stateless {
        ().serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap()
    } else {
        ().serve(transport).await.unwrap()
    }
}

fn text_of(r: &CallToolResult) -> String {
    serde_json::to_value(r).unwrap()["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn call(
    c: &RunningService<RoleClient, ()>,
    name: &'static str,
    to: Option<&str>,
) -> Result<String, String> {
    let mut p = CallToolRequestParams::new(name);
    if let Some(to) = to {
        let mut args = serde_json::Map::new();
        args.insert("to".into(), to.into());
        p = p.with_arguments(args);
    }
    c.call_tool(p)
        .await
        .map(|r| text_of(&r))
        .map_err(|e| e.to_string())
}

async fn round_trip(stateless: bool, json_response: bool) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let url = serve(received.clone(), json_response).await;

    let a = client(&url, "run-1", stateless).await;
    let seen = call(&a, "contact", None).await.unwrap();
    assert_eq!(seen, "Ana Lima <[EMAIL_1]>");

    // The placeholder reaches the server as the real value (and its echo comes back tokenized).
    let echoed = call(&a, "send_email", Some("[EMAIL_1]")).await.unwrap();
    assert_eq!(received.lock().unwrap().as_slice(), [EMAIL]);
    assert_eq!(echoed, "sent to [EMAIL_1]");

    // Same scope from a new connection: same placeholder, still resolvable.
    let a2 = client(&url, "run-1", stateless).await;
    assert_eq!(call(&a2, "contact", None).await.unwrap(), "Ana Lima <[EMAIL_1]>");
    call(&a2, "send_email", Some("[EMAIL_1]")).await.unwrap();
    assert_eq!(received.lock().unwrap().len(), 2);

    // Another scope: the placeholder is unknown there; nothing reaches the server.
    let b = client(&url, "run-2", stateless).await;
    let err = call(&b, "send_email", Some("[EMAIL_1]")).await.unwrap_err();
    assert!(err.contains("[EMAIL_1]"), "{err}");
    assert!(!err.contains(EMAIL), "{err}");
    assert_eq!(received.lock().unwrap().len(), 2);

    // A placeholder in a resource URI: restored in the body and in the `Mcp-Name` header that
    // mirrors it (rmcp rejects a mismatch with -32020 in the stateless revision).
    let res = a
        .read_resource(ReadResourceRequestParams::new("mailto:[EMAIL_1]"))
        .await
        .unwrap();
    assert_eq!(
        received.lock().unwrap().last().unwrap(),
        &format!("mailto:{EMAIL}")
    );
    let res = serde_json::to_value(&res).unwrap();
    assert_eq!(res["contents"][0]["text"], "card for mailto:[EMAIL_1]");
    assert_eq!(res["contents"][0]["uri"], "mailto:[EMAIL_1]");

    for c in [a, a2, b] {
        let _ = c.cancel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_round_trip_session_based_sse() {
    round_trip(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_round_trip_session_based_json() {
    round_trip(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_round_trip_stateless_sse() {
    round_trip(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_round_trip_stateless_json() {
    round_trip(true, true).await;
}
