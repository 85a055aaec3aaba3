//! The gateway across the transport matrix, with real rmcp servers and clients.
//!
//! Upstreams: rmcp `StreamableHttpService` answering in JSON, the same answering in SSE, and an
//! rmcp server over stdio (this test binary re-executed with `PROXY_TEST_CHILD=1`). Fronts: HTTP
//! (rmcp's Streamable HTTP client) and stdio (rmcp client over a pipe to the stdio front).
//!
//! `harness = false` so the binary can be its own stdio upstream. Run:
//! `cargo test --test proxy_matrix` (optionally `-- FILTER`). `PROXY_TEST_IDENTITY=1` runs the
//! transport checks only (no PII assertions), against the plain relay.
//!
//! Test data is generated: fictional example.com addresses and 555-01xx numbers.
#![allow(clippy::unwrap_used)]
// Sampling is deprecated upstream (SEP-2577) but still part of the protocol the gateway relays.
#![allow(deprecated)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _};
use mcp_pii_gateway::config::Config;
use mcp_pii_gateway::proxy::{stdio_front, Front};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::{PeerRequestOptions, RequestContext, RunningService};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{
    tool, tool_handler, tool_router, ClientHandler, RoleClient, RoleServer, ServerHandler, ServiceExt,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- test upstream (rmcp server)

/// A generated, fictional person for customer `id`.
fn person(id: u64) -> (String, String) {
    let names = ["ana.lima", "kenji.sato", "maria.garcia", "tom.becker"];
    (
        format!("{}@example.com", names[id as usize % names.len()]),
        format!("+1 202-555-01{:02}", id % 100),
    )
}

#[derive(Clone)]
struct Upstream {
    log: PathBuf,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct IdArg {
    id: u64,
}
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SendArgs {
    to: String,
    note: String,
}
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct MsArg {
    ms: u64,
}

fn log_line(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[tool_router]
impl Upstream {
    fn new(log: PathBuf) -> Self {
        Upstream {
            log,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Look up a customer")]
    async fn lookup(&self, Parameters(a): Parameters<IdArg>) -> String {
        let (email, phone) = person(a.id);
        format!("Customer {}: email {email}, phone {phone}", a.id)
    }

    #[tool(description = "Send a message; records what it received")]
    async fn send(&self, Parameters(a): Parameters<SendArgs>) -> String {
        log_line(&self.log, &format!("send to={} note={}", a.to, a.note));
        "sent".to_string()
    }

    #[tool(description = "Reports progress three times")]
    async fn progress(&self, ctx: RequestContext<RoleServer>) -> String {
        if let Some(token) = ctx.meta.get_progress_token() {
            for i in 1..=3 {
                let p: rmcp::model::ProgressNotificationParam = serde_json::from_value(json!({
                    "progressToken": token, "progress": i, "total": 3, "message": format!("step {i} for {}", person(1).0)
                }))
                .unwrap();
                let _ = ctx.peer.notify_progress(p).await;
            }
        }
        "done".to_string()
    }

    #[tool(description = "Asks the client's model")]
    async fn ask_model(&self, ctx: RequestContext<RoleServer>) -> String {
        let (email, _) = person(2);
        let params = serde_json::from_value(json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": format!("Write to {email}")}}],
            "maxTokens": 50
        }))
        .unwrap();
        match ctx.peer.create_message(params).await {
            Ok(r) => {
                let v = serde_json::to_value(&r).unwrap();
                let text = v
                    .pointer("/content/text")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                log_line(&self.log, &format!("model said {text}"));
                format!("model said {text}")
            }
            Err(e) => format!("sampling failed: {e}"),
        }
    }

    #[tool(description = "Asks the user")]
    async fn ask_user(&self, ctx: RequestContext<RoleServer>) -> String {
        let (email, _) = person(3);
        let params = serde_json::from_value(json!({
            "mode": "form",
            "message": format!("Confirm the address {email}"),
            "requestedSchema": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}
        }))
        .unwrap();
        // (rmcp's `create_elicitation` needs its `elicitation` feature; send the request as is.)
        let req = rmcp::model::ServerRequest::ElicitRequest(Request::new(params));
        match ctx.peer.send_request(req).await {
            Ok(r) => {
                let v = serde_json::to_value(&r).unwrap();
                let got = v
                    .pointer("/content/email")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                log_line(&self.log, &format!("user said {got}"));
                format!("user said {got}")
            }
            Err(e) => format!("elicitation failed: {e}"),
        }
    }

    #[tool(description = "Sleeps, unless cancelled")]
    async fn sleep(&self, Parameters(a): Parameters<MsArg>, ctx: RequestContext<RoleServer>) -> String {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(a.ms)) => "slept".to_string(),
            _ = ctx.ct.cancelled() => {
                log_line(&self.log, "cancelled");
                "cancelled".to_string()
            }
        }
    }

    #[tool(description = "Reports progress once, then goes silent until cancelled")]
    async fn stall(&self, ctx: RequestContext<RoleServer>) -> String {
        if let Some(token) = ctx.meta.get_progress_token() {
            let p: rmcp::model::ProgressNotificationParam =
                serde_json::from_value(json!({"progressToken": token, "progress": 1})).unwrap();
            let _ = ctx.peer.notify_progress(p).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => "woke".to_string(),
            _ = ctx.ct.cancelled() => {
                log_line(&self.log, "stall cancelled");
                "cancelled".to_string()
            }
        }
    }

    #[tool(description = "Exits the process (stdio only)")]
    async fn crash(&self) -> String {
        log_line(&self.log, "crash");
        std::process::exit(3);
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Upstream {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(rmcp::model::ServerCapabilities::builder().enable_tools().build())
    }
}

async fn http_upstream(log: PathBuf, json_response: bool) -> anyhow::Result<String> {
    let config = StreamableHttpServerConfig::default()
        .with_json_response(json_response)
        .with_sse_keep_alive(None);
    let service: StreamableHttpService<Upstream, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(Upstream::new(log.clone())), Default::default(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
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
    });
    Ok(format!("http://{addr}/mcp"))
}

// ---------------------------------------------------------------- test client (rmcp client)

#[derive(Clone, Default)]
struct Client {
    seen: Arc<Mutex<Vec<String>>>,
    progress: Arc<AtomicUsize>,
}

fn first_placeholder_or_email(text: &str) -> String {
    // The model answers with whatever address-like token it was shown.
    text.split_whitespace()
        .find(|w| w.starts_with("[EMAIL_") || w.contains('@'))
        .unwrap_or("nothing")
        .to_string()
}

impl ClientHandler for Client {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        serde_json::from_value(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"sampling": {}, "elicitation": {"form": {}}},
            "clientInfo": {"name": "proxy-matrix", "version": "1"}
        }))
        .unwrap()
    }
    async fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, rmcp::ErrorData> {
        let v = serde_json::to_value(&params).unwrap();
        let text = v
            .pointer("/messages/0/content/text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.seen.lock().unwrap().push(format!("sampling: {text}"));
        let reply = first_placeholder_or_email(&text);
        Ok(serde_json::from_value(
            json!({"role": "assistant", "content": {"type": "text", "text": reply}, "model": "test"}),
        )
        .unwrap())
    }
    async fn create_elicitation(
        &self,
        params: rmcp::model::ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        let v = serde_json::to_value(&params).unwrap();
        let text = v.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        self.seen.lock().unwrap().push(format!("elicitation: {text}"));
        let reply = first_placeholder_or_email(&text);
        Ok(serde_json::from_value(json!({"action": "accept", "content": {"email": reply}})).unwrap())
    }
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress.fetch_add(1, Ordering::SeqCst);
        if let Some(m) = params.message {
            self.seen.lock().unwrap().push(format!("progress: {m}"));
        }
    }
}

type Conn = RunningService<RoleClient, Client>;

async fn call(c: &Conn, name: &str, args: Value) -> anyhow::Result<String> {
    let mut p = CallToolRequestParams::new(name.to_string());
    if let Value::Object(m) = args {
        p = p.with_arguments(m);
    }
    let r = c.call_tool(p).await.map_err(|e| anyhow!("{name}: {e}"))?;
    let v = serde_json::to_value(&r)?;
    Ok(v["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default())
}

// ---------------------------------------------------------------- gateway harness

struct Gateway {
    base: String,
    front: Front,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Gateway {
    async fn start(toml: &str) -> anyhow::Result<Gateway> {
        let config = Config::from_toml_str(toml, |_| None).map_err(|e| anyhow!("{e}"))?;
        let front = Front::from_config(&config).map_err(|e| anyhow!("{e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(front.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Ok(Gateway {
            base,
            front,
            stop: Some(tx),
            task: Some(task),
        })
    }
    fn url(&self, server: &str) -> String {
        format!("{}/servers/{server}/mcp", self.base)
    }
    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task.take().unwrap())
            .await
            .context("gateway did not stop")???;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Up {
    HttpJson,
    HttpSse,
    Stdio,
}
#[derive(Clone, Copy, Debug)]
enum Fr {
    Http,
    Stdio,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A `[[servers]]` entry named `name` of kind `up`, logging to `log`.
async fn server_entry(name: &str, up: Up, log: &Path) -> anyhow::Result<String> {
    Ok(match up {
        Up::HttpJson | Up::HttpSse => {
            let url = http_upstream(log.to_path_buf(), matches!(up, Up::HttpJson)).await?;
            format!("[[servers]]\nname = \"{name}\"\nurl = {}\n", toml_str(&url))
        }
        Up::Stdio => format!(
            "[[servers]]\nname = \"{name}\"\ncommand = {}\nenv = {{ PROXY_TEST_CHILD = \"1\", PROXY_TEST_LOG = {} }}\n",
            toml_str(&std::env::current_exe()?.display().to_string()),
            toml_str(&log.display().to_string().replace('$', "$$")),
        ),
    })
}

async fn connect(
    gw: &Gateway,
    fr: Fr,
    server: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(Conn, Client)> {
    let client = Client::default();
    let conn = match fr {
        Fr::Http => {
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let mut cfg = StreamableHttpClientTransportConfig::with_uri(gw.url(server));
            for (k, v) in headers {
                cfg.custom_headers.insert(
                    http::HeaderName::from_bytes(k.as_bytes())?,
                    http::HeaderValue::from_str(v)?,
                );
            }
            let t = rmcp::transport::StreamableHttpClientTransport::from_config(cfg);
            client.clone().serve(t).await?
        }
        Fr::Stdio => {
            let (a, b) = tokio::io::duplex(1 << 16);
            let (r, w) = tokio::io::split(b);
            let svc = gw.front.service(server).context("no such server")?;
            tokio::spawn(async move { stdio_front::run(svc, "stdio", r, w).await });
            client.clone().serve(a).await?
        }
    };
    Ok((conn, client))
}

fn tmp_log(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "proxy-matrix-{}-{tag}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn read_log(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

async fn wait_log(p: &Path, needle: &str) -> anyhow::Result<()> {
    for _ in 0..50 {
        if read_log(p).contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(anyhow!("upstream log lacks {needle:?}: {}", read_log(p)))
}

async fn metrics(gw: &Gateway) -> anyhow::Result<String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
    *req.uri_mut() = format!("{}/metrics", gw.base).parse()?;
    let res = client.request(req).await?;
    Ok(String::from_utf8(
        res.into_body().collect().await?.to_bytes().to_vec(),
    )?)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1.0)
}

fn pii_mode() -> bool {
    std::env::var_os("PROXY_TEST_IDENTITY").is_none()
}

// ---------------------------------------------------------------- scenarios

/// One cell of the matrix: tokenize, restore, progress, sampling, elicitation, cancellation.
async fn matrix_cell(up: Up, fr: Fr) -> anyhow::Result<()> {
    let log = tmp_log("cell");
    let gw = Gateway::start(&server_entry("crm", up, &log).await?).await?;
    let (c, client) = connect(&gw, fr, "crm", &[]).await?;
    let tools = c.list_all_tools().await?;
    ensure!(tools.len() == 8, "tools/list: {}", tools.len());

    // Toward the model: PII becomes placeholders.
    let text = call(&c, "lookup", json!({"id": 5})).await?;
    let (email, phone) = person(5);
    let (to, note) = if pii_mode() {
        ensure!(!text.contains(&email), "raw email reached the client: {text}");
        ensure!(text.contains("[EMAIL_1]"), "no email placeholder: {text}");
        ensure!(text.contains("[PHONE_1]"), "no phone placeholder: {text}");
        ("[EMAIL_1]".to_string(), "call [PHONE_1]".to_string())
    } else {
        ensure!(text.contains(&email), "{text}");
        (email.clone(), format!("call {phone}"))
    };
    // Away from the model: placeholders become values again.
    ensure!(call(&c, "send", json!({"to": to, "note": note})).await? == "sent");
    wait_log(&log, &format!("send to={email} note=call {phone}")).await?;

    // Progress notifications (with PII in their messages) arrive.
    ensure!(call(&c, "progress", json!({})).await? == "done");
    for _ in 0..20 {
        if client.progress.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    ensure!(
        client.progress.load(Ordering::SeqCst) == 3,
        "progress: {}",
        client.progress.load(Ordering::SeqCst)
    );

    // Sampling: the model sees placeholders; its answer reaches the server restored.
    let said = call(&c, "ask_model", json!({})).await?;
    let (email2, _) = person(2);
    wait_log(&log, &format!("model said {email2}")).await?;
    // Elicitation: the same, for the user's answer.
    let said_user = call(&c, "ask_user", json!({})).await?;
    let (email3, _) = person(3);
    wait_log(&log, &format!("user said {email3}")).await?;
    let seen = client.seen.lock().unwrap().join("\n");
    if pii_mode() {
        for raw in [&email, &email2, &email3] {
            ensure!(
                !seen.contains(raw.as_str()),
                "raw value reached the client: {seen}"
            );
            ensure!(
                !said.contains(raw.as_str()) && !said_user.contains(raw.as_str()),
                "{said} {said_user}"
            );
        }
        ensure!(seen.contains("[EMAIL_"), "{seen}");
    }

    // Cancellation reaches the server.
    let mut p = CallToolRequestParams::new("sleep");
    p = p.with_arguments(json!({"ms": 5000}).as_object().unwrap().clone());
    let handle = c
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(p)),
            PeerRequestOptions::no_options(),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.cancel(Some("test".into())).await?;
    wait_log(&log, "cancelled").await?;

    c.cancel().await?;
    gw.stop().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}

/// Same value → same placeholder across two servers in one scope; another scope cannot resolve it.
async fn scopes(up: Up) -> anyhow::Result<()> {
    let log = tmp_log("scope");
    let toml = format!(
        "[scope]\nheader = \"x-agent-run\"\n{}{}",
        server_entry("a", up, &log).await?,
        server_entry("b", up, &log).await?
    );
    let gw = Gateway::start(&toml).await?;
    let run1 = [("x-agent-run", "run-1")];
    let (a, _) = connect(&gw, Fr::Http, "a", &run1).await?;
    let (b, _) = connect(&gw, Fr::Http, "b", &run1).await?;
    let ta = call(&a, "lookup", json!({"id": 6})).await?;
    let tb = call(&b, "lookup", json!({"id": 10})).await?; // a different person first
    let tb2 = call(&b, "lookup", json!({"id": 6})).await?;
    ensure!(ta == tb2, "same value, same scope, two servers: {ta} vs {tb2}");
    ensure!(ta != tb, "{ta} vs {tb}");
    let (other, _) = connect(&gw, Fr::Http, "a", &[("x-agent-run", "run-2")]).await?;
    let r = call(&other, "send", json!({"to": "[EMAIL_1]", "note": "x"})).await;
    ensure!(r.is_err(), "another scope resolved a placeholder: {r:?}");
    ensure!(
        !read_log(&log).contains("send to="),
        "something was forwarded: {}",
        read_log(&log)
    );
    let m = metrics(&gw).await?;
    let minted = metric(&m, "mcp_gateway_placeholders_minted_total");
    // Customers 6 and 10 share an email (ids wrap over four names) and differ in phone.
    ensure!(minted == 3.0, "one email and two phones: {minted}\n{m}");
    let ok = metric(&m, "mcp_gateway_requests_total{server=\"a\",outcome=\"ok\"}");
    ensure!(ok >= 1.0, "{m}");
    for c in [a, b, other] {
        c.cancel().await?;
    }
    gw.stop().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}

/// Two clients with the same scope header value never resolve each other's placeholders.
async fn clients_isolated(up: Up) -> anyhow::Result<()> {
    let log = tmp_log("clients");
    let sha = |t: &str| hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
    let toml = format!(
        "[scope]\nheader = \"x-agent-run\"\n\
         [[clients]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nservers = [\"crm\"]\n\
         [[clients]]\nname = \"b\"\ntoken_sha256 = \"{}\"\nservers = [\"crm\"]\n{}",
        sha("token-a"),
        sha("token-b"),
        server_entry("crm", up, &log).await?
    );
    let gw = Gateway::start(&toml).await?;
    let (a, _) = connect(
        &gw,
        Fr::Http,
        "crm",
        &[("x-agent-run", "run-1"), ("authorization", "Bearer token-a")],
    )
    .await?;
    let (b, _) = connect(
        &gw,
        Fr::Http,
        "crm",
        &[("x-agent-run", "run-1"), ("authorization", "Bearer token-b")],
    )
    .await?;
    let t = call(&a, "lookup", json!({"id": 4})).await?;
    ensure!(t.contains("[EMAIL_1]"), "{t}");
    let r = call(&b, "send", json!({"to": "[EMAIL_1]", "note": "x"})).await;
    ensure!(r.is_err(), "client b resolved client a's placeholder: {r:?}");
    ensure!(call(&a, "send", json!({"to": "[EMAIL_1]", "note": "x"})).await? == "sent");
    wait_log(&log, &format!("send to={} note=x", person(4).0)).await?;
    ensure!(
        read_log(&log).matches("send to=").count() == 1,
        "{}",
        read_log(&log)
    );
    for c in [a, b] {
        c.cancel().await?;
    }
    gw.stop().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}

/// An upstream that goes silent mid-stream: the client gets an error after the upstream
/// timeout instead of waiting forever, and the request is cancelled in the server.
async fn silent_upstream(up: Up) -> anyhow::Result<()> {
    let log = tmp_log("silent");
    let toml = format!(
        "[limits]\nupstream_timeout = \"1s\"\n{}",
        server_entry("crm", up, &log).await?
    );
    let gw = Gateway::start(&toml).await?;
    let (c, _) = connect(&gw, Fr::Http, "crm", &[]).await?;
    let started = std::time::Instant::now();
    let r = call(&c, "stall", json!({})).await;
    ensure!(r.is_err(), "{r:?}");
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    wait_log(&log, "stall cancelled").await?;
    c.cancel().await?;
    gw.stop().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}

/// A crashing stdio child: its request fails, the next one works (restarted, session replayed).
async fn stdio_restart(fr: Fr) -> anyhow::Result<()> {
    let log = tmp_log("crash");
    let gw = Gateway::start(&server_entry("crm", Up::Stdio, &log).await?).await?;
    let (c, _) = connect(&gw, fr, "crm", &[]).await?;
    ensure!(call(&c, "lookup", json!({"id": 1}))
        .await?
        .starts_with("Customer 1"));
    let r = call(&c, "crash", json!({})).await;
    ensure!(r.is_err(), "crash returned {r:?}");
    wait_log(&log, "crash").await?;
    let t = call(&c, "lookup", json!({"id": 1})).await?;
    ensure!(t.starts_with("Customer 1"), "after restart: {t}");
    c.cancel().await?;
    gw.stop().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}

/// A session idle past `limits.session_idle` is ended: its child is stopped, its id is gone.
async fn idle_session_ends(up: Up) -> anyhow::Result<()> {
    let log = tmp_log("idle");
    let toml = format!(
        "[limits]\nsession_idle = \"1s\"\n{}",
        server_entry("crm", up, &log).await?
    );
    let gw = Gateway::start(&toml).await?;
    // A plain client: no GET stream (an open stream keeps a session alive) and no automatic
    // re-initialization (rmcp's client starts a new session on 404).
    let mut c = mcp_pii_gateway::proxy::client::McpHttpClient::new(&gw.url("crm"))?;
    c.initialize().await?;
    let args = json!({"name": "lookup", "arguments": {"id": 1}});
    let a = c.request("tools/call", args.clone()).await?;
    ensure!(a.status == 200, "{:?}", a.response);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let a = c.request("tools/call", args).await?;
    ensure!(
        a.status == 404,
        "an idle session was still served: {} {}",
        a.status,
        a.response
    );
    gw.stop().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}

/// Shutdown with a client still connected (its GET stream open): the stream ends, the gateway
/// stops well within the grace period, and the stdio child is reaped.
async fn shutdown_with_open_streams(up: Up) -> anyhow::Result<()> {
    let log = tmp_log("shutdown");
    let gw = Gateway::start(&server_entry("crm", up, &log).await?).await?;
    let (c, _) = connect(&gw, Fr::Http, "crm", &[]).await?;
    ensure!(call(&c, "lookup", json!({"id": 1}))
        .await?
        .starts_with("Customer 1"));
    tokio::time::sleep(Duration::from_millis(200)).await; // let the GET stream open
    let started = std::time::Instant::now();
    gw.stop().await?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(c);
    let _ = std::fs::remove_file(&log);
    Ok(())
}

// ---------------------------------------------------------------- runner

type Case = (String, Pin<Box<dyn Future<Output = anyhow::Result<()>>>>);

fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    for up in [Up::HttpJson, Up::HttpSse, Up::Stdio] {
        for fr in [Fr::Http, Fr::Stdio] {
            v.push((format!("matrix/{up:?}/{fr:?}"), Box::pin(matrix_cell(up, fr))));
        }
    }
    if pii_mode() {
        for up in [Up::HttpSse, Up::Stdio] {
            v.push((format!("scopes/{up:?}"), Box::pin(scopes(up))));
            v.push((format!("clients_isolated/{up:?}"), Box::pin(clients_isolated(up))));
        }
    }
    for fr in [Fr::Http, Fr::Stdio] {
        v.push((format!("stdio_restart/{fr:?}"), Box::pin(stdio_restart(fr))));
    }
    // (HTTP SSE streams pass through untimed: a broken POST stream is resumed by the client.)
    v.push((
        "silent_upstream/Stdio".into(),
        Box::pin(silent_upstream(Up::Stdio)),
    ));
    for up in [Up::HttpSse, Up::Stdio] {
        v.push((
            format!("idle_session_ends/{up:?}"),
            Box::pin(idle_session_ends(up)),
        ));
        v.push((
            format!("shutdown_with_open_streams/{up:?}"),
            Box::pin(shutdown_with_open_streams(up)),
        ));
    }
    v
}

fn main() {
    if std::env::var_os("PROXY_TEST_CHILD").is_some() {
        let log = PathBuf::from(std::env::var_os("PROXY_TEST_LOG").unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let s = Upstream::new(log).serve(rmcp::transport::stdio()).await.unwrap();
            let _ = s.waiting().await;
        });
        return;
    }
    // Accept libtest's flags (ignored); the first free argument filters by substring.
    let mut filter: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if matches!(
            a.as_str(),
            "--test-threads" | "--skip" | "--format" | "--color" | "-Z"
        ) {
            args.next();
        } else if !a.starts_with('-') && filter.is_none() {
            filter = Some(a);
        }
    }
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in cases() {
            println!("{name}: test");
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, fut) in cases() {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = std::time::Instant::now();
        let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), fut).await });
        match r {
            Ok(Ok(())) => println!("test {name} ... ok ({} ms)", started.elapsed().as_millis()),
            Ok(Err(e)) => {
                println!("test {name} ... FAILED: {e:#}");
                failed.push(name);
            }
            Err(_) => {
                println!("test {name} ... FAILED: timed out");
                failed.push(name);
            }
        }
    }
    println!("\n{} passed; {} failed", ran - failed.len(), failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
