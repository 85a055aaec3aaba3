//! Property tests for the rewriter: for arbitrary JSON (strings mixing arbitrary Unicode from
//! every plane, JSON escapes, generated emails and phone numbers, and placeholder-shaped text):
//! - restore(tokenize(v)) == v exactly, for values and for JSON-RPC messages;
//! - the tokenized output holds no detected PII outside placeholders;
//! - tokenize is stable across calls in one scope;
//! - another scope can't resolve the placeholders;
//! - nothing panics on any JSON, in either direction.
//!
//! Test data is generated: example domains and fictional (555 / example-range) numbers only.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn rewriter() -> Rewriter {
    Rewriter::new(
        Arc::new(Detector::builtin()),
        Arc::new(MemoryVault::builder().build()),
    )
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9._+-]{0,10}[a-z0-9]",
        "[a-z][a-z0-9-]{0,8}",
        prop::sample::select(vec![
            "example.com",
            "example.org",
            "example.net",
            "mail.example.org",
        ]),
    )
        .prop_map(|(local, sub, dom)| format!("{local}@{sub}.{dom}"))
}

fn phone() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\+1 (202|415|312) 555-01[0-9]{2}",
        "\\+44 20 7946 0[0-9]{3}",
        "\\+49 30 [0-9]{6,8}",
        "\\(0[0-9]{2}\\) 555 [0-9]{4}",
        "\\+33 1 [0-9]{2} [0-9]{2} [0-9]{2} [0-9]{2}",
        "\\+81 3-[0-9]{4}-[0-9]{4}",
        "tel:\\+1202555[0-9]{4}",
    ]
}

fn placeholder_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["EMAIL", "PHONE", "TODO", "CUSTOMER_ID", "email", ""]),
        prop_oneof!["[1-9][0-9]{0,3}", "0[0-9]?", "[0-9]{20,22}", Just(String::new())],
        prop::sample::select(vec!["[", "[[", ""]),
        prop::sample::select(vec!["]", "]]", "", " ]"]),
    )
        .prop_map(|(k, n, open, close)| format!("{open}{k}_{n}{close}"))
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
        1 => "[ -~]{0,12}",
        2 => email(),
        2 => phone(),
        2 => placeholder_like(),
        1 => prop::sample::select(vec![
            "\\u0040", "\\\"", "\"", "\\", "\n", "\r\n", "\t", "\u{0}", "\u{1f}", "\u{7f}", "\u{feff}",
            "\u{2028}", "\u{10ffff}", "\u{1F600}", "\u{FF20}", "@", "[", "]", "_", "mailto:", " <", "> ",
        ]).prop_map(str::to_owned),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat())
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A JSON-RPC-shaped message with arbitrary content in its parts.
fn message() -> impl Strategy<Value = Value> {
    let method = prop::sample::select(vec![
        "tools/call",
        "notifications/progress",
        "notifications/cancelled",
        "sampling/createMessage",
        "x/unknown",
    ]);
    let id = prop_oneof![any::<i64>().prop_map(Value::from), text().prop_map(Value::String)];
    prop_oneof![
        (id.clone(), method.clone(), json(), text()).prop_map(|(id, m, p, tok)| {
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": m,
                "params": {"_meta": {"progressToken": tok}, "arguments": p, "progressToken": tok, "requestId": tok}})
        }),
        (method, json(), text()).prop_map(|(m, p, tok)| {
            serde_json::json!({"jsonrpc": "2.0", "method": m,
                "params": {"progressToken": tok, "requestId": tok, "message": p}})
        }),
        (id.clone(), json(), text(), text()).prop_map(|(id, r, t, blob)| {
            serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"content": [
                {"type": "text", "text": t},
                {"type": "image", "data": blob, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": t, "blob": "QUJD"}}],
                "structuredContent": r}})
        }),
        (id, json(), text()).prop_map(|(id, d, m)| {
            serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": m, "data": d}})
        }),
        json(),
    ]
}

/// Every string and key in `v`, each once.
fn strings(v: &Value, out: &mut Vec<String>) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => {
                for (k, e) in m {
                    out.push(k.clone());
                    stack.push(e);
                }
            }
            _ => {}
        }
    }
}

/// Byte ranges of placeholder-shaped text with a known kind (`[KIND_N]`, N from 1, no leading
/// zero), written independently of the crate's scanner.
fn placeholder_ranges(s: &str, kinds: &[&str]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    for (i, _) in s.match_indices('[') {
        let Some(close) =
            s[i + 1..].find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        else {
            continue;
        };
        let j = i + 1 + close;
        if b[j] != b']' {
            continue;
        }
        let inner = &s[i + 1..j];
        let Some((k, n)) = inner.rsplit_once('_') else {
            continue;
        };
        if kinds.contains(&k) && !n.is_empty() && !n.starts_with('0') && n.parse::<u64>().is_ok() {
            out.push((i, j + 1));
        }
    }
    out
}

/// 512 cases by default; `PROPTEST_CASES` overrides.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 512;
    }
    c
}

/// Checks every property on one value (used for the regression group below).
fn check_all(v: &Value) {
    let rw = rewriter();
    let scope = ScopeId::new("c", "s");
    let mut t = v.clone();
    rw.tokenize_value(&mut t, &scope, "srv").unwrap();
    let kinds: Vec<&str> = rw.detector().kinds().iter().map(|k| k.as_str()).collect();
    let mut all = Vec::new();
    strings(&t, &mut all);
    for s in all {
        let ph = placeholder_ranges(&s, &kinds);
        for span in rw.detector().find(&s) {
            assert!(
                ph.iter().any(|&(a, b)| a <= span.start && span.end <= b),
                "{} span {}..{} outside placeholders in {s:?}",
                span.kind,
                span.start,
                span.end
            );
        }
    }
    let plan = rw.plan_restore_value(&t, &scope).unwrap();
    rw.apply_restore(&mut t, &plan);
    assert_eq!(t.to_string(), v.to_string());
}

/// Inputs that once broke a property (found by the generators above, with the real detector).
#[test]
fn regressions() {
    for text in [
        // Replacing the first address exposed a second one that started inside its match:
        // the output must be re-scanned until nothing new is found.
        "aa@a.example.coma_a@a.example.com+1 202 555-0100",
        "[EMAIL_1]_a@a.example.com+1 [PHONE_1]",
        "x.y@example.org.z@example.org.w@example.org",
        "a@example.coma@example.coma@example.coma@example.coma@example.com",
    ] {
        check_all(&Value::String(text.to_owned()));
        check_all(&serde_json::json!({ text: [text] }));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn value_round_trip_exact(v in json()) {
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        let mut t = v.clone();
        rw.tokenize_value(&mut t, &scope, "srv").unwrap();
        let plan = rw.plan_restore_value(&t, &scope).unwrap();
        rw.apply_restore(&mut t, &plan);
        prop_assert_eq!(&t, &v);
        // Byte for byte, also in serialized form (key order included).
        prop_assert_eq!(t.to_string(), v.to_string());
    }

    #[test]
    fn message_round_trip_exact(v in message()) {
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        let mut t = v.clone();
        rw.tokenize_message(&mut t, &scope, "srv").unwrap();
        // Never-touched members really are untouched.
        prop_assert_eq!(t.get("id"), v.get("id"));
        prop_assert_eq!(t.get("method"), v.get("method"));
        prop_assert_eq!(t.pointer("/params/_meta/progressToken"), v.pointer("/params/_meta/progressToken"));
        let plan = rw.plan_restore_message(&t, &scope).unwrap();
        rw.apply_restore_message(&mut t, &plan);
        prop_assert_eq!(t.to_string(), v.to_string());
    }

    #[test]
    fn text_round_trip_exact(s in text()) {
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        let (t, report) = rw.tokenize_text(&s, &scope, "srv").unwrap();
        let mut v = Value::String(t);
        let plan = rw.plan_restore_value(&v, &scope).unwrap();
        prop_assert_eq!(plan.uses.len(), report.placeholders.len());
        rw.apply_restore(&mut v, &plan);
        prop_assert_eq!(v, Value::String(s));
    }

    #[test]
    fn no_detected_pii_outside_placeholders(v in json()) {
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        let mut t = v.clone();
        rw.tokenize_value(&mut t, &scope, "srv").unwrap();
        let kinds: Vec<&str> = rw.detector().kinds().iter().map(|k| k.as_str()).collect();
        let mut all = Vec::new();
        strings(&t, &mut all);
        for s in all {
            let ph = placeholder_ranges(&s, &kinds);
            for span in rw.detector().find(&s) {
                let inside = ph.iter().any(|&(a, b)| a <= span.start && span.end <= b);
                prop_assert!(inside, "{} span {}..{} outside placeholders in {:?}", span.kind, span.start, span.end, s);
            }
        }
    }

    #[test]
    fn message_has_no_detected_pii_outside_placeholders(
        params in json(), result in json(), text in text(), notify in any::<bool>()
    ) {
        // Members the rules leave untouched hold no PII here; everything else is arbitrary.
        let msg = if notify {
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": "tok", "message": text, "extra": params}})
        } else {
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {
                "content": [{"type": "text", "text": text}, {"type": "image", "data": "QUJD"}],
                "structuredContent": result, "_meta": params}})
        };
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        let mut t = msg.clone();
        rw.tokenize_message(&mut t, &scope, "srv").unwrap();
        let kinds: Vec<&str> = rw.detector().kinds().iter().map(|k| k.as_str()).collect();
        let mut all = Vec::new();
        strings(&t, &mut all);
        for s in all {
            let ph = placeholder_ranges(&s, &kinds);
            for span in rw.detector().find(&s) {
                let inside = ph.iter().any(|&(a, b)| a <= span.start && span.end <= b);
                prop_assert!(inside, "{} span {}..{} outside placeholders in {:?}", span.kind, span.start, span.end, s);
            }
        }
    }

    #[test]
    fn stable_across_calls_in_one_scope(v in json()) {
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        let mut a = v.clone();
        let mut b = v.clone();
        rw.tokenize_value(&mut a, &scope, "one").unwrap();
        let again = rw.tokenize_value(&mut b, &scope, "two").unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert!(again.placeholders.iter().all(|t| !t.minted));
    }

    #[test]
    fn other_scopes_cannot_resolve(v in json()) {
        let rw = rewriter();
        let mut t = v.clone();
        let report = rw.tokenize_value(&mut t, &ScopeId::new("c", "s"), "srv").unwrap();
        for other in [ScopeId::new("c", "other"), ScopeId::new("d", "s")] {
            match rw.plan_restore_value(&t, &other) {
                Ok(plan) => prop_assert!(report.placeholders.is_empty() && plan.is_empty()),
                Err(e) => {
                    prop_assert!(e.is_unknown_placeholder());
                    prop_assert!(!report.placeholders.is_empty());
                }
            }
        }
    }

    #[test]
    fn no_panic_on_any_json_either_way(v in message()) {
        let rw = rewriter();
        let scope = ScopeId::new("c", "s");
        // Restore first, on raw data: may fail (unknown placeholders), must not panic.
        if let Ok(plan) = rw.plan_restore_message(&v, &scope) {
            let mut w = v.clone();
            rw.apply_restore_message(&mut w, &plan);
            prop_assert_eq!(w, v.clone(), "an empty scope restores nothing");
        }
        let mut w = v.clone();
        rw.tokenize_message(&mut w, &scope, "srv").unwrap();
        let mut x = v;
        rw.tokenize_value(&mut x, &scope, "srv").unwrap();
    }
}
