//! `PolicyHooks` through the layer: flow decisions per target server and tool, untracked PII,
//! and the audit records they leave (intact chain, no values).
//!
//! Test data is generated: `example.org` addresses.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use mcp_pii_gateway::audit::{verify_lines, Auditor, Fingerprinter, MemorySink};
use mcp_pii_gateway::layer::{
    body::{full, Body},
    core::PiiCore,
    policy_hooks::{untracked_kinds, PolicyHooks},
    PiiLayer,
};
use mcp_pii_gateway::policy::Policy;
use serde_json::{json, Value};
use tower::{util::BoxCloneService, ServiceBuilder, ServiceExt};

const EMAIL: &str = "ana.lima@example.org";

type Svc = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

/// A server that answers `contact` with an address and echoes everything else; records bodies.
fn server(core: PiiCore, name: &str) -> (Svc, Arc<Mutex<Vec<Bytes>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::with_core(core, name))
        .service_fn(move |req: Request<Body>| {
            let seen = s2.clone();
            async move {
                let b = req.into_body().collect().await.unwrap().to_bytes();
                seen.lock().unwrap().push(b.clone());
                let msg: Value = serde_json::from_slice(&b).unwrap();
                let result = if msg["params"]["name"] == "contact" {
                    json!({"content":[{"type":"text","text":format!("Ana <{EMAIL}>")}]})
                } else {
                    json!({"ok": true})
                };
                let mut r = Response::new(full(
                    serde_json::to_vec(&json!({"jsonrpc":"2.0","id":msg["id"],"result":result})).unwrap(),
                ));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                Ok::<_, Infallible>(r)
            }
        });
    (BoxCloneService::new(svc), seen)
}

fn call_tool(id: i64, tool: &str, to: &str) -> Request<Body> {
    let b = serde_json::to_vec(
        &json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{"to":to}}}),
    )
    .unwrap();
    Request::post("/mcp")
        .header("content-type", "application/json")
        .body(full(b))
        .unwrap()
}

async fn send(svc: &Svc, r: Request<Body>) -> Value {
    let b = svc
        .clone()
        .oneshot(r)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&b).unwrap()
}

fn setup(policy: &str) -> (PiiCore, Arc<MemorySink>) {
    let base = PiiCore::builtin();
    let sink = Arc::new(MemorySink::new());
    let auditor = Arc::new(Auditor::new(
        sink.clone(),
        Fingerprinter::new(&[7u8; 32]).unwrap(),
    ));
    let hooks = PolicyHooks::new(
        Policy::from_str(policy).unwrap(),
        base.rewriter().detector().clone(),
    )
    .with_auditor(auditor, base.rewriter().vault().clone());
    (base.with_hooks(Arc::new(hooks)), sink)
}

#[tokio::test]
async fn flows_are_decided_per_server_and_tool_and_audited() {
    let (core, sink) = setup(
        r#"
        cross_server = "deny"
        untracked_pii = "deny"
        [[flows]]
        id = "crm-to-mail"
        from = "crm"
        to = "mail/send_email"
        kinds = ["EMAIL"]
        "#,
    );
    let (crm, _) = server(core.clone(), "crm");
    let (mail, mail_seen) = server(core.clone(), "mail");
    let (search, search_seen) = server(core, "search");

    let v = send(&crm, call_tool(1, "contact", "-")).await;
    assert_eq!(v["result"]["content"][0]["text"], "Ana <[EMAIL_1]>");
    // Allowed by the flow rule, to that tool only.
    let v = send(&mail, call_tool(2, "send_email", "[EMAIL_1]")).await;
    assert_eq!(v["result"]["ok"], true);
    assert!(String::from_utf8_lossy(mail_seen.lock().unwrap().last().unwrap()).contains(EMAIL));
    let n = mail_seen.lock().unwrap().len();
    let v = send(&mail, call_tool(3, "archive", "[EMAIL_1]")).await;
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert_eq!(mail_seen.lock().unwrap().len(), n);
    // Denied by default to another server.
    let v = send(&search, call_tool(4, "query", "[EMAIL_1]")).await;
    assert_eq!(v["error"]["code"], -32001);
    assert!(search_seen.lock().unwrap().is_empty());
    // Untracked PII (typed by the model) is denied too.
    let v = send(&search, call_tool(5, "query", "joao.silva@example.net")).await;
    assert_eq!(v["error"]["code"], -32001);
    assert!(search_seen.lock().unwrap().is_empty());

    let lines = sink.lines();
    assert!(verify_lines(&lines).is_intact());
    let all = lines.concat();
    assert!(
        !all.contains(EMAIL) && !all.contains("joao.silva"),
        "a value reached the audit log"
    );
    let records: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let decisions: Vec<&Value> = records.iter().filter(|r| r["type"] == "decision").collect();
    assert_eq!(decisions.len(), 4, "{records:#?}");
    assert_eq!(decisions[0]["decision"], "allow");
    assert_eq!(decisions[0]["rule_id"], "crm-to-mail");
    // The restored value is findable by its keyed fingerprint, never stored itself.
    let fp = Fingerprinter::new(&[7u8; 32]).unwrap().fingerprint(EMAIL);
    assert_eq!(decisions[0]["restored"][0]["fingerprint"], fp.as_str());
    assert_eq!(decisions[1]["decision"], "deny");
    assert_eq!(decisions[3]["untracked"], json!(["EMAIL"]));
    let exchanges: Vec<&Value> = records.iter().filter(|r| r["type"] == "exchange").collect();
    assert!(!exchanges.is_empty());
    assert_eq!(exchanges[0]["server"], "crm");
    assert_eq!(exchanges[0]["tool"], "contact");
    assert_eq!(exchanges[0]["minted"].as_array().unwrap().len(), 1);
}

#[test]
fn untracked_kinds_skip_the_envelope_and_placeholders() {
    let d = mcp_pii_gateway::detect::Detector::builtin();
    let msg = json!({"jsonrpc":"2.0","id":"ana.lima@example.org","method":"x","params":{"a":"[EMAIL_1]","b":["[PHONE_2]"]}});
    assert!(untracked_kinds(&d, &msg).is_empty());
    let msg = json!([{"jsonrpc":"2.0","id":1,"method":"x","params":{"k":{"joao.silva@example.net":1}}}]);
    assert_eq!(untracked_kinds(&d, &msg).len(), 1);
}
