//! The in-memory vault under concurrency: many threads and tokio tasks racing on the same values
//! in one scope must agree on one placeholder per value, numbered 1..=n without gaps or
//! duplicates; scopes are independent; sweeps racing with use never make a placeholder resolve
//! to another value.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mcp_pii_gateway::detect::{Detector, Kind};
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, Placeholder, ScopeId, Vault};
use serde_json::{json, Value};

/// Generated test values (example.org domain, no real data).
fn values(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@example.org")).collect()
}

/// A deterministic permutation of 0..n per seed (xorshift-driven Fisher-Yates).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let j = (s % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Checks one scope's outcome: one placeholder per value, numbers exactly 1..=n, exactly one
/// `minted` per value, and every placeholder resolves to its value.
fn check(vault: &MemoryVault, scope: &ScopeId, vals: &[String], got: Vec<Vec<(usize, Placeholder, bool)>>) {
    let mut by_value: HashMap<usize, Placeholder> = HashMap::new();
    let mut minted: HashMap<usize, usize> = HashMap::new();
    for run in got {
        for (i, p, m) in run {
            let prev = by_value.entry(i).or_insert_with(|| p.clone());
            assert_eq!(*prev, p, "value {i} got two placeholders");
            *minted.entry(i).or_default() += usize::from(m);
        }
    }
    assert_eq!(by_value.len(), vals.len());
    let numbers: HashSet<u64> = by_value.values().map(|p| p.n).collect();
    let want: HashSet<u64> = (1..=vals.len() as u64).collect();
    assert_eq!(numbers, want, "numbers must be 1..=n with no gaps or duplicates");
    assert!(minted.values().all(|&m| m == 1), "each value minted exactly once");
    for (i, p) in &by_value {
        let e = vault
            .resolve(scope, p)
            .unwrap()
            .expect("issued placeholder resolves");
        assert_eq!(e.value.expose(), vals[*i]);
    }
}

#[test]
fn threads_race_on_the_same_values_in_one_scope() {
    const THREADS: usize = 8;
    let vault = Arc::new(MemoryVault::builder().build());
    let scope = ScopeId::new("client", "run");
    let vals = Arc::new(values(2_000));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (vault, scope, vals, barrier) = (vault.clone(), scope.clone(), vals.clone(), barrier.clone());
            std::thread::spawn(move || {
                let order = permutation(vals.len(), t as u64 + 1);
                let origin = format!("server-{t}");
                barrier.wait();
                order
                    .into_iter()
                    .map(|i| {
                        let r = vault.tokenize(&scope, &Kind::email(), &vals[i], &origin).unwrap();
                        (i, r.placeholder, r.minted)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    check(&vault, &scope, &vals, got);
    // Every thread's origin was recorded on every entry, once each.
    let e = vault
        .resolve(
            &scope,
            &Placeholder {
                kind: Kind::email(),
                n: 1,
            },
        )
        .unwrap()
        .unwrap();
    let origins: HashSet<&str> = e.origins.iter().map(|o| &**o).collect();
    assert_eq!(origins.len(), THREADS);
    assert_eq!(e.origins.len(), THREADS);
}

#[test]
fn tokio_tasks_race_in_many_scopes() {
    const TASKS: usize = 64;
    const SCOPES: usize = 4;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let vault = Arc::new(MemoryVault::builder().build());
    let vals = Arc::new(values(300));
    let scopes: Vec<ScopeId> = (0..SCOPES)
        .map(|s| ScopeId::new("client", &format!("s{s}")))
        .collect();
    let results = rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let (vault, vals, scope) = (vault.clone(), vals.clone(), scopes[t % SCOPES].clone());
            handles.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for (k, i) in permutation(vals.len(), t as u64 + 100).into_iter().enumerate() {
                    // Alternate kinds: numbering is per kind.
                    let kind = if i % 3 == 0 { Kind::phone() } else { Kind::email() };
                    let r = vault.tokenize(&scope, &kind, &vals[i], "srv").unwrap();
                    out.push((i, r.placeholder, r.minted));
                    if k % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                (t % SCOPES, out)
            }));
        }
        let mut per_scope: Vec<Vec<Vec<(usize, Placeholder, bool)>>> = vec![Vec::new(); SCOPES];
        for h in handles {
            let (s, out) = h.await.unwrap();
            per_scope[s].push(out);
        }
        per_scope
    });
    for (s, runs) in results.into_iter().enumerate() {
        for kind in [Kind::email(), Kind::phone()] {
            let idx: Vec<usize> = (0..vals.len())
                .filter(|i| (i % 3 == 0) == (kind == Kind::phone()))
                .collect();
            let sub_vals: Vec<String> = idx.iter().map(|&i| vals[i].clone()).collect();
            let pos: HashMap<usize, usize> = idx.iter().enumerate().map(|(p, &i)| (i, p)).collect();
            let sub_runs = runs
                .iter()
                .map(|run| {
                    run.iter()
                        .filter(|(_, p, _)| p.kind == kind)
                        .map(|(i, p, m)| (pos[i], p.clone(), *m))
                        .collect()
                })
                .collect();
            check(&vault, &scopes[s], &sub_vals, sub_runs);
        }
    }
}

#[test]
fn sweeps_racing_with_use_never_resolve_a_wrong_value() {
    const THREADS: usize = 4;
    let vault = Arc::new(MemoryVault::builder().idle_ttl(Duration::from_millis(2)).build());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sweeper = {
        let (vault, stop) = (vault.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut dropped = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                dropped += vault.sweep();
                std::thread::yield_now();
            }
            dropped
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let vault = vault.clone();
            std::thread::spawn(move || {
                let vals = values(50);
                let mut resolved = 0;
                for round in 0..200 {
                    let scope = ScopeId::new("client", &format!("s{}", round % 3));
                    for i in permutation(vals.len(), (t * 1000 + round) as u64) {
                        let p = vault
                            .tokenize(&scope, &Kind::email(), &vals[i], "srv")
                            .unwrap()
                            .placeholder;
                        if let Some(e) = vault.resolve(&scope, &p).unwrap() {
                            // Expired in between is fine; another value never is.
                            assert_eq!(e.value.expose(), vals[i]);
                            resolved += 1;
                        }
                    }
                    if round % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                resolved
            })
        })
        .collect();
    let resolved: usize = workers.into_iter().map(|h| h.join().unwrap()).sum();
    // Leave the scopes idle past the TTL so the sweeper surely drops them.
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let dropped = sweeper.join().unwrap();
    assert!(resolved > 0);
    assert!(dropped > 0, "idle scopes were swept");
    assert_eq!(vault.scope_count(), 0);
}

#[test]
fn long_ttl_sweeps_drop_nothing_under_load() {
    let vault = Arc::new(MemoryVault::builder().build());
    let scope = ScopeId::new("client", "run");
    let vals = Arc::new(values(500));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (vault, scope, vals) = (vault.clone(), scope.clone(), vals.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for i in permutation(vals.len(), t + 7) {
                    let r = vault.tokenize(&scope, &Kind::email(), &vals[i], "srv").unwrap();
                    out.push((i, r.placeholder, r.minted));
                    if i % 50 == 0 {
                        assert_eq!(vault.sweep(), 0);
                    }
                }
                out
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    check(&vault, &scope, &vals, got);
}

#[test]
fn cap_holds_under_concurrency() {
    const CAP: usize = 100;
    let vault = Arc::new(MemoryVault::builder().max_entries_per_scope(CAP).build());
    let scope = ScopeId::new("client", "run");
    let vals = Arc::new(values(300));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (vault, scope, vals) = (vault.clone(), scope.clone(), vals.clone());
            std::thread::spawn(move || {
                let mut ok = HashSet::new();
                for i in permutation(vals.len(), t + 3) {
                    match vault.tokenize(&scope, &Kind::email(), &vals[i], "srv") {
                        Ok(r) => {
                            ok.insert(r.placeholder.n);
                        }
                        Err(e) => assert!(e.is_scope_full()),
                    }
                }
                ok
            })
        })
        .collect();
    let all: HashSet<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(all, (1..=CAP as u64).collect::<HashSet<_>>());
}

#[test]
fn rewriters_racing_in_one_scope_agree() {
    // Threads tokenize the same records in different orders through one shared vault: every
    // thread's output must be identical (one placeholder per value, whoever minted it), and
    // every output restores exactly.
    const THREADS: usize = 6;
    let rw = Rewriter::new(
        Arc::new(Detector::builtin()),
        Arc::new(MemoryVault::builder().build()),
    );
    let scope = ScopeId::new("client", "run");
    let records: Arc<Vec<Value>> = Arc::new(
        (0..400)
            .map(|i| json!({"to": format!("user{}@example.org", i % 150), "cc": [format!("user{}@example.net", i % 70)],
                           "note": format!("see [EMAIL_{}]", i % 9 + 1)}))
            .collect(),
    );
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (rw, scope, records, barrier) = (rw.clone(), scope.clone(), records.clone(), barrier.clone());
            std::thread::spawn(move || {
                let order = permutation(records.len(), t as u64 + 11);
                barrier.wait();
                let mut out = vec![Value::Null; records.len()];
                for i in order {
                    let mut v = records[i].clone();
                    rw.tokenize_message(&mut v, &scope, &format!("server-{t}"))
                        .unwrap();
                    out[i] = v;
                }
                out
            })
        })
        .collect();
    let outs: Vec<Vec<Value>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for o in &outs[1..] {
        assert_eq!(o, &outs[0]);
    }
    for (i, v) in outs[0].iter().enumerate() {
        let mut r = v.clone();
        let plan = rw.plan_restore_message(&r, &scope).unwrap();
        rw.apply_restore_message(&mut r, &plan);
        assert_eq!(r, records[i]);
    }
}
