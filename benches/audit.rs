//! Costs on the request path: policy evaluation, recording a decision, and verifying a log.
//!
//! `cargo bench --bench audit -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mcp_pii_gateway::audit::{
    verify, Auditor, FileSink, FileSinkOptions, Fingerprinter, FsyncPolicy, MemorySink,
};
use mcp_pii_gateway::detect::Kind;
use mcp_pii_gateway::policy::{FlowItem, FlowRequest, Policy};
use mcp_pii_gateway::vault::{ScopeId, Secret};

fn policy() -> Policy {
    let mut p = Policy::from_str("cross_server = \"deny\"").unwrap();
    for i in 0..10 {
        p = p
            .with_flow(
                &format!("f{i}"),
                &format!("src{i}"),
                &format!("dst{i}"),
                Some(&["EMAIL"]),
            )
            .unwrap();
    }
    p.with_flow("crm-to-mail", "crm", "mail/send_email", None)
        .unwrap()
}

fn items() -> Vec<FlowItem> {
    vec![
        FlowItem::new("[EMAIL_1]", Kind::email(), ["crm"]),
        FlowItem::new("[PHONE_1]", Kind::phone(), ["crm", "hr"]),
        FlowItem::new("[EMAIL_2]", Kind::email(), ["mail"]),
    ]
}

fn bench(c: &mut Criterion) {
    let p = policy();
    let items = items();
    let req = FlowRequest::new("mail", Some("send_email"), &items);
    c.bench_function("policy_evaluate_3_placeholders_11_flows", |b| {
        b.iter(|| p.evaluate(&req))
    });

    let values = [
        Secret::new("ana.lima@example.org"),
        Secret::new("+1 202-555-0100"),
        Secret::new("bruno@example.net"),
    ];
    let vals: Vec<Option<&Secret>> = values.iter().map(Some).collect();
    let scope = ScopeId::new("anonymous", "run-1");
    let fp = Fingerprinter::new(b"bench-key-0123456789abcdef").unwrap();

    let mem = Auditor::new(Arc::new(MemorySink::new()), fp.clone());
    let ctx = mem.context("anonymous", &scope, "mail", "tools/call", Some("send_email"));
    c.bench_function("enforce_memory_sink", |b| {
        b.iter(|| mem.enforce(&p, &ctx, &req, &vals).unwrap())
    });

    let dir = std::env::temp_dir().join(format!("audit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (name, fsync) in [
        ("never", FsyncPolicy::Never),
        ("interval", FsyncPolicy::Interval),
        ("always", FsyncPolicy::Always),
    ] {
        let sink = FileSink::open(
            dir.join(format!("{name}.jsonl")),
            FileSinkOptions {
                fsync,
                fsync_interval: Duration::from_secs(1),
                rotate_bytes: 64 * 1024 * 1024,
            },
        )
        .unwrap();
        let a = Auditor::new(Arc::new(sink), fp.clone());
        c.bench_function(&format!("enforce_file_sink_fsync_{name}"), |b| {
            b.iter(|| a.enforce(&p, &ctx, &req, &vals).unwrap())
        });
    }

    let path = dir.join("verify.jsonl");
    {
        let a = Auditor::new(
            Arc::new(
                FileSink::open(
                    &path,
                    FileSinkOptions {
                        fsync: FsyncPolicy::Never,
                        ..Default::default()
                    },
                )
                .unwrap(),
            ),
            fp,
        );
        for _ in 0..10_000 {
            a.enforce(&p, &ctx, &req, &vals).unwrap();
        }
    }
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(10_001));
    g.sample_size(10);
    g.bench_function("verify_10k_records", |b| {
        b.iter(|| assert!(verify(std::slice::from_ref(&path)).unwrap().is_intact()))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
