//! The Redis vault against a real redis-server: replicas share placeholders and origins,
//! numbering is atomic, Redis holds no value, an outage fails closed and heals, a restart keeps
//! every placeholder.
#![allow(clippy::unwrap_used)]

mod redis_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_pii_gateway::detect::{Detector, Kind};
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{Placeholder, RedisVault, ScopeId, Secret, Vault, VaultKey};
use redis_support::RedisServer;

fn replica(redis: &RedisServer, key: &VaultKey) -> RedisVault {
    RedisVault::builder(&redis.url(), key.clone())
        .command_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn email(i: usize) -> String {
    format!("user{i}.vaulttest@example.org")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_placeholders_and_origins() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let key = VaultKey::random();
    let (a, b) = (replica(&redis, &key), replica(&redis, &key));
    let scope = ScopeId::new("anonymous", "run-1");
    let t1 = a.tokenize(&scope, &Kind::email(), &email(1), "crm").unwrap();
    assert_eq!(t1.placeholder.to_string(), "[EMAIL_1]");
    assert!(t1.minted);
    // The other replica knows it without having seen it, and adds its own origin.
    let t2 = b.tokenize(&scope, &Kind::email(), &email(1), "hr").unwrap();
    assert_eq!(t2.placeholder, t1.placeholder);
    assert!(!t2.minted);
    let e = b.tokenize(&scope, &Kind::email(), &email(2), "hr").unwrap();
    assert_eq!(e.placeholder.to_string(), "[EMAIL_2]");
    // Replica A restores [EMAIL_2] it never saw, and a restore sees both origins of [EMAIL_1].
    let rw = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(a.clone()));
    let msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "send", "arguments": {"to": "[EMAIL_1]", "cc": "[EMAIL_2]"}}});
    let plan = rw.plan_restore_message(&msg, &scope).unwrap();
    assert_eq!(plan.uses.len(), 2);
    let origins: BTreeSet<&str> = plan.uses[0].origins.iter().map(|o| &**o).collect();
    assert_eq!(origins, BTreeSet::from(["crm", "hr"]));
    let mut restored = msg.clone();
    rw.apply_restore_message(&mut restored, &plan);
    assert_eq!(restored["params"]["arguments"]["to"], email(1));
    assert_eq!(restored["params"]["arguments"]["cc"], email(2));
    // Another scope is another numbering.
    let other = ScopeId::new("anonymous", "run-2");
    let t = a.tokenize(&other, &Kind::email(), &email(2), "crm").unwrap();
    assert_eq!(t.placeholder.to_string(), "[EMAIL_1]");
    assert!(a
        .resolve(&other, &Placeholder::parse("[EMAIL_2]").unwrap())
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_eight_tasks_mint_each_value_once() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let key = VaultKey::random();
    let replicas = [replica(&redis, &key), replica(&redis, &key)];
    let scope = ScopeId::new("anonymous", "race");
    let values: Arc<Vec<String>> = Arc::new((0..1000).map(email).collect());
    let mut tasks = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for t in 0..8usize {
            let vault = replica.clone();
            let values = values.clone();
            let scope = scope.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                // Each task walks the values from another starting point, in batches of 25,
                // as messages would bring them.
                let n = values.len();
                let order: Vec<usize> = (0..n).map(|i| (i * 7 + t * 131 + r * 17) % n).collect();
                let mut got = HashMap::new();
                for chunk in order.chunks(25) {
                    let items: Vec<(Kind, Secret)> = chunk
                        .iter()
                        .map(|&i| (Kind::email(), Secret::new(&values[i])))
                        .collect();
                    let batch = vault.batched().unwrap();
                    let out = batch.tokenize_batch(&scope, "crm", &items).unwrap();
                    for (&i, tok) in chunk.iter().zip(out) {
                        got.insert(i, tok.placeholder.n);
                    }
                }
                got
            }));
        }
    }
    let mut all: Vec<HashMap<usize, u64>> = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let first = &all[0];
    for other in &all[1..] {
        assert_eq!(
            other, first,
            "every task sees the same placeholder for each value"
        );
    }
    let numbers: BTreeSet<u64> = first.values().copied().collect();
    assert_eq!(numbers.len(), 1000, "no two values share a number");
    assert_eq!(
        numbers,
        (1..=1000).collect::<BTreeSet<u64>>(),
        "numbered 1..1000, no gap"
    );
    // Every value resolves on a replica that has not cached it.
    let fresh = replica(&redis, &key);
    for (i, n) in first.iter().take(50) {
        let ph = Placeholder {
            kind: Kind::email(),
            n: *n,
        };
        assert_eq!(
            fresh.resolve(&scope, &ph).unwrap().unwrap().value.expose(),
            values[*i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_no_value_and_no_scope() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let vault = replica(&redis, &VaultKey::random());
    let scope = ScopeId::new("client-visible-name", "agent-run-7f3e");
    let phone = "+44 20 7946 0958";
    for i in 0..20 {
        vault.tokenize(&scope, &Kind::email(), &email(i), "crm").unwrap();
    }
    vault.tokenize(&scope, &Kind::phone(), phone, "crm").unwrap();
    let dump = redis.dump_text();
    let rdb = redis.rdb_bytes();
    let rdb_text = String::from_utf8_lossy(&rdb);
    assert!(dump.contains("mcp-pii:{"), "the dump is readable: {dump:.200}");
    for needle in [
        email(3).as_str(),
        "vaulttest",
        "example.org",
        phone,
        // Longer than a fragment of a random key could be by chance (a 4-digit needle
        // turns up in a hex digest about once in twenty runs).
        "+442079460958",
        "2079460958",
        "7946 0958",
        "agent-run-7f3e",
        "client-visible-name",
    ] {
        assert!(!dump.contains(needle), "Redis shows {needle:?}");
        assert!(!rdb_text.contains(needle), "the RDB file holds {needle:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_closed_and_heals_without_restart() {
    if !redis_support::available() {
        return;
    }
    let mut redis = RedisServer::start();
    let key = VaultKey::random();
    let vault = replica(&redis, &key);
    let scope = ScopeId::new("anonymous", "outage");
    let known = vault.tokenize(&scope, &Kind::email(), &email(1), "crm").unwrap();
    assert!(vault.healthy());
    redis.stop();
    // A value this replica knows still tokenizes from its cache; a new one cannot be minted.
    assert_eq!(
        vault
            .tokenize(&scope, &Kind::email(), &email(1), "crm")
            .unwrap()
            .placeholder,
        known.placeholder
    );
    let started = Instant::now();
    let err = vault
        .tokenize(&scope, &Kind::email(), &email(2), "crm")
        .unwrap_err();
    assert!(err.is_vault_unavailable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the timeouts: {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        !text.contains("vaulttest") && text.contains("127.0.0.1"),
        "{text}"
    );
    // The rewriter withholds (errors) rather than passing the value on.
    let rw = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(vault.clone()));
    let mut v = serde_json::json!({"text": format!("write to {}", email(3))});
    assert!(rw.tokenize_value(&mut v, &scope, "crm").is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while vault.healthy() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!vault.healthy(), "health follows the outage");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut healed = None;
    while Instant::now() < deadline {
        match vault.tokenize(&scope, &Kind::email(), &email(2), "crm") {
            Ok(t) => {
                healed = Some(t);
                break;
            }
            Err(e) => assert!(e.is_vault_unavailable(), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healed.is_some(), "the vault reconnects by itself");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !vault.healthy() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(vault.healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_keeps_placeholders_and_origins() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let key = VaultKey::random();
    let scope = ScopeId::new("anonymous", "deploy");
    let before = {
        let v = replica(&redis, &key);
        let a = v.tokenize(&scope, &Kind::email(), &email(1), "crm").unwrap();
        v.tokenize(&scope, &Kind::email(), &email(1), "hr").unwrap();
        a.placeholder
    };
    let after = replica(&redis, &key);
    let entry = after.resolve(&scope, &before).unwrap().expect("still issued");
    assert_eq!(entry.value.expose(), email(1));
    assert_eq!(entry.origins.len(), 2);
    // New values continue the numbering.
    let next = after.tokenize(&scope, &Kind::email(), &email(2), "crm").unwrap();
    assert_eq!(next.placeholder.n, 2);
    // Another key reads nothing: a wrong key is an error, never a wrong value.
    let wrong = replica(&redis, &VaultKey::random());
    assert!(
        wrong.resolve(&scope, &before).unwrap().is_none(),
        "another key sees another scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_never_reissues_a_number_and_the_cap_holds() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let key = VaultKey::random();
    let short = || {
        RedisVault::builder(&redis.url(), key.clone())
            .idle_ttl(Duration::from_millis(300))
            .max_entries_per_scope(10)
            .build()
            .unwrap()
    };
    let scope = ScopeId::new("anonymous", "ttl");
    let first = short();
    first.tokenize(&scope, &Kind::email(), &email(1), "crm").unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = short();
    assert!(
        later
            .resolve(&scope, &Placeholder::parse("[EMAIL_1]").unwrap())
            .unwrap()
            .is_none(),
        "expired"
    );
    let t = later.tokenize(&scope, &Kind::email(), &email(2), "crm").unwrap();
    assert_eq!(
        t.placeholder.to_string(),
        "[EMAIL_2]",
        "the expired number is not reissued"
    );
    // The cap: 9 more fit (10 with [EMAIL_2]), the batch that would pass it is refused whole.
    let batch = later.batched().unwrap();
    let items: Vec<(Kind, Secret)> = (10..19)
        .map(|i| (Kind::email(), Secret::new(&email(i))))
        .collect();
    batch.tokenize_batch(&scope, "crm", &items).unwrap();
    let over: Vec<(Kind, Secret)> = (30..32)
        .map(|i| (Kind::email(), Secret::new(&email(i))))
        .collect();
    let err = batch.tokenize_batch(&scope, "crm", &over).unwrap_err();
    assert!(err.is_scope_full(), "{err}");
    assert!(
        batch
            .tokenize_batch(&scope, "crm", &[(Kind::email(), Secret::new(&email(10)))])
            .is_ok(),
        "a known value still tokenizes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_costs_at_most_one_round_trip() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let vault = replica(&redis, &VaultKey::random());
    let rw = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(vault.clone()));
    let scope = ScopeId::new("anonymous", "trips");
    // Round trips, counted by the commands the vault sends (not those its script runs).
    let calls = |redis: &RedisServer| -> u64 {
        let info = redis.cli(&["INFO", "commandstats"]).unwrap();
        info.lines()
            .filter(|l| {
                ["cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_hmget:"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| {
                let calls: u64 = l
                    .split("calls=")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                // A lookup is one pipeline of two HMGETs.
                if l.starts_with("cmdstat_hmget:") {
                    calls / 2
                } else {
                    calls
                }
            })
            .sum()
    };
    let text: String = (0..12)
        .map(|i| format!("{} and +1 415 555 01{i:02}; ", email(i)))
        .collect();
    let before = calls(&redis);
    let mut v = serde_json::json!({"content": [{"type": "text", "text": text}]});
    let report = rw.tokenize_value(&mut v, &scope, "crm").unwrap();
    assert_eq!(report.placeholders.len(), 24);
    // One EVALSHA (plus one EVAL when the script was not loaded yet).
    let first = calls(&redis) - before;
    assert!(
        (1..=2).contains(&first),
        "first sight of 24 values took {first} round trips"
    );
    assert!(!v.to_string().contains("vaulttest"));
    let before = calls(&redis);
    let mut again = serde_json::json!({"content": [{"type": "text", "text": text}]});
    rw.tokenize_value(&mut again, &scope, "crm").unwrap();
    assert_eq!(again, v, "same placeholders");
    let known = calls(&redis) - before;
    assert_eq!(known, 0, "known values took {known} round trips");
    // Restoring reads origins fresh: one round trip for any number of placeholders.
    let before = calls(&redis);
    let msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "send", "arguments": {"body": again["content"][0]["text"].clone()}}});
    let plan = rw.plan_restore_message(&msg, &scope).unwrap();
    assert_eq!(plan.uses.len(), 24);
    assert_eq!(calls(&redis) - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_redis_data_is_refused_never_a_wrong_value() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::start();
    let key = VaultKey::random();
    let (a, b) = (replica(&redis, &key), replica(&redis, &key));
    let scope = ScopeId::new("anonymous", "flushed");
    let first = a
        .tokenize(&scope, &Kind::email(), &email(1), "crm")
        .unwrap()
        .placeholder;
    assert_eq!(
        b.resolve(&scope, &first).unwrap().unwrap().value.expose(),
        email(1)
    );
    redis.cli(&["FLUSHALL"]).unwrap();
    // A mints another value: its numbering stays above what it issued.
    let second = a
        .tokenize(&scope, &Kind::email(), &email(2), "crm")
        .unwrap()
        .placeholder;
    assert_eq!(second.n, 2, "no number is reissued after the loss");
    // B still knows [EMAIL_1] as email(1); Redis now lacks it: restoring it is refused.
    let rw = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(b.clone()));
    let msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "send", "arguments": {"to": "[EMAIL_1]"}}});
    let err = rw.plan_restore_message(&msg, &scope).unwrap_err();
    assert!(err.is_unknown_placeholder(), "{err}");
    // Were [EMAIL_1] re-minted for another value by a replica that never knew it, B refuses it.
    let c = replica(&redis, &key);
    redis.cli(&["FLUSHALL"]).unwrap();
    let other = c
        .tokenize(&scope, &Kind::email(), &email(9), "crm")
        .unwrap()
        .placeholder;
    assert_eq!(other.n, 1);
    let err = rw.plan_restore_message(&msg, &scope).unwrap_err();
    assert!(
        err.is_vault_unavailable() && err.to_string().contains("no longer holds"),
        "{err}"
    );
    assert!(!err.to_string().contains("vaulttest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_runs_on_a_redis_cluster() {
    if !redis_support::available() {
        return;
    }
    let cluster = redis_support::RedisCluster::start();
    let key = VaultKey::random();
    // Each replica knows a different node; the others are discovered.
    let replica = |i: usize| {
        RedisVault::builder(&cluster.nodes[i].url(), key.clone())
            .cluster(true)
            .build()
            .unwrap()
    };
    let (a, b) = (replica(0), replica(2));
    let rw_b = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(b.clone()));
    for s in 0..12 {
        let scope = ScopeId::new("anonymous", &format!("run-{s}"));
        let items: Vec<(Kind, Secret)> = (0..5).map(|i| (Kind::email(), Secret::new(&email(i)))).collect();
        let out = a
            .batched()
            .unwrap()
            .tokenize_batch(&scope, "crm", &items)
            .unwrap();
        assert_eq!(
            out.iter().map(|t| t.placeholder.n).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        let msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "send", "arguments": {"to": "[EMAIL_3]"}}});
        let plan = rw_b.plan_restore_message(&msg, &scope).unwrap();
        let mut restored = msg.clone();
        rw_b.apply_restore_message(&mut restored, &plan);
        assert_eq!(restored["params"]["arguments"]["to"], email(2));
    }
    let per_node = cluster.keys_per_node();
    assert!(
        per_node.iter().filter(|&&n| n > 0).count() >= 2,
        "scopes spread over the nodes: {per_node:?}"
    );
    // Shared sessions work across slots too.
    let store = a.sessions().unwrap();
    let rec = mcp_pii_gateway::vault::SharedSession {
        upstream_id: "up-1".into(),
        client: "anonymous".into(),
    };
    store
        .put("crm", "sess-1", &rec, Duration::from_secs(60))
        .await
        .unwrap();
    let got = b
        .sessions()
        .unwrap()
        .get("crm", "sess-1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(got, Some(rec));
}
