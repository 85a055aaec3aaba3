//! Realistic tool results through the rewriter: phone numbers under keys and in table columns
//! that name them never reach the model raw; ids, timestamps, IPs and measurements beside them
//! pass unchanged; restoring gives the server's message back exactly.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId};
use serde_json::{json, Value};

/// Phones in the shapes tool results carry them (fictional: libphonenumber example ranges,
/// Ofcom drama numbers, 555-01xx).
const PHONES: &[&str] = &[
    "+44(0)306 9990505",
    "0619861964",
    "7384512884",
    "05023629588",
    "(38)/450-0389",
    "+90(500)8121079",
    "8 (7262) 88 30 89",
    "1800121746",
    "09012345678",
    "030 901820",
    "+1 201-555-0123",
    "13341212686",
];

/// Values that must pass untouched.
const KEEP: &[&str] = &[
    "0051t00000AbCdE",
    "1712040316",
    "1712040316178",
    "2024-03-15T10:20:30Z",
    "192.168.100.200",
    "10.0.0.17",
    "8c3f1a2b-1234-4abc-a123-123456789012",
    "375 623 6584",
    "3756236584",
    "4412345678",
    "98.6",
    "8 812 345",
    "(985) 880-8774",
    "1 234 567",
    "v2.14.1093",
    "ORD-0612345678",
];

fn tool_result() -> Value {
    let csv = "id,name,phone,created,ip\n\
               4412345678,Ana Lima,05023629588,1712040316,192.168.100.200\n\
               4412345679,\"Paz, Jaén\",0619861964,1712040317,10.0.0.17\n";
    let md = "| Name | Phone | Requests |\n|---|---|---|\n| Ana | (38)/450-0389 | 3756236584 |\n| Bo | +90(500)8121079 | 1 234 567 |\n";
    let structured = json!({
        "records": [{
            "attributes": {"type": "Contact", "url": "/services/data/v59.0/sobjects/Contact/0051t00000AbCdE"},
            "Id": "0051t00000AbCdE",
            "Phone": "+44(0)306 9990505",
            "MobilePhone": "0619861964",
            "Fax": "8 (7262) 88 30 89",
            "LastModifiedDate": "2024-03-15T10:20:30Z",
        }],
        "customer": {
            "id": "4412345678",
            "phone": "7384512884",
            "phone_number": "1800121746",
            "contact": {"電話番号": "09012345678", "tel": "030 901820"},
            "created": 1712040316178u64,
            "ip": "10.0.0.17",
            "order": "ORD-0612345678",
        },
        "metrics": {"population": "8 812 345", "count": "3756236584", "temp": "98.6", "rows": "1 234 567"},
        "build": "v2.14.1093",
        "trace": "8c3f1a2b-1234-4abc-a123-123456789012",
        "phones": ["+1 201-555-0123", "13341212686"],
    });
    json!({"jsonrpc": "2.0", "id": 3, "result": {
        "content": [
            {"type": "text", "text": csv},
            {"type": "text", "text": md},
            {"type": "text", "text": "Counts: 375 623 6584\nPopulation (985) 880-8774 bytes\nts=1712040316 up 98.6%"},
            {"type": "text", "text": structured.to_string()},
        ],
        "structuredContent": structured,
    }})
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|e| strings(e, out)),
        Value::Object(m) => {
            for (k, e) in m {
                out.push(k.clone());
                strings(e, out);
            }
        }
        _ => {}
    }
}

#[test]
fn named_phones_never_reach_the_model_and_the_rest_is_untouched() {
    let rw = Rewriter::new(
        Arc::new(Detector::builtin()),
        Arc::new(MemoryVault::builder().build()),
    );
    let scope = ScopeId::new("anonymous", "run-1");
    let original = tool_result();
    let mut msg = original.clone();
    rw.tokenize_message(&mut msg, &scope, "crm").unwrap();

    let mut all = Vec::new();
    strings(&msg, &mut all);
    let text = all.join("\n");
    for p in PHONES {
        assert!(!text.contains(p), "{p} reached the model raw:\n{text}");
    }
    for k in KEEP {
        assert!(text.contains(k), "{k} was changed:\n{text}");
    }
    // Nothing else was taken for a phone: one placeholder per distinct phone.
    let report = rw.tokenize_message(&mut original.clone(), &scope, "crm").unwrap();
    let phones = report
        .placeholders
        .iter()
        .filter(|t| t.placeholder.kind.as_str() == "PHONE")
        .count();
    assert_eq!(phones, PHONES.len(), "{report:?}\n{text}");

    let plan = rw.plan_restore_value(&msg, &scope).unwrap();
    rw.apply_restore(&mut msg, &plan);
    assert_eq!(msg, original);
}
