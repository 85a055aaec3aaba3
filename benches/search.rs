//! `search_tools` on `/mcp`: building the BM25 index over a catalog of 1,000 generated tools
//! (what a session pays once per catalog) and answering one query against it.
//!
//! Run: `cargo bench --bench search`.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_pii_gateway::proxy::aggregate::search::{Index, ToolText};

const VERBS: [&str; 12] = [
    "get", "list", "create", "update", "delete", "send", "search", "export", "import", "archive", "schedule",
    "approve",
];
const NOUNS: [&str; 20] = [
    "customer", "invoice", "email", "ticket", "order", "recipe", "report", "contract", "meeting", "document",
    "payment", "shipment", "employee", "project", "comment", "file", "calendar", "message", "product",
    "refund",
];

/// (name, description, params) of tool `i`: deterministic, 20 servers of 50 tools.
fn tool(i: usize) -> (String, String, Vec<String>) {
    let (v, n, m) = (VERBS[i % 12], NOUNS[(i / 12) % 20], NOUNS[(i * 7 + 3) % 20]);
    let name = format!("server{}__{v}_{n}", i % 20);
    let description = format!(
        "{v} a {n} record and its {m} details. Returns the {n} with its id, status and owner; \
         fails when the {n} does not exist or the caller may not {v} it."
    );
    (
        name,
        description,
        vec![format!("{n}_id"), format!("{m}_filter"), "limit".into()],
    )
}

fn bench(c: &mut Criterion) {
    let tools: Vec<_> = (0..1000).map(tool).collect();
    let texts = || {
        tools.iter().map(|(n, d, p)| ToolText {
            name: n,
            description: d,
            params: p.iter().map(String::as_str).collect(),
        })
    };
    c.bench_function("search_index_1000_tools", |b| {
        b.iter(|| black_box(Index::new(texts())))
    });
    let index = Index::new(texts());
    c.bench_function("search_query_1000_tools", |b| {
        b.iter(|| black_box(index.search(black_box("send an email to the customer"), 10)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
