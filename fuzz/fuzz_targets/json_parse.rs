//! `json::parse` and `Parsed::to_vec`: round trips, a differential against serde_json, and the
//! writer's reuse of source tokens after the value changed shape (a batch element dropped, as
//! `PiiCore::to_model` does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_pii_gateway::json;
use mcp_pii_gateway_fuzz::text::{number_tokens, split_top_array, strip_ws};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let serde_in = serde_json::from_slice::<Value>(data).ok();
    let p = match json::parse(data) {
        Ok(p) => p,
        Err(e) => {
            // Our parser reads everything serde_json reads (it only adds leniency).
            assert!(
                serde_in.is_none(),
                "serde_json reads what json::parse refuses ({e})"
            );
            return;
        }
    };
    let out = p.to_vec();

    // The output reads back to the same value, and writing it again changes nothing.
    let p2 = json::parse(&out).expect("to_vec output must parse");
    assert_eq!(p2.value, p.value, "parse(to_vec) differs");
    assert!(p2.is_exact());
    assert_eq!(p2.to_vec(), out, "to_vec is not idempotent");

    // Nothing changed and no duplicate keys: the output is the source without whitespace.
    if p.is_exact() {
        assert_eq!(
            out,
            strip_ws(data),
            "an exact parse was not written back token for token"
        );
    }

    // Differential: whatever serde_json reads in the input, it reads the same in the output.
    if let Some(vin) = &serde_in {
        let vout: Value =
            serde_json::from_slice(&out).expect("serde_json refuses the output of input it read");
        assert_eq!(&vout, vin, "serde_json reads the output differently");
        // Numbers compare by value: json::parse reads `-0` as the integer 0 (its text is kept).
        assert!(
            loose_eq(&p.value, vin),
            "json::parse reads the input differently from serde_json"
        );
    }

    // Every subtree one or two steps down (what the aggregated endpoint takes out of a list)
    // is written with its own source tokens: it reads back to its value and, for an exact
    // parse, is a contiguous piece of the whole output.
    let mut paths: Vec<Vec<json::Step<'_>>> = Vec::new();
    let steps = |v: &Value| -> Vec<json::Step<'static>> {
        match v {
            Value::Array(a) => (0..a.len().min(8)).map(json::Step::Index).collect(),
            _ => Vec::new(),
        }
    };
    match &p.value {
        Value::Object(m) => {
            for (k, v) in m.iter().take(8) {
                paths.push(vec![json::Step::Key(k)]);
                for s in steps(v) {
                    paths.push(vec![json::Step::Key(k), s]);
                }
                if let Value::Object(inner) = v {
                    for k2 in inner.keys().take(8) {
                        paths.push(vec![json::Step::Key(k), json::Step::Key(k2)]);
                    }
                }
            }
        }
        v => {
            for s in steps(v) {
                paths.push(vec![s]);
            }
        }
    }
    for path in &paths {
        let sub = p.subtree(path).expect("a path taken from the value exists");
        let bytes = sub.to_vec();
        let again = json::parse(&bytes).expect("a subtree's output parses");
        assert_eq!(again.value, sub.value, "a subtree reads back differently");
        if p.is_exact() {
            assert!(
                out.windows(bytes.len()).any(|w| w == bytes.as_slice()),
                "an exact subtree is not a piece of the output: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    // Drop the first element of a top-level array (what to_model does to a batch element it
    // must withhold): the other elements must be written as if they stood alone.
    if let Value::Array(items) = &p.value {
        if items.len() >= 2 {
            // The API for it: split the batch into messages, each with its own tokens.
            let kept: Vec<Vec<u8>> = p.into_messages().iter().skip(1).map(|m| m.to_vec()).collect();
            let mut dropped = b"[".to_vec();
            dropped.extend_from_slice(&kept.join(&b","[..]));
            dropped.push(b']');
            let parts = split_top_array(&out).expect("to_vec output is a well-formed array");
            let alone = format!("[{}]", parts[1..].join(","));
            let reference = json::parse(alone.as_bytes())
                .expect("the kept elements parse")
                .to_vec();
            let got = json::parse(&dropped).expect("output after a drop must parse");
            assert_eq!(
                got.value,
                json::parse(&reference).expect("reference parses").value
            );
            let (a, b) = (number_tokens(&dropped), number_tokens(&reference));
            let same = a == b;
            assert!(
                same,
                "after dropping a batch element, number texts changed: {:?} vs {:?}",
                String::from_utf8_lossy(&dropped),
                String::from_utf8_lossy(&reference)
            );
        }
    }
});

/// Equal values, numbers compared as f64 (so `0` equals `-0.0`).
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| loose_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| loose_eq(v, w)))
        }
        _ => a == b,
    }
}
