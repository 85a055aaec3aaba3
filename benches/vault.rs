//! The in-memory vault's footprint and speed: N distinct generated emails (~28 bytes each,
//! `user0000042.lima@example.org`) tokenized into one scope, then the same N again.
//!
//! Prints the resident memory the vault added per entry (RSS after minus RSS before, over N; and
//! the same for the peak RSS), and the time per tokenize for new values (minting) and for values
//! already in the scope (hits). Values are generated into one reused buffer, so the growth is
//! the vault's alone. Linux only (reads `/proc/self/status`).
//!
//! Run: `cargo bench --bench vault` (N = 1 000 000), or `cargo bench --bench vault -- 200000`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::fmt::Write as _;
use std::time::Instant;

use mcp_pii_gateway::detect::Kind;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId, Vault};

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let vault = MemoryVault::builder().max_entries_per_scope(n + 1).build();
    let scope = ScopeId::new("bench", "run-1");
    let email = Kind::email();
    let mut buf = String::with_capacity(64);
    let mut value = |i: usize| {
        buf.clear();
        write!(buf, "user{i:07}.lima@example.org").unwrap();
        buf.clone()
    };
    // Warm the allocator and the scope with one value outside the count.
    vault.tokenize(&scope, &email, "warm@example.org", "crm").unwrap();
    let (rss0, hwm0) = rss();
    let mut mint_ns = 0u128;
    for i in 0..n {
        let v = value(i);
        let t = Instant::now();
        let r = vault.tokenize(&scope, &email, &v, "crm").unwrap();
        mint_ns += t.elapsed().as_nanos();
        assert!(r.minted);
    }
    let (rss1, hwm1) = rss();
    let mut hit_ns = 0u128;
    for i in 0..n {
        let v = value(i);
        let t = Instant::now();
        let r = vault.tokenize(&scope, &email, &v, "crm").unwrap();
        hit_ns += t.elapsed().as_nanos();
        assert!(!r.minted);
    }
    let per = |b: u64| b as f64 / n as f64;
    println!(
        "vault n={n}: rss +{:.1} bytes/entry, peak rss +{:.1} bytes/entry; tokenize new {:.0} ns, known {:.0} ns",
        per(rss1.saturating_sub(rss0)),
        per(hwm1.saturating_sub(hwm0)),
        mint_ns as f64 / n as f64,
        hit_ns as f64 / n as f64,
    );
}
