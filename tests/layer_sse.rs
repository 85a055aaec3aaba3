//! Property tests of the incremental SSE rewriter: however a stream is cut into chunks, the
//! output is the same, no generated address survives, framing fields are kept, and every data
//! message is still valid JSON.
//!
//! Test data is generated: `<first>.<last>@example.{org,net,com}` addresses.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mcp_pii_gateway::exchange::{ExchangeCtx, PiiCore};
use mcp_pii_gateway::layer::sse::SseRewriter;
use mcp_pii_gateway::vault::ScopeId;
use proptest::prelude::*;
use serde_json::json;

const FIRST: &[&str] = &["ana", "joao", "mei", "olu", "sven"];
const LAST: &[&str] = &["lima", "silva", "chen", "adeyemi", "berg"];
const TLD: &[&str] = &["org", "net", "com"];

fn email() -> impl Strategy<Value = String> {
    (0..FIRST.len(), 0..LAST.len(), 0..TLD.len())
        .prop_map(|(f, l, t)| format!("{}.{}@example.{}", FIRST[f], LAST[l], TLD[t]))
}

#[derive(Debug, Clone)]
enum Field {
    Id(u32),
    Event,
    Retry(u32),
    Comment,
    Data { email: String, id: u32 },
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        any::<u32>().prop_map(Field::Id),
        Just(Field::Event),
        (0u32..10_000).prop_map(Field::Retry),
        Just(Field::Comment),
        (email(), 0u32..100).prop_map(|(email, id)| Field::Data { email, id }),
    ]
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

/// A stream: events of 1..4 fields each, with arbitrary line ends; returns (bytes, emails used).
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    prop::collection::vec((prop::collection::vec((field(), eol()), 1..4), eol()), 1..6).prop_map(|events| {
        let mut out = String::new();
        let mut emails = Vec::new();
        for (fields, end) in events {
            for (f, e) in fields {
                match f {
                    Field::Id(n) => out.push_str(&format!("id: ev-{n}")),
                    Field::Event => out.push_str("event: message"),
                    Field::Retry(n) => out.push_str(&format!("retry: {n}")),
                    Field::Comment => out.push_str(": keep-alive"),
                    Field::Data { email, id } => {
                        let msg = json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":format!("write to {email}")}]}});
                        out.push_str(&format!("data: {msg}"));
                        emails.push(email);
                    }
                }
                out.push_str(e);
            }
            out.push_str(end);
        }
        (out.into_bytes(), emails)
    })
}

fn run(core: &PiiCore, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let ctx = Arc::new(ExchangeCtx::new(ScopeId::new("anonymous", "prop"), "crm"));
    let mut rw = SseRewriter::new(core.clone(), ctx, 1 << 20);
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts {
        rw.push(&input[last..c], &mut out);
        last = c;
    }
    rw.push(&input[last..], &mut out);
    rw.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunking_never_changes_the_output((input, emails) in stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        // One core (one vault) for both runs: placeholders are stable, so outputs must match.
        let core = PiiCore::builtin();
        let whole = run(&core, &input, &[]);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let split = run(&core, &input, &cuts);
        prop_assert_eq!(&whole, &split);
        let text = String::from_utf8(whole).unwrap();
        for e in &emails {
            prop_assert!(!text.contains(e.as_str()), "raw address in output: {}", text);
        }
        for line in text.split(['\n', '\r']) {
            if let Some(d) = line.strip_prefix("data: ") {
                let v: serde_json::Value = serde_json::from_str(d).unwrap();
                let t = v["result"]["content"][0]["text"].as_str().unwrap();
                prop_assert!(t.starts_with("write to [EMAIL_"), "{}", t);
            }
        }
    }
}

#[test]
fn a_data_split_inside_a_multibyte_character_is_reassembled() {
    let core = PiiCore::builtin();
    let msg = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"café — ana.lima@example.org"}});
    let input = format!("data: {msg}\n\n").into_bytes();
    let at = input.windows(2).position(|w| w == "é".as_bytes()).unwrap() + 1;
    let out = String::from_utf8(run(&core, &input, &[at])).unwrap();
    assert!(out.contains("café — [EMAIL_1]"), "{out}");
}
