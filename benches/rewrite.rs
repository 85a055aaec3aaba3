//! Full tokenize + restore of ~1 MB realistic tool results (`tools/call` responses). The
//! `generated` input lists CRM records as text content and as `structuredContent`, generated
//! deterministically here: example.org/.com/.net addresses and fictional 555 numbers only.
//!
//! Run: `cargo bench --bench rewrite -- --warm-up-time 1 --measurement-time 3`
//!
//! Inputs: `benches/data/{sparse,dense}.json` (committed corpus, one PII value per ~2 KB and
//! per ~100 bytes) and `generated` (built below). For each, in `tokenize_restore_1mb/<input>`:
//! - `first_sight`: tokenize + plan + apply with a fresh vault per iteration (all values minted);
//! - `steady`: the same with one vault and scope for all iterations (values already known);
//! - `tokenize_only` / `plan_restore_only`: the two halves alone (steady state).
//!
//! `one_tools_call_4kb`: the PII work of one relayed call of the latency bench, in a tight loop
//! (restore the request with the policy hooks, tokenize and serialize a 4 KB response).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId};
use serde_json::{json, Value};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const FIRST: &[&str] = &[
    "Ana", "Bruno", "Chen", "Dara", "Elif", "Femi", "Giulia", "Hiro", "Ines", "Jonas", "Kavya", "Lars",
    "Mei", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ursula", "Vikram", "Wen", "Yara",
    "Zoltan",
];
const LAST: &[&str] = &[
    "Lima", "Okafor", "Nakamura", "Schmidt", "Garcia", "Kowalski", "Haddad", "Rossi", "Novak", "Singh",
    "Jensen", "Moreau", "Silva", "Kim", "Petrov",
];
const DOMAINS: &[&str] = &["example.org", "example.com", "example.net", "mail.example.org"];
const WORDS: &[&str] = &[
    "invoice",
    "renewal",
    "escalated",
    "pending",
    "shipment",
    "contract",
    "meeting",
    "follow-up",
    "quote",
    "support",
    "ticket",
    "refund",
    "onboarding",
    "priority",
    "account",
    "review",
    "the",
    "and",
    "for",
    "customer",
    "asked",
    "about",
    "status",
    "of",
    "order",
    "next",
    "week",
    "call",
    "back",
];

fn phone(r: &mut Rng) -> String {
    match r.below(4) {
        0 => format!("+1 202-555-01{:02}", r.below(100)),
        1 => format!("+44 20 7946 0{:03}", r.below(1000)),
        2 => format!("(415) 555-01{:02}", r.below(100)),
        _ => format!("+49 30 {:08}", r.below(100_000_000)),
    }
}

fn sentence(r: &mut Rng, words: usize) -> String {
    (0..words).map(|_| r.pick(WORDS)).collect::<Vec<_>>().join(" ")
}

/// A `tools/call` response of about `target` bytes.
fn tool_result(target: usize) -> Value {
    let mut r = Rng(0x5EED_1234_ABCD_0001);
    let mut records = Vec::new();
    let mut text = String::new();
    let mut size = 0;
    let mut i = 0u32;
    while size < target {
        let (f, l) = (r.pick(FIRST), r.pick(LAST));
        // A pool of ~2000 people, so values repeat as in real data.
        let who = r.below(2000);
        let email = format!(
            "{}.{}{}@{}",
            f.to_lowercase(),
            l.to_lowercase(),
            who,
            r.pick(DOMAINS)
        );
        let ph = phone(&mut r);
        let words = 12 + r.below(20);
        let notes = sentence(&mut r, words);
        let rec = json!({
            "id": format!("CUST-{:06}", i),
            "name": format!("{f} {l}"),
            "email": email,
            "phone": ph,
            "created": format!("2025-{:02}-{:02}T{:02}:{:02}:00Z", 1 + r.below(12), 1 + r.below(28), r.below(24), r.below(60)),
            "balance": (r.below(100_000) as f64) / 100.0,
            "tags": [r.pick(WORDS), r.pick(WORDS)],
            "notes": notes,
        });
        let line = format!(
            "#{i} {f} {l} <{email}> tel {ph} — {notes}\n",
            email = rec["email"].as_str().unwrap_or_default()
        );
        size += line.len() + rec.to_string().len();
        text.push_str(&line);
        records.push(rec);
        i += 1;
    }
    json!({"jsonrpc": "2.0", "id": 42, "result": {
        "content": [{"type": "text", "text": text}],
        "structuredContent": {"records": records},
        "isError": false
    }})
}

fn rewriter() -> Rewriter {
    Rewriter::new(
        Arc::new(Detector::builtin()),
        Arc::new(MemoryVault::builder().build()),
    )
}

/// The inputs: the committed corpus files (benches/data, from gen_bench.py) when present, and
/// the result generated above.
fn inputs() -> Vec<(&'static str, Value)> {
    let mut v = Vec::new();
    for name in ["sparse", "dense"] {
        let path = format!("{}/benches/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
        match std::fs::read_to_string(&path) {
            Ok(text) => v.push((name, serde_json::from_str(&text).expect("bench data is JSON"))),
            Err(e) => eprintln!("skipping {path}: {e}"),
        }
    }
    v.push(("generated", tool_result(1 << 20)));
    v
}

fn bench(c: &mut Criterion) {
    let scope = ScopeId::new("bench", "run");
    for (name, msg) in inputs() {
        let bytes = msg.to_string().len() as u64;
        let mut g = c.benchmark_group(format!("tokenize_restore_1mb/{name}"));
        g.throughput(Throughput::Bytes(bytes));
        g.sample_size(20);
        g.bench_function("first_sight", |b| {
            b.iter_batched_ref(
                || (msg.clone(), rewriter()),
                |(m, rw)| {
                    rw.tokenize_message(m, &scope, "crm").expect("tokenize");
                    let plan = rw.plan_restore_message(m, &scope).expect("plan");
                    rw.apply_restore_message(m, &plan);
                },
                BatchSize::LargeInput,
            )
        });
        let rw = rewriter();
        {
            // Check once that the round trip is exact, and warm the vault.
            let mut m = msg.clone();
            rw.tokenize_message(&mut m, &scope, "crm").expect("tokenize");
            let plan = rw.plan_restore_message(&m, &scope).expect("plan");
            eprintln!("{name}: {bytes} bytes, {} distinct placeholders", plan.uses.len());
            rw.apply_restore_message(&mut m, &plan);
            assert_eq!(m, msg);
        }
        g.bench_function("steady", |b| {
            b.iter_batched_ref(
                || msg.clone(),
                |m| {
                    rw.tokenize_message(m, &scope, "crm").expect("tokenize");
                    let plan = rw.plan_restore_message(m, &scope).expect("plan");
                    rw.apply_restore_message(m, &plan);
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("tokenize_only", |b| {
            b.iter_batched_ref(
                || msg.clone(),
                |m| rw.tokenize_message(m, &scope, "crm").expect("tokenize"),
                BatchSize::LargeInput,
            )
        });
        let mut tokenized = msg.clone();
        rw.tokenize_message(&mut tokenized, &scope, "crm")
            .expect("tokenize");
        g.bench_function("plan_restore_only", |b| {
            b.iter(|| rw.plan_restore_message(&tokenized, &scope).expect("plan"))
        });
        g.finish();
    }
}

#[path = "support/report.rs"]
mod report;
use report::report_text;

/// One relayed `tools/call` as the gateway's PII layer handles it, in a tight loop: parse the
/// request and restore it (with the flow-policy hooks), parse the 4 KB response, tokenize it,
/// serialize it. The CPU part of the latency bench's added latency.
fn bench_one_call(c: &mut Criterion) {
    use mcp_pii_gateway::exchange::PolicyHooks;
    use mcp_pii_gateway::exchange::{ExchangeCtx, PiiCore, RequestInfo};
    use mcp_pii_gateway::json;
    let detector = Arc::new(Detector::builtin());
    let hooks = Arc::new(PolicyHooks::new(Default::default(), detector.clone()));
    let vault = Arc::new(MemoryVault::builder().build());
    let core = PiiCore::new(Rewriter::new(detector, vault)).with_hooks(hooks);
    let request = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"report","arguments":{"seed":3}}}"#;
    let responses: Vec<Vec<u8>> = (0..16)
        .map(|i| {
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7,
                "result": {"content": [{"type": "text", "text": report_text(i)}], "isError": false}}))
            .expect("a Value serializes")
        })
        .collect();
    let mut g = c.benchmark_group("one_tools_call_4kb");
    let mut k = 0;
    // What the layer does: the gateway's lenient, lossless parser and writer.
    g.bench_function("restore_request_tokenize_response", |b| {
        b.iter(|| {
            let mut req = json::parse(request).expect("valid JSON");
            let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "run-1"), "bench")
                .with_requests(RequestInfo::collect(&req.value));
            core.to_server(&mut req.value, &ctx).expect("nothing to restore");
            k = (k + 1) % responses.len();
            let mut res = json::parse(&responses[k]).expect("valid JSON");
            core.to_model(&mut res.value, &ctx);
            res.to_vec()
        })
    });
    // The same work over serde_json (what the layer did before): the parser's cost, side by side.
    g.bench_function("serde_json_baseline", |b| {
        b.iter(|| {
            let mut req: Value = serde_json::from_slice(request).expect("valid JSON");
            let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "run-1"), "bench")
                .with_requests(RequestInfo::collect(&req));
            core.to_server(&mut req, &ctx).expect("nothing to restore");
            k = (k + 1) % responses.len();
            let mut res: Value = serde_json::from_slice(&responses[k]).expect("valid JSON");
            core.to_model(&mut res, &ctx);
            serde_json::to_vec(&res).expect("a Value serializes")
        })
    });
    g.finish();

    // Parsing and writing alone, on the same 4 KB responses.
    let mut g = c.benchmark_group("json_4kb");
    g.bench_function("parse/gateway", |b| {
        b.iter(|| json::parse(&responses[3]).expect("valid JSON"))
    });
    g.bench_function("parse/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&responses[3]).expect("valid JSON"))
    });
    let parsed = json::parse(&responses[3]).expect("valid JSON");
    g.bench_function("write/gateway_source_tokens", |b| b.iter(|| parsed.to_vec()));
    g.bench_function("write/serde_json", |b| {
        b.iter(|| serde_json::to_vec(&parsed.value).expect("a Value serializes"))
    });
    g.finish();
}

criterion_group!(benches, bench, bench_one_call);
criterion_main!(benches);
