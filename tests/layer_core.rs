//! The transport-free core: fail-closed tokenizing (a full vault scope makes tokenizing fail),
//! all-or-nothing restores, and the same through the HTTP layer's JSON and SSE paths.
//!
//! Test data is generated: `example.org` addresses.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::exchange::{ExchangeCtx, PiiCore, ToModel, ToServer};
use mcp_pii_gateway::layer::{
    body::{full, Body},
    PiiLayer,
};
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId};
use serde_json::{json, Value};
use tower::{ServiceBuilder, ServiceExt};

/// A core whose vault holds one entry per scope: the second distinct value fails to tokenize.
fn tiny_core() -> PiiCore {
    let vault = MemoryVault::builder().max_entries_per_scope(1).build();
    PiiCore::new(Rewriter::new(Arc::new(Detector::builtin()), Arc::new(vault)))
}

fn ctx() -> ExchangeCtx {
    ExchangeCtx::new(ScopeId::new("anonymous", "t"), "crm")
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn to_model_fails_closed_per_message() {
    let core = tiny_core();
    let ctx = ctx();
    let mut first = json!({"jsonrpc":"2.0","id":1,"result":{"t":"a.one@example.org"}});
    assert!(matches!(
        core.to_model(&mut first, &ctx),
        ToModel::Tokenized {
            placeholders: 1,
            minted: 1
        }
    ));

    // A response that cannot be tokenized becomes an error for its id.
    let mut resp = json!({"jsonrpc":"2.0","id":2,"result":{"t":"b.two@example.org"}});
    assert_eq!(core.to_model(&mut resp, &ctx), ToModel::Replaced);
    assert_eq!(resp["id"], 2);
    assert!(resp["error"]["code"].is_i64());
    assert!(!text(&resp).contains("b.two@"));

    // A notification or a server request cannot be answered: dropped.
    let mut note =
        json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"b.two@example.org"}});
    assert_eq!(core.to_model(&mut note, &ctx), ToModel::Dropped);
    let mut sreq = json!({"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{"message":"b.two@example.org"}});
    assert_eq!(core.to_model(&mut sreq, &ctx), ToModel::Dropped);

    // A batch is handled element by element.
    let mut batch = json!([
        {"jsonrpc":"2.0","id":3,"result":{"t":"c.three@example.org"}},
        {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"c.three@example.org"}},
        {"jsonrpc":"2.0","id":4,"result":{"t":"again a.one@example.org"}},
        {"jsonrpc":"2.0","id":5,"result":{"t":"nothing here"}},
    ]);
    assert_eq!(core.to_model(&mut batch, &ctx), ToModel::Replaced);
    let arr = batch.as_array().unwrap();
    assert_eq!(arr.len(), 3, "the notification is dropped");
    assert_eq!(arr[0]["id"], 3);
    assert!(arr[0].get("error").is_some());
    assert_eq!(arr[1]["result"]["t"], "again [EMAIL_1]");
    assert_eq!(arr[2]["result"]["t"], "nothing here");
    assert!(!text(&batch).contains("c.three@"));

    // A batch of notifications only: nothing left to send.
    let mut notes = json!([{"jsonrpc":"2.0","method":"n","params":{"d":"d.four@example.org"}}]);
    assert_eq!(core.to_model(&mut notes, &ctx), ToModel::Dropped);
}

#[test]
fn to_server_is_all_or_nothing() {
    let core = PiiCore::builtin();
    let ctx = ctx();
    let mut r = json!({"jsonrpc":"2.0","id":1,"result":{"t":"a.one@example.org"}});
    core.to_model(&mut r, &ctx);
    let original = json!([
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send","arguments":{"to":"[EMAIL_1]"}}},
        {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"send","arguments":{"to":"[EMAIL_2]"}}},
    ]);
    let mut msg = original.clone();
    let e = core.to_server(&mut msg, &ctx).unwrap_err();
    assert!(e.is_unknown_placeholder());
    assert_eq!(msg, original, "nothing may be half-restored");
    let mut ok = json!({"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":"[EMAIL_1] [EMAIL_1]"}});
    assert_eq!(
        core.to_server(&mut ok, &ctx).unwrap(),
        ToServer::Restored { placeholders: 1 }
    );
    assert_eq!(ok["params"]["x"], "a.one@example.org a.one@example.org");
    let mut none = json!({"jsonrpc":"2.0","id":5,"method":"ping"});
    assert_eq!(core.to_server(&mut none, &ctx).unwrap(), ToServer::Unchanged);
}

#[tokio::test]
async fn the_http_paths_fail_closed_too() {
    let layer = PiiLayer::with_core(tiny_core(), "crm");
    // The server answers the request with an SSE stream: a notification and the response, each
    // with a second distinct address (the scope is full after the first).
    let svc = ServiceBuilder::new().layer(layer).service_fn(|req: Request<Body>| async move {
        let b = req.into_body().collect().await.unwrap().to_bytes();
        let msg: Value = serde_json::from_slice(&b).unwrap();
        let id = msg["id"].clone();
        let mut r = if msg["method"] == "first" {
            let mut r = Response::new(full(text(&json!({"jsonrpc":"2.0","id":id,"result":{"t":"a.one@example.org"}}))));
            r.headers_mut().insert("content-type", "application/json".parse().unwrap());
            r
        } else {
            let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x.new@example.org"}});
            let resp = json!({"jsonrpc":"2.0","id":id,"result":{"t":"y.new@example.org"}});
            let mut r = Response::new(full(format!("id: 1\nevent: message\ndata: {note}\n\nid: 2\ndata: {resp}\n\n")));
            r.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
            r
        };
        r.headers_mut().insert("x-test", "1".parse().unwrap());
        Ok::<_, Infallible>(r)
    });
    let post = |body: Value| {
        Request::post("/mcp")
            .header("content-type", "application/json")
            .body(full(text(&body)))
            .unwrap()
    };
    let res = svc
        .clone()
        .oneshot(post(json!({"jsonrpc":"2.0","id":1,"method":"first"})))
        .await
        .unwrap();
    let b = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&b).contains("[EMAIL_1]"));
    let res = svc
        .clone()
        .oneshot(post(json!({"jsonrpc":"2.0","id":9,"method":"second"})))
        .await
        .unwrap();
    let out = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(!out.contains("x.new@") && !out.contains("y.new@"), "{out}");
    // The notification's block keeps its id but loses its data and event type; the response
    // becomes an error for id 9.
    assert!(out.starts_with("id: 1\n\n"), "{out}");
    let data: Value =
        serde_json::from_str(out.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["id"], 9);
    assert!(data["error"].is_object());
}

/// Found by the `response_rewrite` fuzz target (fuzz/regressions/response_rewrite/f1-*):
/// protocol members of any JSON type, and messages nested in a batch's elements.
#[test]
fn protocol_members_of_any_shape_never_carry_pii() {
    let core = PiiCore::builtin();
    for msg in [
        json!({"jsonrpc": "ana.lima@example.org", "id": 1, "result": {}}),
        json!({"jsonrpc": "2.0", "id": {"a": "ana.lima@example.org"}, "result": {}}),
        json!({"jsonrpc": "2.0", "method": ["ana.lima@example.org"]}),
        json!({"jsonrpc": "2.0", "method": "notifications/progress",
               "params": {"progressToken": {"ana.lima@example.org": 1}, "progress": 1}}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": ["+1 202-555-0142"]}}),
        json!([[{"method": "ana.lima@example.org"}]]),
        json!([[{"id": "ana.lima@example.org", "result": {}}]]),
        // Withheld for one member, never answered under an id that holds PII.
        json!({"jsonrpc": "ana.lima@example.org", "id": "+1 202-555-0142", "error": {"code": 1, "message": "m"}}),
    ] {
        let mut m = msg.clone();
        let outcome = core.to_model(&mut m, &ctx());
        let out = text(&m);
        assert!(
            !out.contains("ana.lima") && !out.contains("555-0142"),
            "{msg} released as {out} ({outcome:?})"
        );
    }
}

/// Found by the `request_restore` fuzz target (fuzz/regressions/request_restore/f6-*): what is
/// tokenized whole toward the model is restored whole toward the server.
#[test]
fn a_batch_element_that_is_no_message_round_trips_whole() {
    let core = PiiCore::builtin();
    let original = json!([[{"method": {"content": "mail ana.lima@example.org"}}], {"jsonrpc": "2.0", "id": 1, "result": {}}]);
    let mut m = original.clone();
    core.to_model(&mut m, &ctx());
    assert_eq!(m[0][0]["method"]["content"], "mail [EMAIL_1]");
    core.to_server(&mut m, &ctx()).unwrap();
    assert_eq!(m, original);
}
