#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::vault::MemoryVault;

fn rw() -> Rewriter {
    Rewriter::new(
        Arc::new(Detector::builtin()),
        Arc::new(MemoryVault::builder().build()),
    )
}

fn scope() -> ScopeId {
    ScopeId::new("client", "run-1")
}

/// Tokenizes `v` as a message, restores it, and checks the round trip.
fn round_trip_message(rw: &Rewriter, v: &Value) -> Value {
    let mut t = v.clone();
    rw.tokenize_message(&mut t, &scope(), "srv").unwrap();
    let mut r = t.clone();
    let plan = rw.plan_restore_message(&r, &scope()).unwrap();
    rw.apply_restore_message(&mut r, &plan);
    assert_eq!(&r, v);
    t
}

/// Drops a value without recursion (serde_json's own Drop recurses).
fn drop_deep(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[test]
fn text_table() {
    let rw = rw();
    let s = scope();
    let cases = [
        ("", ""),
        ("nothing here", "nothing here"),
        ("mail ana@example.org now", "mail [EMAIL_1] now"),
        ("again ana@example.org", "again [EMAIL_1]"),
        ("bo@example.net, ana@example.org", "[EMAIL_2], [EMAIL_1]"),
        ("literal [EMAIL_1]", "literal [EMAIL_3]"),
        (
            "[TODO_1] [EMAIL_01] [EMAIL_0] [email_1]",
            "[TODO_1] [EMAIL_01] [EMAIL_0] [email_1]",
        ),
        ("[PHONE_12]", "[PHONE_1]"),
        ("[[EMAIL_1]]", "[[EMAIL_3]]"),
        ("日本ana@example.org語", "日本[EMAIL_1]語"),
    ];
    for (input, want) in cases {
        let (out, _) = rw.tokenize_text(input, &s, "srv").unwrap();
        assert_eq!(out, want, "{input:?}");
    }
}

#[test]
fn report_lists_each_placeholder_once_with_minted() {
    let rw = rw();
    let s = scope();
    rw.tokenize_text("a@example.org", &s, "srv").unwrap();
    let mut v = json!(["b@example.org", "a@example.org", {"b@example.org": "a@example.org"}]);
    let report = rw.tokenize_value(&mut v, &s, "srv").unwrap();
    let got: Vec<(String, bool)> = report
        .placeholders
        .iter()
        .map(|t| (t.placeholder.to_string(), t.minted))
        .collect();
    assert_eq!(
        got,
        [("[EMAIL_2]".to_owned(), true), ("[EMAIL_1]".to_owned(), false)]
    );
    assert_eq!(v, json!(["[EMAIL_2]", "[EMAIL_1]", {"[EMAIL_2]": "[EMAIL_1]"}]));
}

#[test]
fn stable_across_calls_and_isolated_between_scopes() {
    let rw = rw();
    let v = json!({"to": "ana@example.org", "cc": ["[EMAIL_1]", "bo@example.org"]});
    let mut a = v.clone();
    let mut b = v.clone();
    rw.tokenize_value(&mut a, &scope(), "x").unwrap();
    rw.tokenize_value(&mut b, &scope(), "y").unwrap();
    assert_eq!(a, b);
    let other = ScopeId::new("client", "run-2");
    let e = rw.plan_restore_value(&a, &other).unwrap_err();
    assert!(e.is_unknown_placeholder());
    assert!(e.to_string().contains("[EMAIL_1] at /to"), "{e}");
    let other_client = ScopeId::new("someone-else", "run-1");
    assert!(rw
        .plan_restore_value(&a, &other_client)
        .unwrap_err()
        .is_unknown_placeholder());
}

#[test]
fn origins_reach_the_plan() {
    let rw = rw();
    let s = scope();
    let mut a = json!("ana@example.org");
    rw.tokenize_value(&mut a, &s, "crm").unwrap();
    let mut b = json!("ana@example.org");
    rw.tokenize_value(&mut b, &s, "mail").unwrap();
    let plan = rw.plan_restore_value(&json!({"x": ["[EMAIL_1]"]}), &s).unwrap();
    assert_eq!(plan.uses.len(), 1);
    let u = &plan.uses[0];
    assert_eq!(u.placeholder.to_string(), "[EMAIL_1]");
    assert_eq!(u.path, "/x/0");
    let origins: Vec<&str> = u.origins.iter().map(|o| &**o).collect();
    assert_eq!(origins, ["crm", "mail"]);
}

#[test]
fn unknown_placeholder_names_placeholder_and_pointer() {
    let rw = rw();
    let s = scope();
    rw.tokenize_text("ana@example.org", &s, "srv").unwrap();
    let cases = [
        (
            json!({"params": {"arguments": {"to": "[EMAIL_2]"}}}),
            "[EMAIL_2]",
            "/params/arguments/to",
        ),
        (
            json!({"a/b": {"c~d": ["x", "[PHONE_1]"]}}),
            "[PHONE_1]",
            "/a~1b/c~0d/1",
        ),
        (json!({"k": {"[EMAIL_9]": 1}}), "[EMAIL_9]", "/k/[EMAIL_9]"),
        (json!("[EMAIL_1] [EMAIL_3]"), "[EMAIL_3]", "the top level"),
    ];
    for (v, ph, path) in cases {
        let before = v.clone();
        let e = rw.plan_restore_value(&v, &s).unwrap_err();
        assert!(e.is_unknown_placeholder(), "{e}");
        assert!(e.to_string().contains(&format!("{ph} at {path}")), "{e}");
        assert_eq!(v, before);
    }
}

#[test]
fn pointers_never_show_pii_in_keys() {
    let rw = rw();
    let s = scope();
    let v = json!({"ana@example.org": {"to": "[EMAIL_4]"}});
    let e = rw.plan_restore_value(&v, &s).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains("ana@example.org"), "{msg}");
    assert!(msg.contains("/<EMAIL>/to"), "{msg}");
    let mut t = json!("bo@example.org");
    rw.tokenize_value(&mut t, &s, "srv").unwrap();
    let plan = rw
        .plan_restore_value(&json!({"key bo@example.org": "[EMAIL_1]"}), &s)
        .unwrap();
    assert_eq!(plan.uses[0].path, "/key <EMAIL>");
    assert!(!format!("{plan:?}").contains("bo@example.org"));
}

#[test]
fn unknown_kinds_and_malformed_numbers_are_plain_text() {
    let rw = rw();
    let v = json!({"t": "[TODO_1] [EMAIL_01] [EMAIL_] [EMAIL_99999999999999999999999]"});
    let plan = rw.plan_restore_value(&v, &scope()).unwrap();
    assert!(plan.is_empty());
}

#[test]
fn restore_is_single_pass() {
    // A value that is itself placeholder-shaped is restored literally, not re-expanded.
    let rw = rw();
    let s = scope();
    let (t, _) = rw.tokenize_text("ana@example.org [EMAIL_1]", &s, "srv").unwrap();
    assert_eq!(t, "[EMAIL_1] [EMAIL_2]");
    let mut v = json!("[EMAIL_2][EMAIL_1]");
    let plan = rw.plan_restore_value(&v, &s).unwrap();
    rw.apply_restore(&mut v, &plan);
    assert_eq!(v, json!("[EMAIL_1]ana@example.org"));
}

#[test]
fn keys_round_trip_and_keep_order() {
    let rw = rw();
    let v = json!({"z": 1, "ana@example.org": {"[EMAIL_1]": 2, "a": 3}, "b": "bo@example.org"});
    let mut t = v.clone();
    rw.tokenize_value(&mut t, &scope(), "srv").unwrap();
    let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["z", "[EMAIL_1]", "b"]);
    let inner: Vec<&String> = t["[EMAIL_1]"].as_object().unwrap().keys().collect();
    assert_eq!(inner, ["[EMAIL_2]", "a"]);
    let plan = rw.plan_restore_value(&t, &scope()).unwrap();
    rw.apply_restore(&mut t, &plan);
    assert_eq!(t, v);
    let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["z", "ana@example.org", "b"]);
}

#[test]
fn restoring_keys_that_collide_is_rejected() {
    let rw = rw();
    let s = scope();
    rw.tokenize_text("ana@example.org", &s, "srv").unwrap();
    let v = json!({"outer": {"ana@example.org": 1, "[EMAIL_1]": 2}});
    let e = rw.plan_restore_value(&v, &s).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("/outer"), "{e}");
    assert!(!e.to_string().contains("ana@"), "{e}");
}

#[test]
fn apply_with_empty_or_foreign_plan_leaves_value() {
    let rw = rw();
    let s = scope();
    rw.tokenize_text("ana@example.org bo@example.org", &s, "srv")
        .unwrap();
    let plan = rw.plan_restore_value(&json!("[EMAIL_1]"), &s).unwrap();
    let mut v = json!({"a": "[EMAIL_2] [EMAIL_1]"});
    rw.apply_restore(&mut v, &plan);
    assert_eq!(v, json!({"a": "[EMAIL_2] ana@example.org"}));
    let mut w = json!("[EMAIL_1]");
    rw.apply_restore(&mut w, &RestorePlan::default());
    assert_eq!(w, json!("[EMAIL_1]"));
}

#[test]
fn merge_cuts_rules() {
    let cut = |start, end, kind: &str, literal| Cut {
        start,
        end,
        kind: Kind::new(kind).unwrap(),
        literal,
    };
    let show = |cuts: &[Cut]| -> Vec<(usize, usize, String, bool)> {
        cuts.iter()
            .map(|c| (c.start, c.end, c.kind.to_string(), c.literal))
            .collect()
    };
    // Contained detector match inside a literal: dropped.
    let mut c = vec![cut(0, 10, "PHONE", true), cut(7, 9, "PHONE", false)];
    merge_cuts(&mut c);
    assert_eq!(show(&c), [(0, 10, "PHONE".to_owned(), true)]);
    // Partial overlap: joined, detector kind wins.
    let mut c = vec![cut(5, 15, "PHONE", false), cut(0, 9, "EMAIL", true)];
    merge_cuts(&mut c);
    assert_eq!(show(&c), [(0, 15, "PHONE".to_owned(), false)]);
    // Disjoint and touching: kept, sorted.
    let mut c = vec![
        cut(9, 12, "EMAIL", false),
        cut(0, 9, "EMAIL", true),
        cut(20, 21, "X", false),
    ];
    merge_cuts(&mut c);
    assert_eq!(
        show(&c),
        [
            (0, 9, "EMAIL".to_owned(), true),
            (9, 12, "EMAIL".to_owned(), false),
            (20, 21, "X".to_owned(), false)
        ]
    );
}

#[test]
fn deep_arrays_and_objects_do_not_overflow() {
    const DEPTH: usize = 100_000;
    let rw = rw();
    let s = scope();
    for object in [false, true] {
        let mut v = json!("deep ana@example.org [EMAIL_1]");
        for _ in 0..DEPTH {
            v = if object {
                let mut m = serde_json::Map::new();
                m.insert("k".to_owned(), v);
                Value::Object(m)
            } else {
                Value::Array(vec![v])
            };
        }
        rw.tokenize_value(&mut v, &s, "srv").unwrap();
        let plan = rw.plan_restore_value(&v, &s).unwrap();
        let path = &plan.uses[0].path;
        assert_eq!(path.len(), DEPTH * 2);
        let restored_check = |v: &Value, want: &str| {
            let mut cur = v;
            loop {
                match cur {
                    Value::Array(a) => cur = &a[0],
                    Value::Object(m) => cur = &m["k"],
                    leaf => {
                        assert_eq!(leaf, &json!(want));
                        break;
                    }
                }
            }
        };
        restored_check(&v, "deep [EMAIL_1] [EMAIL_2]");
        rw.apply_restore(&mut v, &plan);
        restored_check(&v, "deep ana@example.org [EMAIL_1]");
        drop_deep(v);
    }
}

// ---- message-level rules ----

#[test]
fn ids_methods_and_jsonrpc_untouched() {
    let rw = rw();
    let v = json!({"jsonrpc": "2.0", "id": "ana@example.org", "method": "x/[EMAIL_1]",
        "params": {"note": "ana@example.org"}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["id"], "ana@example.org");
    assert_eq!(t["method"], "x/[EMAIL_1]");
    assert_eq!(t["params"]["note"], "[EMAIL_1]");
    // Restore direction: ids and methods with placeholder-shaped text are not resolved.
    let out = json!({"jsonrpc": "2.0", "id": "[EMAIL_7]", "method": "[EMAIL_8]", "params": {}});
    assert!(rw.plan_restore_message(&out, &scope()).unwrap().is_empty());
}

#[test]
fn results_errors_and_unknown_members_are_tokenized() {
    let rw = rw();
    let v = json!({"jsonrpc": "2.0", "id": 1,
        "error": {"code": -32000, "message": "no user ana@example.org",
                  "data": {"who": ["bo@example.org"], "ana@example.org": true}},
        "x-extra": {"deep": "cy@example.org"}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["error"]["message"], "no user [EMAIL_1]");
    assert_eq!(t["error"]["data"]["who"][0], "[EMAIL_2]");
    assert_eq!(t["error"]["data"]["[EMAIL_1]"], true);
    assert_eq!(t["error"]["code"], -32000);
    assert_eq!(t["x-extra"]["deep"], "[EMAIL_3]");
    let v = json!({"jsonrpc": "2.0", "id": 2, "result": {"content": [{"type": "text", "text": "dx@example.org"}],
        "structuredContent": {"mail": "dx@example.org"}, "unknownField": "ex@example.org"}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["result"]["content"][0]["text"], "[EMAIL_4]");
    assert_eq!(t["result"]["structuredContent"]["mail"], "[EMAIL_4]");
    assert_eq!(t["result"]["unknownField"], "[EMAIL_5]");
}

#[test]
fn progress_tokens_and_cancel_ids_untouched() {
    let rw = rw();
    let v = json!({"jsonrpc": "2.0", "method": "notifications/progress",
        "params": {"progressToken": "ana@example.org", "progress": 1, "message": "ana@example.org"}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["params"]["progressToken"], "ana@example.org");
    assert_eq!(t["params"]["message"], "[EMAIL_1]");
    let v = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "bo@example.org", "reason": "bo@example.org"}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["params"]["requestId"], "bo@example.org");
    assert_eq!(t["params"]["reason"], "[EMAIL_2]");
    let v = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "t", "_meta": {"progressToken": "cy@example.org", "other": "cy@example.org"},
                   "arguments": {"progressToken": "cy@example.org", "requestId": "cy@example.org"}}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["params"]["_meta"]["progressToken"], "cy@example.org");
    assert_eq!(t["params"]["_meta"]["other"], "[EMAIL_3]");
    // Only the protocol positions are exempt: same names elsewhere are tokenized.
    assert_eq!(t["params"]["arguments"]["progressToken"], "[EMAIL_3]");
    assert_eq!(t["params"]["arguments"]["requestId"], "[EMAIL_3]");
    // Restore direction leaves a placeholder-shaped progress token alone.
    let out = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"_meta": {"progressToken": "[EMAIL_77]"}}});
    assert!(rw.plan_restore_message(&out, &scope()).unwrap().is_empty());
    let out =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "[EMAIL_77]"}});
    assert!(rw.plan_restore_message(&out, &scope()).unwrap().is_empty());
    // ... but a requestId elsewhere is restored (and here unknown).
    let out =
        json!({"jsonrpc": "2.0", "method": "notifications/other", "params": {"requestId": "[EMAIL_77]"}});
    assert!(rw.plan_restore_message(&out, &scope()).is_err());
}

#[test]
fn base64_blobs_untouched_but_lookalikes_walked() {
    let rw = rw();
    rw.tokenize_text("zz@example.org", &scope(), "srv").unwrap();
    let v = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [
            {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
            {"type": "audio", "data": "[EMAIL_1]AAA"},
            {"type": "text", "data": "ana@example.org"},
            {"type": "resource", "resource": {"uri": "file:///a", "blob": "QUJD", "mimeType": "x"}},
            {"type": "resource", "resource": {"uri": "file:///b", "blob": "ana@example.org"}},
        ],
        "other": {"blob": "QUJD[EMAIL_1]"}}});
    let t = round_trip_message(&rw, &v);
    let c = &t["result"]["content"];
    assert_eq!(c[0]["data"], "iVBORw0KGgo=");
    assert_eq!(
        c[1]["data"], "[EMAIL_2]AAA",
        "not base64: walked, the literal is vaulted"
    );
    assert_eq!(c[2]["data"], "[EMAIL_3]");
    assert_eq!(c[3]["resource"]["blob"], "QUJD");
    assert_eq!(c[4]["resource"]["blob"], "[EMAIL_3]");
    assert_eq!(
        t["result"]["other"]["blob"], "QUJD[EMAIL_2]",
        "no uri: not resource contents"
    );
}

#[test]
fn server_initiated_requests_and_answers() {
    let rw = rw();
    // Toward the model: sampling request from a server.
    let v = json!({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage",
        "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "mail ana@example.org"}}],
                   "maxTokens": 10}});
    let t = round_trip_message(&rw, &v);
    assert_eq!(t["params"]["messages"][0]["content"]["text"], "mail [EMAIL_1]");
    // Toward the server: the client's answer.
    let mut answer = json!({"jsonrpc": "2.0", "id": "s1",
        "result": {"role": "assistant", "content": {"type": "text", "text": "sent to [EMAIL_1]"}}});
    let plan = rw.plan_restore_message(&answer, &scope()).unwrap();
    assert_eq!(plan.uses[0].path, "/result/content/text");
    rw.apply_restore_message(&mut answer, &plan);
    assert_eq!(answer["result"]["content"]["text"], "sent to ana@example.org");
}

#[test]
fn batches() {
    let rw = rw();
    let v = json!([
        {"jsonrpc": "2.0", "id": "ana@example.org", "result": {"t": "ana@example.org"}},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "bo@example.org"}},
        "stray bo@example.org",
        [{"id": "cy@example.org"}]
    ]);
    let t = round_trip_message(&rw, &v);
    assert_eq!(t[0]["id"], "ana@example.org");
    assert_eq!(t[0]["result"]["t"], "[EMAIL_1]");
    assert_eq!(t[1]["params"]["progressToken"], "bo@example.org");
    assert_eq!(t[2], "stray [EMAIL_2]");
    // A nested array is not a message: walked generically.
    assert_eq!(t[3][0]["id"], "[EMAIL_3]");
    let out = json!([{"jsonrpc": "2.0", "id": 1, "method": "m", "params": {"a": "[EMAIL_1]"}},
                     {"jsonrpc": "2.0", "id": 2, "method": "m", "params": {"a": "[EMAIL_9]"}}]);
    let e = rw.plan_restore_message(&out, &scope()).unwrap_err();
    assert!(e.to_string().contains("[EMAIL_9] at /1/params/a"), "{e}");
}

#[test]
fn plan_restore_does_not_mutate_and_failure_forwards_nothing() {
    let rw = rw();
    rw.tokenize_text("ana@example.org", &scope(), "srv").unwrap();
    let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"arguments": {"a": "[EMAIL_1]", "b": "[PHONE_3]"}}});
    let before = msg.to_string();
    assert!(rw.plan_restore_message(&msg, &scope()).is_err());
    assert_eq!(msg.to_string(), before);
}

#[test]
fn phone_numbers_sent_as_json_integers_round_trip_as_integers() {
    let rw = rw();
    let v = json!({"jsonrpc": "2.0", "id": 4915123456789u64, "result": {"structuredContent": {
        "name": "Ana", "phone": 4915123456789u64, "MobilePhone": 2025550143u64,
        "phone_number": 4915123456789u64, "count": 4915123456789u64, "hotel": 2025550143u64,
        "fax": 42, "tel": 2025550143.0, "rows": [{"Telefon": 3055550100u64}],
        "note": "call 4915123456789"}}});
    let t = round_trip_message(&rw, &v);
    let sc = &t["result"]["structuredContent"];
    // Integers under phone-named members become placeholders, numbered in document order.
    assert_eq!(sc["phone"], "[PHONE_1]");
    assert_eq!(sc["MobilePhone"], "[PHONE_2]");
    assert_eq!(sc["phone_number"], "[PHONE_1]");
    assert_eq!(sc["rows"][0]["Telefon"], "[PHONE_3]");
    // Anything else stays: other names, short numbers, non-integers, the message id.
    assert_eq!(t["id"], 4915123456789u64);
    assert_eq!(sc["count"], 4915123456789u64);
    assert_eq!(sc["hotel"], 2025550143u64);
    assert_eq!(sc["fax"], 42);
    assert_eq!(sc["tel"], 2025550143.0);

    // A placeholder inside text restores to the digits; alone, to the integer.
    let mut req = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "sms",
        "arguments": {"to": "[PHONE_1]", "text": "we will call [PHONE_2]", "[PHONE_3]": true}}});
    let plan = rw.plan_restore_message(&req, &scope()).unwrap();
    rw.apply_restore_message(&mut req, &plan);
    let args = &req["params"]["arguments"];
    assert_eq!(args["to"], 4915123456789u64);
    assert_eq!(args["text"], "we will call 2025550143");
    assert_eq!(args["3055550100"], true);
}

/// Found by the `request_restore` fuzz target (fuzz/regressions/request_restore/f4-*): only the
/// placeholder of an integer turns back into one; other strings stay strings whatever they hold.
#[test]
fn only_an_integers_placeholder_turns_back_into_an_integer() {
    let rw = rw();
    let mut v = json!({"result": {"structuredContent": {"phone": 2025550143u64}}});
    rw.tokenize_message(&mut v, &scope(), "srv").unwrap();
    assert_eq!(v["result"]["structuredContent"]["phone"], "[PHONE_1]");
    let mut req = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {
        "to": "[PHONE_1]", "nul": "\u{0}0143", "nul_same": "\u{0}2025550143", "[PHONE_1]": 1}}});
    let plan = rw.plan_restore_message(&req, &scope()).unwrap();
    rw.apply_restore_message(&mut req, &plan);
    let args = &req["params"]["arguments"];
    assert_eq!(args["to"], 2025550143u64);
    assert_eq!(args["nul"], "\u{0}0143");
    assert_eq!(args["nul_same"], "\u{0}2025550143");
    assert_eq!(args["2025550143"], 1);
    // A restored member name that collides with a literal one is refused, not merged.
    let req = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"arguments": {"[PHONE_1]": 1, "2025550143": 2}}});
    assert!(rw.plan_restore_message(&req, &scope()).is_err());
}
