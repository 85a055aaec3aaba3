//! A simulated gateway run for the audit tests: generated people (example.org addresses and
//! fictional 555-01xx numbers, never real data), two clients, servers that return PII, requests
//! that send placeholders elsewhere, every decision and exchange audited to a file.
//!
//! It drives the same library calls the layer makes: vault tokenize/resolve, policy evaluate,
//! auditor policy/decision/exchange.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_pii_gateway::audit::{Auditor, FileSink, FileSinkOptions, Fingerprinter, FsyncPolicy, Record};
use mcp_pii_gateway::detect::Kind;
use mcp_pii_gateway::policy::{FlowItem, FlowRequest, Policy};
use mcp_pii_gateway::vault::{MemoryVault, Placeholder, ScopeId, Vault};

/// The fingerprint key of the run (hex, 32 bytes).
pub const KEY_HEX: &str = "8f3c1a5e7d9b2f4a6c8e0d1b3f5a7c9e2d4f6b8a0c1e3d5f7a9b2c4e6d8f0a1b";

/// The policy in force during the run.
pub const POLICY: &str = r#"
cross_server = "deny"
untracked_pii = "audit"

[[flows]]
id = "crm-to-mail"
from = "crm"
to = "mail"
kinds = ["EMAIL"]

[[flows]]
id = "hr-to-mail-send"
from = "hr"
to = "mail/send_email"
"#;

/// A stricter policy: no crm → mail flow, untracked PII denied.
pub const STRICT: &str = r#"
cross_server = "deny"
untracked_pii = "deny"

[[flows]]
id = "hr-to-mail-send"
from = "hr"
to = "mail/send_email"
"#;

/// A generated person.
#[derive(Debug, Clone)]
pub struct Person {
    pub email: String,
    pub phone: String,
}

const FIRST: &[&str] = &[
    "ana", "bruno", "chen", "dalia", "emeka", "farah", "goran", "hana", "ivo", "jun",
];
const LAST: &[&str] = &[
    "lima", "okafor", "novak", "sato", "berg", "haddad", "kowal", "reyes",
];

/// `n` distinct people; emails at example.org/.net/.com, phones in the fictional 555-01xx range.
pub fn people(n: usize) -> Vec<Person> {
    let domains = ["example.org", "example.net", "example.com"];
    (0..n)
        .map(|i| Person {
            email: format!(
                "{}.{}{}@{}",
                FIRST[i % FIRST.len()],
                LAST[(i * 7) % LAST.len()],
                i,
                domains[i % 3]
            ),
            phone: format!("+1 202-555-01{:02}", i % 100),
        })
        .collect()
}

/// A tiny deterministic generator (no rand dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// One audited decision, as the test knows it (independently of the log).
#[derive(Debug, Clone)]
pub struct DecisionEvent {
    pub seq: u64,
    pub target: String,
    pub tool: Option<String>,
    /// (kind, origins, old rule) per placeholder.
    pub items: Vec<(String, Vec<String>, String)>,
    pub untracked: bool,
    pub allowed: bool,
}

/// The outcome of a run.
pub struct Run {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub people: Vec<Person>,
    pub policy: Policy,
    pub decisions: Vec<DecisionEvent>,
    /// For each value: the sequence numbers of the records that involve it.
    pub involving: BTreeMap<String, BTreeSet<u64>>,
    pub records: u64,
}

/// Runs the simulation into `dir/audit/gateway.jsonl` (rotating every `rotate_bytes`).
pub fn run(dir: &Path, steps: usize, rotate_bytes: u64) -> Run {
    let _ = std::fs::remove_dir_all(dir);
    let path = dir.join("audit").join("gateway.jsonl");
    let sink = Arc::new(
        FileSink::open(
            &path,
            FileSinkOptions {
                fsync: FsyncPolicy::Interval,
                fsync_interval: Duration::from_millis(100),
                rotate_bytes,
            },
        )
        .unwrap(),
    );
    let fp = Fingerprinter::from_key_text(KEY_HEX).unwrap();
    let auditor = Auditor::new(sink.clone(), fp);
    let policy = POLICY.parse::<Policy>().unwrap();
    let vault = MemoryVault::builder().build();
    let people = people(12);
    let scopes = [ScopeId::new("agent-a", "run-1"), ScopeId::new("agent-b", "run-2")];
    let mut known: Vec<Vec<(Placeholder, String)>> = vec![Vec::new(), Vec::new()];
    let mut involving: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut decisions = Vec::new();
    let mut rng = Lcg(42);
    let mut records = 0u64;
    auditor.policy(&policy).unwrap();
    records += 1;
    let targets: &[(&str, Option<&str>)] = &[
        ("mail", Some("send_email")),
        ("mail", Some("list_threads")),
        ("search", Some("query")),
        ("crm", Some("update")),
        ("hr", Some("update")),
    ];
    for step in 0..steps {
        let s = rng.next(2);
        let scope = &scopes[s];
        // 1. A server returns two people's details: they are tokenized.
        let source = ["crm", "hr"][rng.next(2)];
        let ctx = auditor.context(scope.client(), scope, source, "tools/call", Some("lookup"));
        let mut minted = Vec::new();
        let mut minted_values = Vec::new();
        for _ in 0..2 {
            let p = &people[rng.next(people.len())];
            for (kind, value) in [(Kind::email(), &p.email), (Kind::phone(), &p.phone)] {
                let t = vault.tokenize(scope, &kind, value, source).unwrap();
                if t.minted {
                    let entry = vault.resolve(scope, &t.placeholder).unwrap().unwrap();
                    minted.push(auditor.entry(&t.placeholder, &entry));
                    minted_values.push(value.clone());
                    known[s].push((t.placeholder.clone(), value.clone()));
                }
            }
        }
        let rec = auditor
            .exchange(Record::exchange(
                &ctx,
                minted,
                Vec::new(),
                "ok",
                Duration::from_micros(800 + step as u64),
                Some(policy.hash()),
            ))
            .unwrap();
        records += 1;
        for v in minted_values {
            involving.entry(v).or_default().insert(rec.seq);
        }

        // 2. The model sends some placeholders (and maybe a typed address) to a target.
        if known[s].is_empty() {
            continue;
        }
        let (target, tool) = targets[rng.next(targets.len())];
        let mut chosen: Vec<(Placeholder, String)> = Vec::new();
        for _ in 0..1 + rng.next(2) {
            let c = known[s][rng.next(known[s].len())].clone();
            if !chosen.iter().any(|(p, _)| *p == c.0) {
                chosen.push(c);
            }
        }
        let mut items = Vec::new();
        let mut values = Vec::new();
        for (ph, _value) in &chosen {
            let entry = vault.resolve(scope, ph).unwrap().unwrap();
            items.push(FlowItem::new(
                &ph.to_string(),
                ph.kind.clone(),
                entry.origins.iter().map(|o| o.as_ref()),
            ));
            values.push(entry.value.clone());
        }
        let untracked: Vec<Kind> = if step % 5 == 4 {
            vec![Kind::email()]
        } else {
            Vec::new()
        };
        let req = FlowRequest::new(target, tool, &items).with_untracked(&untracked);
        let d = policy.evaluate(&req);
        let ctx = auditor.context(scope.client(), scope, target, "tools/call", tool);
        let restored: Vec<_> = items
            .iter()
            .zip(&values)
            .map(|(i, v)| auditor.placeholder(i, Some(v)))
            .collect();
        let rec = auditor
            .decision(&policy, &ctx, &req, &d, restored.clone())
            .unwrap();
        records += 1;
        for (_, v) in &chosen {
            involving.entry(v.clone()).or_default().insert(rec.seq);
        }
        decisions.push(DecisionEvent {
            seq: rec.seq,
            target: target.to_owned(),
            tool: tool.map(str::to_owned),
            items: d
                .items
                .iter()
                .zip(&items)
                .map(|(di, it)| {
                    (
                        it.kind.as_str().to_owned(),
                        it.origins.iter().map(|o| o.to_string()).collect(),
                        di.rule_id.clone(),
                    )
                })
                .collect(),
            untracked: !untracked.is_empty(),
            allowed: d.allowed,
        });
        let (outcome, restored) = if d.allowed {
            ("ok", restored)
        } else {
            ("denied", Vec::new())
        };
        let had_restored = !restored.is_empty();
        let rec = auditor
            .exchange(Record::exchange(
                &ctx,
                Vec::new(),
                restored,
                outcome,
                Duration::from_millis(3),
                Some(policy.hash()),
            ))
            .unwrap();
        records += 1;
        if had_restored {
            for (_, v) in &chosen {
                involving.entry(v.clone()).or_default().insert(rec.seq);
            }
        }
    }
    let files = sink.files().unwrap();
    // The auditor writes the policy record again in each new file, so count from the chain.
    assert!(sink.head().unwrap().unwrap().seq >= records);
    let records = sink.head().unwrap().unwrap().seq;
    drop(auditor);
    Run {
        dir: dir.to_path_buf(),
        files,
        people,
        policy,
        decisions,
        involving,
        records,
    }
}
