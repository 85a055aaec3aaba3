//! The aggregated endpoint `/mcp` end to end: the gateway as `serve` builds it, in front of two
//! rmcp servers over Streamable HTTP (`crm`, `mail`), the bundled stdio demo server (`paste`)
//! and a server that cannot start (`dead`); real rmcp clients on `/mcp`.
//!
//! Test data is generated: `example.org` addresses, 555-01xx numbers.
#![allow(clippy::unwrap_used)]
// roots/list is deprecated by SEP-2577 but still part of the session-based protocol.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

#[path = "codegen_support/mod.rs"]
mod codegen_support;

use mcp_pii_gateway::config::Config;
use mcp_pii_gateway::proxy::stack::Gateway;
use rmcp::{
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ErrorData, Implementation,
        ListRootsResult, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
        ResourceContents, Root, ServerCapabilities, ServerConfig,
    },
    service::{RequestContext, RunningService},
    tool, tool_handler, tool_router,
    transport::{
        streamable_http_server::{
            session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
        },
        StreamableHttpClientTransport,
    },
    ClientHandler, RoleClient, RoleServer, ServerHandler, ServiceExt,
};
use serde_json::{json, Value};

const EMAIL: &str = "ana.lima@example.org";
const PHONE: &str = "+1 202-555-0143";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct IdArgs {
    /// Customer id.
    id: u32,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SendArgs {
    /// Recipient address.
    to: String,
    /// Message body.
    #[serde(default)]
    body: String,
}

/// One rmcp server; `received` records what its tools and resources were given.
#[derive(Clone)]
struct Upstream {
    received: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Upstream {
    fn new(received: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            received,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Look up a customer record by id")]
    async fn lookup_customer(&self, Parameters(args): Parameters<IdArgs>) -> CallToolResult {
        CallToolResult::structured(json!({"id": args.id, "name": "Ana Lima", "email": EMAIL, "phone": PHONE}))
    }

    #[tool(description = "Send an email message to a recipient")]
    async fn send_email(&self, Parameters(args): Parameters<SendArgs>) -> String {
        self.received
            .lock()
            .unwrap()
            .push(format!("{} | {}", args.to, args.body));
        format!("queued for {}", args.to)
    }

    #[tool(description = "The same customer as written by another system")]
    async fn legacy_record(&self) -> String {
        "contact: ANA.LIMA@EXAMPLE.ORG, tel. +1 (202) 555 0143".into()
    }

    #[tool(description = "Add a tool later: tells clients the tool list changed")]
    async fn change(&self, context: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        let peer = context.peer.clone();
        // After the answer, outside the request: the notification travels on the GET stream.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let _ = peer.notify_tool_list_changed().await;
        });
        Ok("changing".into())
    }

    #[tool(description = "Report the client's workspace roots")]
    async fn workspace(&self, context: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        let roots = context
            .peer
            .list_roots()
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let uris: Vec<String> = roots.roots.into_iter().map(|r| r.uri).collect();
        self.received.lock().unwrap().extend(uris.iter().cloned());
        Ok(format!("roots: {}", uris.join(", ")))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Upstream {
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
        let text = format!("card of {EMAIL}");
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// Serves an upstream; returns its URL and its session manager (to end its sessions).
async fn serve_upstream(received: Arc<Mutex<Vec<String>>>) -> (String, Arc<LocalSessionManager>) {
    let sessions = Arc::new(LocalSessionManager::default());
    let mcp: StreamableHttpService<Upstream, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(Upstream::new(received.clone())),
        sessions.clone(),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = mcp.clone();
            tokio::spawn(async move {
                let hsvc =
                    hyper::service::service_fn(move |req| tower::ServiceExt::oneshot(svc.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), hsvc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/mcp"), sessions)
}

struct Setup {
    url: String,
    crm: Arc<Mutex<Vec<String>>>,
    crm_sessions: Arc<LocalSessionManager>,
    mail: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn gateway(extra: &str) -> Setup {
    let crm = Arc::new(Mutex::new(Vec::new()));
    let mail = Arc::new(Mutex::new(Vec::new()));
    let (crm_url, crm_sessions) = serve_upstream(crm.clone()).await;
    let (mail_url, _) = serve_upstream(mail.clone()).await;
    let exe = env!("CARGO_BIN_EXE_mcp-pii-gateway");
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
[[servers]]
name = "crm"
url = "{crm_url}"
[[servers]]
name = "mail"
url = "{mail_url}"
[[servers]]
name = "paste"
command = "{exe}"
args = ["demo-upstream"]
[[servers]]
name = "dead"
command = "false"
[policy]
cross_server = "deny"
reveal = ["email.domain", "phone.country", "same_person"]
[[policy.flows]]
id = "crm-to-mail"
from = "crm"
to = "mail"
kinds = ["EMAIL", "PHONE"]
{extra}
"#
    );
    let key =
        |name: &str| (name == "MCP_PII_AUDIT_KEY").then(|| "aggregate-test-audit-key-0123456789".to_owned());
    let config = Config::from_toml_str(&toml, key).unwrap();
    let gw = Gateway::from_config(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let front = gw.front().clone();
    tokio::spawn(async move {
        let _gw = gw;
        front
            .serve(listener, async {
                let _ = rx.await;
            })
            .await
    });
    Setup {
        url,
        crm,
        crm_sessions,
        mail,
        stop: Some(tx),
    }
}

/// A client that answers `roots/list` with a root holding a placeholder and counts
/// `notifications/tools/list_changed`.
#[derive(Clone, Default)]
struct RootsClient {
    changed: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientHandler for RootsClient {
    async fn list_roots(&self, _context: RequestContext<RoleClient>) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new(
            "file:///home/[EMAIL_1]/work",
        )]))
    }
    async fn on_tool_list_changed(&self, _context: rmcp::service::NotificationContext<RoleClient>) {
        self.changed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_roots().build(),
            Implementation::new("aggregate-test", "1"),
        )
    }
}

async fn client(url: &str) -> RunningService<RoleClient, RootsClient> {
    RootsClient::default()
        .serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .unwrap()
}

async fn call(c: &RunningService<RoleClient, RootsClient>, name: &str, args: Value) -> Result<Value, String> {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    c.call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
        .await
        .map(|r| serde_json::to_value(r).unwrap())
        .map_err(|e| e.to_string())
}

fn text(v: &Value) -> String {
    v["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_endpoint_one_scope_real_values_only_where_policy_allows() {
    let g = gateway("").await;
    let c = client(&g.url).await;

    // Every server's tools, prefixed, after the gateway's own; the dead server is left out.
    let tools = c.list_all_tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for n in [
        "search_tools",
        "check_flow",
        "describe_placeholders",
        "crm__lookup_customer",
        "crm__send_email",
        "mail__send_email",
        "mail__workspace",
        "paste__lookup_customer",
        "paste__send_email",
    ] {
        assert!(names.contains(&n.to_owned()), "{n} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("dead__")), "{names:?}");
    let send = tools.iter().find(|t| t.name == "mail__send_email").unwrap();
    let meta = serde_json::to_value(send.meta.as_ref().unwrap()).unwrap();
    assert_eq!(meta["mcp-pii-gateway/server"], "mail");
    assert_eq!(
        meta["mcp-pii-gateway/receives"][0],
        json!({"kind": "EMAIL", "from": "crm", "rule": "crm-to-mail"})
    );

    // Placeholders toward the model; the same value is the same placeholder on every server.
    let found = call(&c, "crm__lookup_customer", json!({"id": 7})).await.unwrap();
    assert_eq!(found["structuredContent"]["email"], "[EMAIL_1]");
    assert_eq!(found["structuredContent"]["phone"], "[PHONE_1]");
    assert!(!found.to_string().contains(EMAIL));

    // check_flow answers without forwarding; paste has no flow from crm.
    let before = g.mail.lock().unwrap().len();
    assert_eq!(before, 0);
    let ok = call(
        &c,
        "check_flow",
        json!({"tool": "mail__send_email", "arguments": {"to": "[EMAIL_1]"}}),
    )
    .await
    .unwrap();
    assert_eq!(ok["structuredContent"]["allowed"], true);
    assert_eq!(
        ok["structuredContent"]["placeholders"][0]["rule_id"],
        "crm-to-mail"
    );
    let no = call(
        &c,
        "check_flow",
        json!({"tool": "paste__send_email", "arguments": {"to": "[EMAIL_1]"}}),
    )
    .await
    .unwrap();
    assert_eq!(no["structuredContent"]["allowed"], false);
    assert_eq!(no["structuredContent"]["rule_id"], "default:cross_server=deny");
    assert_eq!(g.mail.lock().unwrap().len(), before);

    // Allowed by the flow: mail receives the real values.
    let sent = call(
        &c,
        "mail__send_email",
        json!({"to": "[EMAIL_1]", "body": "call [PHONE_1]"}),
    )
    .await
    .unwrap();
    assert_eq!(text(&sent), "queued for [EMAIL_1]");
    assert_eq!(
        g.mail.lock().unwrap().as_slice(),
        [format!("{EMAIL} | call {PHONE}")]
    );

    // Refused when no flow allows it, with the real target named; nothing is forwarded.
    let err = call(&c, "paste__send_email", json!({"to": "[EMAIL_1]"}))
        .await
        .unwrap_err();
    assert!(
        err.contains("paste/send_email") && err.contains("[EMAIL_1]"),
        "{err}"
    );
    assert!(!err.contains(EMAIL), "{err}");

    // Facts, never values.
    let d = call(
        &c,
        "describe_placeholders",
        json!({"placeholders": ["[EMAIL_1]", "[PHONE_1]", "[EMAIL_9]"]}),
    )
    .await
    .unwrap();
    let facts = &d["structuredContent"]["placeholders"];
    assert_eq!(
        facts[0],
        json!({"placeholder": "[EMAIL_1]", "known": true, "kind": "EMAIL", "domain": "example.org"})
    );
    assert_eq!(facts[1]["country"], "US");
    assert_eq!(facts[2]["known"], false);
    assert!(!d.to_string().contains("ana.lima"));

    // The same person written differently gets other placeholders; same_person tells so.
    let legacy = call(&c, "crm__legacy_record", json!({})).await.unwrap();
    assert_eq!(text(&legacy), "contact: [EMAIL_2], tel. [PHONE_2]");
    let d = call(
        &c,
        "describe_placeholders",
        json!({"placeholders": ["[EMAIL_1]", "[PHONE_1]", "[EMAIL_2]", "[PHONE_2]"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        d["structuredContent"]["same_person"],
        json!([["[EMAIL_1]", "[EMAIL_2]"], ["[PHONE_1]", "[PHONE_2]"]]),
        "{d}"
    );

    // search_tools ranks by the tool's words.
    let s = call(
        &c,
        "search_tools",
        json!({"query": "send an email", "detail": "full"}),
    )
    .await
    .unwrap();
    let first = &s["structuredContent"]["tools"][0];
    assert!(first["name"].as_str().unwrap().ends_with("__send_email"), "{s}");
    assert!(first["inputSchema"]["properties"]["to"].is_object(), "{s}");

    // Resources are namespaced; the read reaches crm with its own URI.
    let r = c
        .read_resource(ReadResourceRequestParams::new("mcp-gateway://crm/card://7"))
        .await
        .unwrap();
    let r = serde_json::to_value(&r).unwrap();
    assert_eq!(r["contents"][0]["uri"], "mcp-gateway://crm/card://7");
    assert_eq!(r["contents"][0]["text"], "card of [EMAIL_1]");
    assert_eq!(g.crm.lock().unwrap().last().unwrap(), "card://7");

    // A server-to-client request (roots/list) crosses the gateway both ways: the client's
    // placeholder reaches mail as the real value, and comes back tokenized.
    let w = call(&c, "mail__workspace", json!({})).await.unwrap();
    assert_eq!(text(&w), "roots: file:///home/[EMAIL_1]/work");
    assert_eq!(
        g.mail.lock().unwrap().last().unwrap(),
        &format!("file:///home/{EMAIL}/work")
    );

    // A list change announced by one server outside any request reaches the client.
    call(&c, "mail__change", json!({})).await.unwrap();
    let changed = c.service().changed.clone();
    for _ in 0..100 {
        if changed.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        changed.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "tools/list_changed relayed once"
    );

    // The dead server: a clear error, the others unaffected.
    let err = call(&c, "dead__anything", json!({})).await.unwrap_err();
    assert!(err.contains("dead"), "{err}");
    // Unknown names are invalid params, never forwarded.
    let err = call(&c, "nosuch__tool", json!({})).await.unwrap_err();
    assert!(err.contains("unknown"), "{err}");

    // A second session is a second scope: [EMAIL_1] means nothing there.
    let c2 = client(&g.url).await;
    let err = call(&c2, "mail__send_email", json!({"to": "[EMAIL_1]"}))
        .await
        .unwrap_err();
    assert!(err.contains("[EMAIL_1]"), "{err}");
    assert_eq!(
        g.mail
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains(EMAIL))
            .count(),
        2
    );
    let _ = c.cancel().await;
    let _ = c2.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expose_search_lists_only_the_gateways_tools_and_call_tool_works() {
    let g = gateway("[aggregate]\nexpose = \"search\"").await;
    let c = client(&g.url).await;
    let names: Vec<String> = c
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        names,
        ["search_tools", "check_flow", "describe_placeholders", "call_tool"]
    );
    let s = call(&c, "search_tools", json!({"query": "customer record lookup"}))
        .await
        .unwrap();
    assert_eq!(
        s["structuredContent"]["tools"][0]["name"], "crm__lookup_customer",
        "{s}"
    );
    let found = call(
        &c,
        "call_tool",
        json!({"name": "crm__lookup_customer", "arguments": {"id": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(found["structuredContent"]["email"], "[EMAIL_1]");
    call(
        &c,
        "call_tool",
        json!({"name": "mail__send_email", "arguments": {"to": "[EMAIL_1]"}}),
    )
    .await
    .unwrap();
    assert_eq!(g.mail.lock().unwrap().as_slice(), [format!("{EMAIL} | ")]);
    let _ = c.cancel().await;
}

#[test]
fn colliding_server_names_are_a_configuration_error() {
    let toml =
        "[[servers]]\nname = \"crm-eu\"\ncommand = \"x\"\n[[servers]]\nname = \"crm_eu\"\ncommand = \"x\"\n";
    let e = Config::from_toml_str(toml, |_| None).unwrap_err().to_string();
    assert!(e.contains("\"crm-eu\" and \"crm_eu\""), "{e}");
    // Without /mcp the names are fine.
    Config::from_toml_str(&format!("{toml}[aggregate]\nenabled = false\n"), |_| None).unwrap();
    let e = Config::from_toml_str("[aggregate]\nexpose = \"some\"\n", |_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("aggregate.expose"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_can_keep_its_own_names() {
    let g = gateway("[aggregate]\nunprefixed = \"crm\"").await;
    let c = client(&g.url).await;
    let names: Vec<String> = c
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"lookup_customer".to_owned()), "{names:?}");
    assert!(names.contains(&"mail__send_email".to_owned()), "{names:?}");
    assert!(!names.contains(&"crm__lookup_customer".to_owned()), "{names:?}");
    let found = call(&c, "lookup_customer", json!({"id": 3})).await.unwrap();
    assert_eq!(found["structuredContent"]["email"], "[EMAIL_1]");
    let r = c
        .read_resource(ReadResourceRequestParams::new("card://3"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&r).unwrap()["contents"][0]["uri"],
        "card://3"
    );
    assert_eq!(g.crm.lock().unwrap().last().unwrap(), "card://3");
    let _ = c.cancel().await;
    let e = Config::from_toml_str("[aggregate]\nunprefixed = \"nope\"\n", |_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("aggregate.unprefixed"), "{e}");
}

#[test]
fn lists_page_across_servers_with_each_servers_own_cursor() {
    use codegen_support::{crm_and_mail, synthetic_catalog, FakeMcp};
    let big = synthetic_catalog();
    let small = crm_and_mail();
    let (a, b) = (
        FakeMcp::start(big.clone(), 7, None),
        FakeMcp::start(small.clone(), 2, None),
    );
    let toml = format!(
        "[[servers]]\nname = \"a\"\nurl = \"{}\"\n[[servers]]\nname = \"b\"\nurl = \"{}\"\n",
        a.url, b.url
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gw = Gateway::from_config(&Config::from_toml_str(&toml, |_| None).unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let front = gw.front().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(front.serve(listener, async {
            let _ = rx.await;
        }));
        let c = client(&url).await;
        // The first page: the gateway's tools, then one page of each server, at once.
        let first = c.list_tools(None).await.unwrap();
        let names: Vec<&str> = first.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names.len(), 2 + 7 + 2, "{names:?}");
        assert_eq!(names.iter().filter(|n| n.starts_with("a__")).count(), 7);
        assert_eq!(names.iter().filter(|n| n.starts_with("b__")).count(), 2);
        assert!(first.next_cursor.is_some());
        // Following the cursors gives every tool once, in each server's order.
        let all = c.list_all_tools().await.unwrap();
        let a_names: Vec<String> = all
            .iter()
            .filter_map(|t| t.name.strip_prefix("a__").map(str::to_owned))
            .collect();
        let want: Vec<String> = big
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(a_names, want);
        assert_eq!(all.len(), 2 + big.len() + small.len());
        // A cursor the gateway did not make is invalid params, not a crash or a guess.
        let bad = c
            .list_tools(Some(
                rmcp::model::PaginatedRequestParams::default().with_cursor(Some("nope".into())),
            ))
            .await
            .unwrap_err()
            .to_string();
        assert!(bad.contains("invalid cursor"), "{bad}");
        let _ = c.cancel().await;
        let _ = tx.send(());
        let _ = served.await;
        drop(gw);
    });
    drop(rt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_describe_placeholders_answer_is_audited_and_the_log_verifies() {
    let dir = std::env::temp_dir().join(format!("aggregate-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = dir.join("audit.jsonl");
    let g = gateway(&format!(
        "[audit]\npath = \"{}\"\nfsync = \"always\"\n",
        log.display()
    ))
    .await;
    let c = client(&g.url).await;
    call(&c, "crm__lookup_customer", json!({"id": 1})).await.unwrap();
    call(
        &c,
        "describe_placeholders",
        json!({"placeholders": ["[EMAIL_1]"]}),
    )
    .await
    .unwrap();
    call(&c, "mail__send_email", json!({"to": "[EMAIL_1]"}))
        .await
        .unwrap();
    let _ = c.cancel().await;
    drop(g);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(EMAIL) && !text.contains("ana.lima"),
        "no value in the log"
    );
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let disclosure = records
        .iter()
        .find(|r| r["type"] == "disclosure")
        .expect("a disclosure record");
    assert_eq!(disclosure["tool"], "describe_placeholders");
    assert_eq!(
        disclosure["revealed"],
        json!(["email.domain", "phone.country", "same_person"])
    );
    assert_eq!(disclosure["restored"][0]["placeholder"], "[EMAIL_1]");
    assert!(disclosure["restored"][0]["fingerprint"].is_string());
    // The calls behind /mcp are audited with their real server and tool.
    assert!(records.iter().any(|r| r["type"] == "decision"
        && r["server"] == "mail"
        && r["tool"] == "send_email"
        && r["rule_id"] == "crm-to-mail"));
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
        .args(["audit", "verify", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One request to the front, in process; the status and the JSON body.
async fn raw(
    front: &mcp_pii_gateway::proxy::Front,
    method: http::Method,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value, http::HeaderMap) {
    use http_body_util::BodyExt;
    let mut b = http::Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b
        .body(mcp_pii_gateway::layer::body::full(body.to_owned()))
        .unwrap();
    let res = front.handle(req, "127.0.0.1:9".parse().unwrap()).await;
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        parts.headers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_mcp_cannot_serve_gets_a_clear_error_and_echoes_no_value() {
    use mcp_pii_gateway::layer::scope::sha256_hex;
    let exe = env!("CARGO_BIN_EXE_mcp-pii-gateway");
    let toml = format!(
        "[[servers]]\nname = \"crm\"\ncommand = \"{exe}\"\nargs = [\"demo-upstream\"]\n\
         [[clients]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nservers = [\"crm\"]\n\
         [[clients]]\nname = \"bob\"\ntoken_sha256 = \"{}\"\nservers = [\"crm\"]\n\
         [policy]\nreveal = [\"email.domain\"]\n",
        sha256_hex(b"t-alice"),
        sha256_hex(b"t-bob")
    );
    let gw = Gateway::from_config(&Config::from_toml_str(&toml, |_| None).unwrap()).unwrap();
    let front = gw.front().clone();
    let post = http::Method::POST;
    let alice = ("authorization", "Bearer t-alice");
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

    // Without a token: 401 before anything else.
    let (status, _, _) = raw(&front, post.clone(), &[], init).await;
    assert_eq!(status, 401);
    // The stateless handshake: method not found, so SDK clients fall back to initialize.
    let (status, v, _) = raw(
        &front,
        post.clone(),
        &[alice],
        r#"{"jsonrpc":"2.0","id":2,"method":"server/discover"}"#,
    )
    .await;
    assert_eq!((status, v["error"]["code"].as_i64()), (200, Some(-32601)));
    // A request outside any session, and a batch.
    let (status, v, _) = raw(
        &front,
        post.clone(),
        &[alice],
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize first"),
        "{v}"
    );
    let (status, v, _) = raw(&front, post.clone(), &[alice], &format!("[{init}]")).await;
    assert_eq!(status, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("batches"), "{v}");
    let (status, v, _) = raw(&front, post.clone(), &[alice], "{not json").await;
    assert_eq!((status, v["error"]["code"].as_i64()), (400, Some(-32700)));

    let (status, _, headers) = raw(&front, post.clone(), &[alice], init).await;
    assert_eq!(status, 200);
    let sid = headers
        .get("mcp-session-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let session = ("mcp-session-id", sid.as_str());
    // Another client cannot use alice's session; an unknown session is not found either.
    let list = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#;
    let (status, v, _) = raw(
        &front,
        post.clone(),
        &[("authorization", "Bearer t-bob"), session],
        list,
    )
    .await;
    assert_eq!((status, v["error"]["code"].as_i64()), (404, Some(-32003)));
    let (status, _, _) = raw(&front, post.clone(), &[alice, ("mcp-session-id", "nope")], list).await;
    assert_eq!(status, 404);
    let (status, v, _) = raw(&front, post.clone(), &[alice, session], list).await;
    assert_eq!(status, 200);
    assert!(v["result"]["tools"].as_array().unwrap().len() >= 4, "{v}");

    // The gateway's own answers never repeat a value the client typed.
    let call = |name: &str, args: Value| {
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": name, "arguments": args}}).to_string()
    };
    let typed = "ana.lima@example.org";
    for body in [
        call(&format!("crm__{typed}"), json!({})),
        call(&format!("x{typed}"), json!({})),
        call("check_flow", json!({"tool": format!("crm__{typed}")})),
        call("describe_placeholders", json!({"placeholders": [typed, "[EMAIL_7]"]})),
        json!({"jsonrpc": "2.0", "id": 6, "method": format!("x/{typed}")}).to_string(),
        json!({"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": format!("mailto:{typed}")}}).to_string(),
    ] {
        let (_, v, _) = raw(&front, post.clone(), &[alice, session], &body).await;
        assert!(!v.is_null(), "{body}");
        assert!(!v.to_string().contains(typed), "{v}");
    }
    let (_, v, _) = raw(
        &front,
        post.clone(),
        &[alice, session],
        &call("nosuch__tool", json!({})),
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"nosuch__tool\""),
        "{v}"
    );
    let (status, _, _) = raw(&front, http::Method::DELETE, &[alice, session], "").await;
    assert_eq!(status, 200);
    let (status, _, _) = raw(&front, post, &[alice, session], list).await;
    assert_eq!(status, 404);
    front.shutdown_upstreams().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_session_the_server_ended_is_opened_again() {
    use rmcp::transport::streamable_http_server::session::SessionManager;
    let g = gateway("").await;
    let c = client(&g.url).await;
    let found = call(&c, "crm__lookup_customer", json!({"id": 7})).await.unwrap();
    assert_eq!(found["structuredContent"]["email"], "[EMAIL_1]");

    // The server forgets the session (a restart, its idle sweep): its next answer is 404.
    let ids: Vec<_> = g.crm_sessions.sessions.read().await.keys().cloned().collect();
    assert_eq!(ids.len(), 1, "one upstream session for one /mcp session");
    for id in &ids {
        g.crm_sessions.close_session(id).await.unwrap();
    }
    assert!(g.crm_sessions.sessions.read().await.is_empty());

    // The call still succeeds: the gateway opened a new upstream session and sent it again,
    // within the same /mcp session, so the same value is still the same placeholder.
    let again = call(&c, "crm__lookup_customer", json!({"id": 8})).await.unwrap();
    assert_eq!(again["structuredContent"]["id"], 8);
    assert_eq!(again["structuredContent"]["email"], "[EMAIL_1]");
    let now: Vec<_> = g.crm_sessions.sessions.read().await.keys().cloned().collect();
    assert_eq!(now.len(), 1);
    assert_ne!(now, ids, "a new upstream session");
}
