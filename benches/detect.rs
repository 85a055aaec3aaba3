//! Detection throughput on generated, realistic tool-result text.
//!
//! - `sparse_json`: a JSON tool result (records with ids, timestamps, prices, UUIDs, URLs,
//!   versions, prose) with one email or phone number per ~2 KB.
//! - `dense_text`: log/ticket lines with one email or phone number per ~100 bytes.
//! - `no_pii_json`: the same JSON shape without any PII (the common case).
//!
//! The input is generated deterministically here (a fixed-seed LCG), from fictional values only
//! (example.com/.org, libphonenumber example numbers, 555-01xx).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-shared cargo bench --bench detect -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mcp_pii_gateway::detect::Detector;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "customer",
    "reported",
    "that",
    "shipment",
    "arrived",
    "late",
    "and",
    "requested",
    "a",
    "refund",
    "status",
    "pending",
    "review",
    "escalated",
    "to",
    "support",
    "team",
    "during",
    "sync",
    "updated",
    "record",
    "with",
    "new",
    "billing",
    "address",
    "in",
    "region",
    "warehouse",
    "batch",
];

const EMAILS: &[&str] = &[
    "ana.lima@example.org",
    "j.smith+billing@mail.example.com",
    "zhang.wei@example.cn",
    "müller@example.de",
    "ops-team@sub.example.net",
];

const PHONES: &[&str] = &[
    "+44 20 7946 0958",
    "(201) 555-0123",
    "+1 201-555-0123",
    "06 12 34 56 78",
    "+49 1512 3456789",
    "090-1234-5678",
    "+91 81234 56789",
    "020 7946 0958",
];

fn prose(r: &mut Lcg, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(r.pick(WORDS));
    }
    s
}

fn pii(r: &mut Lcg) -> &'static str {
    if r.below(2) == 0 {
        r.pick(EMAILS)
    } else {
        r.pick(PHONES)
    }
}

/// One JSON record of about 400 bytes, without PII.
fn record(r: &mut Lcg, i: usize) -> String {
    let nwords = 8 + r.below(10);
    format!(
        r#"{{"id":{},"uuid":"{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}","created_at":"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z","epoch":{},"price":"${}.{:02}","qty":{},"version":"{}.{}.{}","ip":"10.{}.{}.{}","url":"https://api.example.com/v2/orders/{}","note":"{}"}}"#,
        100000 + i,
        r.next() as u32,
        r.below(65536),
        r.below(4096),
        r.below(4096),
        r.next() * 4096 + r.next() % 4096,
        1 + r.below(12),
        1 + r.below(28),
        r.below(24),
        r.below(60),
        r.below(60),
        1_700_000_000 + r.below(10_000_000),
        r.below(5000),
        r.below(100),
        r.below(50),
        r.below(5),
        r.below(20),
        r.below(200),
        r.below(256),
        r.below(256),
        r.below(256),
        20240000000u64 + r.below(1_000_000) as u64,
        prose(r, nwords),
    )
}

/// A JSON array text of about `bytes`, with one PII value every `every` bytes (0 = none).
fn sparse_json(bytes: usize, every: usize) -> String {
    let mut r = Lcg(42);
    let mut s = String::from("[");
    let mut next_pii = every;
    let mut i = 0;
    while s.len() < bytes {
        if i > 0 {
            s.push(',');
        }
        let mut rec = record(&mut r, i);
        if every > 0 && s.len() >= next_pii {
            rec.truncate(rec.len() - 2);
            rec.push_str(&format!(" contact {}\"}}", pii(&mut r)));
            next_pii += every;
        }
        s.push_str(&rec);
        i += 1;
    }
    s.push(']');
    s
}

/// Log and ticket lines with one PII value per ~100 bytes.
fn dense_text(bytes: usize) -> String {
    let mut r = Lcg(7);
    let mut s = String::new();
    let mut i = 0;
    while s.len() < bytes {
        let line = match i % 3 {
            0 => format!(
                "2024-03-{:02}T10:{:02}:00.000Z INFO [auth] user={} action=login ok ip=10.0.{}.{}\n",
                1 + r.below(28),
                r.below(60),
                pii(&mut r),
                r.below(256),
                r.below(256)
            ),
            1 => format!(
                "ticket #{}: {} {}\n",
                4000 + r.below(1000),
                prose(&mut r, 10),
                pii(&mut r)
            ),
            _ => format!(
                "order {} total ${}.{:02} qty {} status shipped, questions: {}\n",
                20240000 + i,
                r.below(900),
                r.below(100),
                r.below(20),
                pii(&mut r)
            ),
        };
        s.push_str(&line);
        i += 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    let d = Detector::builtin();
    let sparse = sparse_json(1 << 20, 2048);
    let dense = dense_text(1 << 20);
    let clean = sparse_json(1 << 20, 0);
    let n_sparse = d.find(&sparse).len();
    let n_dense = d.find(&dense).len();
    eprintln!(
        "inputs: sparse {} B with {n_sparse} spans (1 per {} B); dense {} B with {n_dense} spans (1 per {} B)",
        sparse.len(),
        sparse.len() / n_sparse.max(1),
        dense.len(),
        dense.len() / n_dense.max(1),
    );
    let mut g = c.benchmark_group("detect");
    let mut out = Vec::new();
    for (name, text) in [
        ("sparse_json", &sparse),
        ("dense_text", &dense),
        ("no_pii_json", &clean),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                d.find_into(black_box(text), &mut out);
                black_box(out.len())
            })
        });
    }
    // The same sparse document as the rewriter sees it: one call per decoded string value.
    let values: Vec<String> = match serde_json::from_str::<serde_json::Value>(&sparse) {
        Ok(serde_json::Value::Array(items)) => items
            .iter()
            .flat_map(|o| o.as_object().into_iter().flat_map(|m| m.values()))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => panic!("generated JSON parses"),
    };
    let total: usize = values.iter().map(String::len).sum();
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("sparse_json_per_value", |b| {
        b.iter(|| {
            let mut n = 0;
            for v in &values {
                // `find_into` applies the prefilter itself, as the rewriter relies on.
                d.find_into(black_box(v), &mut out);
                n += out.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
