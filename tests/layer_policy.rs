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
use mcp_pii_gateway::audit::{
    replay_lines, search_lines, verify_lines, Auditor, Fingerprinter, MemorySink, Record, RecordType,
};
use mcp_pii_gateway::exchange::{untracked_kinds, ExchangeCtx, PiiCore, PolicyHooks, ToModel};
use mcp_pii_gateway::layer::{
    body::{full, Body},
    PiiLayer,
};
use mcp_pii_gateway::policy::Policy;
use mcp_pii_gateway::vault::ScopeId;
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
    let (core, sink, _) = setup_hooks(policy, None);
    (core, sink)
}

/// Like [`setup`], also returning the hooks; `limit` sets their pending limit.
fn setup_hooks(policy: &str, limit: Option<usize>) -> (PiiCore, Arc<MemorySink>, Arc<PolicyHooks>) {
    let base = PiiCore::builtin();
    let sink = Arc::new(MemorySink::new());
    let auditor = Arc::new(Auditor::new(
        sink.clone(),
        Fingerprinter::new(&[7u8; 32]).unwrap(),
    ));
    let hooks = PolicyHooks::new(
        policy.parse::<Policy>().unwrap(),
        base.rewriter().detector().clone(),
    )
    .with_auditor(auditor, base.rewriter().vault().clone());
    let hooks = Arc::new(match limit {
        Some(n) => hooks.with_pending_limit(n),
        None => hooks,
    });
    (base.with_hooks(hooks.clone()), sink, hooks)
}

const CRM_TO_MAIL: &str = r#"
    cross_server = "deny"
    untracked_pii = "audit"
    [[flows]]
    id = "crm-to-mail"
    from = "crm"
    to = "mail/send_email"
    kinds = ["EMAIL"]
"#;

fn parse(lines: &[String]) -> Vec<Record> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn exchanges(recs: &[Record]) -> Vec<&Record> {
    recs.iter()
        .filter(|r| r.record_type == RecordType::Exchange)
        .collect()
}

fn fp(value: &str) -> String {
    Fingerprinter::new(&[7u8; 32]).unwrap().fingerprint(value)
}

/// Mints `[EMAIL_1]` (origin crm) in `scope` through the core, as crm's answer would.
fn mint_email(core: &PiiCore, scope: &ScopeId) {
    let ctx = ExchangeCtx::new(scope.clone(), "crm");
    let mut msg = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":EMAIL}});
    assert!(core.to_model(&mut msg, &ctx).is_changed());
    assert_eq!(msg["params"]["data"], "[EMAIL_1]");
}

fn send_email(id: Value, to: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"send_email","arguments":{"to":to}}})
}

#[tokio::test]
async fn exchange_records_list_what_their_request_restored() {
    let (core, sink, hooks) = setup_hooks(CRM_TO_MAIL, None);
    let (crm, _) = server(core.clone(), "crm");
    let (mail, mail_seen) = server(core, "mail");

    let v = send(&crm, call_tool(1, "contact", "-")).await;
    assert_eq!(v["result"]["content"][0]["text"], "Ana <[EMAIL_1]>");
    // Restored toward mail; mail's answer mints nothing.
    let v = send(&mail, call_tool(2, "send_email", "[EMAIL_1]")).await;
    assert_eq!(v["result"]["ok"], true, "{v}");
    assert!(String::from_utf8_lossy(mail_seen.lock().unwrap().last().unwrap()).contains(EMAIL));
    // A later exchange with no placeholders lists none.
    let v = send(&mail, call_tool(3, "send_email", "nobody")).await;
    assert_eq!(v["result"]["ok"], true, "{v}");
    assert_eq!(
        hooks.pending_len(),
        0,
        "every answered request's entry is consumed"
    );

    let lines = sink.lines();
    assert!(verify_lines(&lines).is_intact());
    assert!(!lines.concat().contains(EMAIL), "a value reached the audit log");
    let recs = parse(&lines);
    let ex = exchanges(&recs);
    assert_eq!(ex.len(), 3, "{recs:#?}");
    let (minted, restored, none) = (ex[0], ex[1], ex[2]);
    assert_eq!(minted.server.as_deref(), Some("crm"));
    assert_eq!(minted.minted.len(), 1);
    assert!(minted.restored.is_empty());
    assert_eq!(restored.server.as_deref(), Some("mail"));
    assert_eq!(restored.tool.as_deref(), Some("send_email"));
    assert_eq!(restored.outcome.as_deref(), Some("ok"));
    assert!(restored.minted.is_empty());
    assert_eq!(restored.restored.len(), 1, "{restored:#?}");
    let p = &restored.restored[0];
    assert_eq!(p.placeholder, "[EMAIL_1]");
    assert_eq!(p.kind, "EMAIL");
    assert_eq!(p.origins, ["crm"]);
    assert_eq!(p.fingerprint.as_deref(), Some(fp(EMAIL).as_str()));
    // The rule belongs to the decision record, not to the exchange.
    assert_eq!((p.rule_id.as_deref(), p.allowed), (None, None));
    assert!(none.restored.is_empty() && none.minted.is_empty(), "{none:#?}");
    // The decision precedes its exchange and lists the same placeholder.
    let decision = recs
        .iter()
        .find(|r| r.record_type == RecordType::Decision)
        .unwrap();
    assert!(decision.seq < restored.seq);
    assert_eq!(decision.restored[0].fingerprint, p.fingerprint);

    // Replay still reproduces every decision; search finds the value's three records.
    let rep = replay_lines(&lines, None);
    assert_eq!((rep.decisions, rep.reproduced), (1, 1), "{rep:?}");
    let found = search_lines(&lines, EMAIL, &Fingerprinter::new(&[7u8; 32]).unwrap());
    let seqs: Vec<u64> = found.hits.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [minted.seq, decision.seq, restored.seq]);
    assert_eq!(found.hits[2].restored[0].placeholder, "[EMAIL_1]");
}

#[test]
fn batches_headers_and_a_new_scope_keep_each_requests_restored_placeholders() {
    let (core, sink, hooks) = setup_hooks(CRM_TO_MAIL, None);
    let scope = ScopeId::new("anonymous", "default");
    mint_email(&core, &scope);

    let mut batch = json!([
        send_email(json!(1), "[EMAIL_1]"),
        send_email(json!("1"), "nobody"),
        {"jsonrpc":"2.0","method":"notifications/progress","params":{}}
    ]);
    let ctx = ExchangeCtx::for_message(scope.clone(), "mail", &batch);
    core.to_server(&mut batch, &ctx).unwrap();
    assert_eq!(batch[0]["params"]["arguments"]["to"], EMAIL);
    // A mirror header of the first request restores the same placeholder: listed once.
    assert_eq!(
        core.restore_text("[EMAIL_1]", &ctx).unwrap().as_deref(),
        Some(EMAIL)
    );
    assert_eq!(hooks.pending_len(), 1);
    // The server assigned a session in between: the scope changes, the exchange does not.
    let ctx = ctx.with_scope(ScopeId::new("anonymous", "session-1"));
    let mut answers = json!([
        {"jsonrpc":"2.0","id":"1","result":{}},
        {"jsonrpc":"2.0","id":1,"result":{}}
    ]);
    assert_eq!(core.to_model(&mut answers, &ctx), ToModel::Unchanged);
    assert_eq!(hooks.pending_len(), 0);

    let lines = sink.lines();
    assert!(verify_lines(&lines).is_intact());
    let recs = parse(&lines);
    let ex = exchanges(&recs);
    assert_eq!(ex.len(), 2, "{recs:#?}");
    assert!(
        ex[0].restored.is_empty(),
        "id \"1\" restored nothing: {:#?}",
        ex[0]
    );
    let names: Vec<&str> = ex[1].restored.iter().map(|p| p.placeholder.as_str()).collect();
    assert_eq!(names, ["[EMAIL_1]"]);
    assert_eq!(ex[1].restored[0].fingerprint.as_deref(), Some(fp(EMAIL).as_str()));
}

#[test]
fn requests_without_a_response_leave_nothing_for_later_exchanges() {
    let (core, sink, hooks) = setup_hooks(CRM_TO_MAIL, Some(2));
    let scope = ScopeId::new("anonymous", "default");
    mint_email(&core, &scope);

    // A batch denied as a whole (archive is not covered by the flow): nothing kept.
    let mut batch = json!([
        send_email(json!(1), "[EMAIL_1]"),
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"archive","arguments":{"to":"[EMAIL_1]"}}}
    ]);
    let ctx = ExchangeCtx::for_message(scope.clone(), "mail", &batch);
    assert!(core.to_server(&mut batch, &ctx).unwrap_err().is_policy_denied());
    assert_eq!(hooks.pending_len(), 0);

    // Forwarded, but the response never comes (e.g. withheld): the entry stays...
    let mut lost = send_email(json!(7), "[EMAIL_1]");
    let lost_ctx = ExchangeCtx::for_message(scope.clone(), "mail", &lost);
    core.to_server(&mut lost, &lost_ctx).unwrap();
    assert_eq!(hooks.pending_len(), 1);
    // ...and another exchange reusing the id does not inherit it.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let mut again = send_email(json!(7), "nobody");
    let ctx = ExchangeCtx::for_message(scope.clone(), "mail", &again);
    core.to_server(&mut again, &ctx).unwrap();
    let mut answer = json!({"jsonrpc":"2.0","id":7,"result":{}});
    core.to_model(&mut answer, &ctx);
    let recs = parse(&sink.lines());
    let last = exchanges(&recs).pop().unwrap().clone();
    assert_eq!(last.server.as_deref(), Some("mail"));
    assert!(last.restored.is_empty(), "{last:#?}");

    // Bounded: with a limit of 2, the oldest lost entry is forgotten.
    for id in 8..11 {
        let mut m = send_email(json!(id), "[EMAIL_1]");
        let c = ExchangeCtx::for_message(scope.clone(), "mail", &m);
        core.to_server(&mut m, &c).unwrap();
        assert!(hooks.pending_len() <= 2);
    }
    assert_eq!(hooks.pending_len(), 2);
    let mut late = json!({"jsonrpc":"2.0","id":7,"result":{}});
    core.to_model(&mut late, &lost_ctx);
    let recs = parse(&sink.lines());
    let last = exchanges(&recs).pop().unwrap().clone();
    assert!(
        last.restored.is_empty(),
        "the oldest entry was evicted: {last:#?}"
    );
    assert!(verify_lines(&sink.lines()).is_intact());
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

#[test]
fn untracked_kinds_skip_what_the_rewriter_leaves_untouched() {
    let d = mcp_pii_gateway::detect::Detector::builtin();
    // "+12025550143" is a phone number, and also well-formed base64.
    let call = |item: Value| json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"upload","arguments":{"file":item}}});
    let text = call(json!({"type": "text", "text": "+12025550143"}));
    assert_eq!(
        untracked_kinds(&d, &text).len(),
        1,
        "a phone number in text is counted"
    );
    let image = call(json!({"type": "image", "data": "+12025550143", "mimeType": "image/png"}));
    assert!(
        untracked_kinds(&d, &image).is_empty(),
        "an image's base64 data is not read"
    );
    let blob = call(json!({"uri": "file:///a.bin", "blob": "+12025550143"}));
    assert!(
        untracked_kinds(&d, &blob).is_empty(),
        "a resource's base64 blob is not read"
    );
    // Correlation tokens are relayed untouched, so they are not counted either.
    let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"+12025550143","progress":1}});
    assert!(untracked_kinds(&d, &progress).is_empty());
}
