//! The embedded in-memory vault; see [`MemoryVault`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hashbrown::HashTable;

use super::{Entry, Placeholder, ScopeId, Secret, Tokenized, Vault};
use crate::detect::Kind;
use crate::error::{Error, Result};

/// Builder for [`MemoryVault`].
#[derive(Debug, Clone)]
pub struct MemoryVaultBuilder {
    idle_ttl: Duration,
    max_entries_per_scope: usize,
    tombstone_ttl: Duration,
}

impl MemoryVaultBuilder {
    /// Idle time after which a scope and its placeholders are dropped. Default: 1 hour.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }
    /// Most entries one scope may hold (all kinds together). Default: 100 000.
    pub fn max_entries_per_scope(mut self, n: usize) -> Self {
        self.max_entries_per_scope = n;
        self
    }
    /// How long an expired scope's numbering is remembered, so that a scope re-created under
    /// the same id never reissues a number its placeholders used (see the module docs).
    /// Default: 24 hours.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.tombstone_ttl = ttl;
        self
    }
    /// Builds the vault.
    pub fn build(self) -> MemoryVault {
        MemoryVault {
            cfg: self,
            hasher: RandomState::new(),
            scopes: DashMap::new(),
            tombstones: DashMap::new(),
        }
    }
}

/// The entries of one kind in one scope, stored compactly: entry `i` (placeholder
/// `base + i + 1`) is `arena[ends[i - 1]..ends[i]]` (from 0 for the first), with the origin id
/// `first_origin[i]` and, rarely, more origins in `more_origins`. `by_value` holds entry
/// indices, hashed by their value's bytes; equality is checked against the arena. So an entry
/// costs its bytes plus about 20 (an offset, an origin id, an index in the hash table), with no
/// allocation of its own.
#[derive(Default)]
struct KindState {
    /// Numbers up to `base` belonged to an expired incarnation of this scope.
    base: u64,
    arena: String,
    ends: Vec<usize>,
    first_origin: Vec<u32>,
    /// Entry index → its further origin ids, in order of first appearance.
    more_origins: HashMap<u32, Vec<u32>>,
    by_value: HashTable<u32>,
}

impl KindState {
    fn slot_index(&self, n: u64) -> Option<usize> {
        let i = usize::try_from(n.checked_sub(self.base)?.checked_sub(1)?).ok()?;
        (i < self.ends.len()).then_some(i)
    }
    fn high_water(&self) -> u64 {
        self.base + u64::try_from(self.ends.len()).expect("entry count fits u64")
    }
    fn value(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.arena[start..self.ends[i]]
    }
    /// The index of `value`'s entry, if it has one.
    fn find(&self, hasher: &RandomState, value: &str) -> Option<usize> {
        let hash = hasher.hash_one(value.as_bytes());
        self.by_value
            .find(hash, |&i| self.value(i as usize) == value)
            .map(|&i| i as usize)
    }
    /// Appends an entry for `value` (not yet in the table) with origin id `origin`; returns its
    /// number.
    fn push(&mut self, hasher: &RandomState, value: &str, origin: u32, index: u32) -> u64 {
        let rehash = |arena: &str, ends: &[usize], i: u32| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            hasher.hash_one(&arena.as_bytes()[start..ends[i]])
        };
        // Grow everything first: the pushes below cannot fail, so the four stay in step even if
        // growing panics.
        self.arena.reserve(value.len());
        self.ends.reserve(1);
        self.first_origin.reserve(1);
        let (arena, ends) = (&self.arena, &self.ends);
        self.by_value.reserve(1, |&i| rehash(arena, ends, i));
        self.arena.push_str(value);
        self.ends.push(self.arena.len());
        self.first_origin.push(origin);
        let hash = hasher.hash_one(value.as_bytes());
        let (arena, ends) = (&self.arena, &self.ends);
        self.by_value
            .insert_unique(hash, index, |&i| rehash(arena, ends, i));
        self.high_water()
    }
    /// Records origin id `origin` for entry `i` if it is new to it.
    fn add_origin(&mut self, i: usize, origin: u32) {
        if self.first_origin[i] == origin {
            return;
        }
        let key = u32::try_from(i).expect("entry indices fit u32");
        let more = self.more_origins.entry(key).or_default();
        if !more.contains(&origin) {
            more.push(origin);
        }
    }
    /// Entry `i`'s origin ids, in order of first appearance.
    fn origins(&self, i: usize) -> impl Iterator<Item = u32> + '_ {
        let more = u32::try_from(i)
            .ok()
            .and_then(|k| self.more_origins.get(&k))
            .map_or(&[][..], Vec::as_slice);
        std::iter::once(self.first_origin[i]).chain(more.iter().copied())
    }
}

/// What an expired scope leaves behind: its highest number per kind.
struct Tombstone {
    at: Instant,
    high: HashMap<Kind, u64>,
}

struct ScopeState {
    kinds: HashMap<Kind, KindState>,
    /// The origin (server) names seen in this scope; entries hold indices into it. A gateway
    /// has a handful of servers, so a linear search is the fastest lookup.
    origin_names: Vec<Arc<str>>,
    /// Numbering floors per kind, from a tombstone of an earlier incarnation.
    bases: HashMap<Kind, u64>,
    len: usize,
    last_access: Instant,
    /// Set (under this lock) when the scope is removed from the map; a holder of a stale `Arc`
    /// must then start over with a fresh scope.
    dead: bool,
}

struct ScopeCell {
    state: Mutex<ScopeState>,
}

impl ScopeCell {
    fn new(now: Instant, bases: HashMap<Kind, u64>) -> ScopeCell {
        ScopeCell {
            state: Mutex::new(ScopeState {
                kinds: HashMap::new(),
                origin_names: Vec::new(),
                bases,
                len: 0,
                last_access: now,
                dead: false,
            }),
        }
    }
    fn lock(&self) -> MutexGuard<'_, ScopeState> {
        // A panic while holding the lock can only come from an allocation failure; every
        // mutation below leaves the state consistent before it can panic, so recover.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The embedded in-memory vault: scopes sharded on a concurrent map, one lock per scope, idle
/// TTL and an entry cap per scope.
///
/// Scopes live in a [`DashMap`] (sharded: scopes in different shards never touch the same lock,
/// and a lookup only takes a shard's read lock for the time it takes to clone an `Arc`). Each
/// scope's state sits behind its own mutex, so work in one scope never waits for another scope:
/// the scope lock is held only for a hash lookup (and, for a new value, one insert).
///
/// Expiry: every access refreshes the scope's idle timer. A scope idle for longer than the TTL is
/// dead: [`Vault::sweep`] drops such scopes, and any access that finds one first drops it (lazy
/// expiry), so an expired scope's placeholders never resolve even if no sweep ran.
///
/// Expired placeholders must keep failing even when the same scope id comes back (a client's
/// default scope does): otherwise a stale `[EMAIL_3]` still in a model's context could resolve
/// to whatever value the new incarnation numbered 3, and data would go to the wrong person. So
/// an expired scope leaves a small tombstone (its highest number per kind) for
/// `tombstone_ttl`; a scope re-created under the same id continues numbering after it. Only
/// after the tombstone is gone does numbering start from 1 again.
///
/// Memory stays bounded: a scope holds at most `max_entries_per_scope` entries; minting one more
/// fails with [`Error::scope_full`](crate::Error::scope_full) (values already in the scope still
/// tokenize and resolve).
///
/// Footprint: an entry is its value's bytes in one string per kind and scope, plus an offset, an
/// origin id (origins, the server names, are kept once per scope) and an index in a hash table
/// keyed by the value: no allocation per entry. `cargo bench --bench vault` measures it: about
/// 50 bytes of resident memory per ~28-byte email at a million entries in one scope. Values are
/// hashed with a per-vault random key, so upstream data cannot aim for collisions.
///
/// Lock order (no deadlock): a `scopes` shard lock, then a scope's lock, then a `tombstones`
/// shard lock; each is optional, and none is ever taken while a later one is held (tokenize and
/// resolve take a scope lock only after the shard lock is released).
///
/// Lazy expiry makes expired placeholders fail without any sweep, but only [`Vault::sweep`]
/// frees the memory of scopes that are never touched again: the owner should call it
/// periodically (say every `idle_ttl / 4`).
pub struct MemoryVault {
    cfg: MemoryVaultBuilder,
    /// Keyed (per vault) hashing of values: upstream data must not be able to pick collisions.
    hasher: RandomState,
    scopes: DashMap<ScopeId, Arc<ScopeCell>>,
    tombstones: DashMap<ScopeId, Tombstone>,
}

impl std::fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show entries: counts only.
        f.debug_struct("MemoryVault")
            .field("idle_ttl", &self.cfg.idle_ttl)
            .field("max_entries_per_scope", &self.cfg.max_entries_per_scope)
            .field("scopes", &self.scopes.len())
            .field("tombstones", &self.tombstones.len())
            .finish()
    }
}

impl MemoryVault {
    /// A builder with the defaults.
    pub fn builder() -> MemoryVaultBuilder {
        MemoryVaultBuilder {
            idle_ttl: Duration::from_secs(3600),
            max_entries_per_scope: 100_000,
            tombstone_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// How many scopes are held (live or expired but not yet swept).
    pub fn scope_count(&self) -> usize {
        self.scopes.len()
    }

    fn expired(&self, st: &ScopeState, now: Instant) -> bool {
        now.saturating_duration_since(st.last_access) > self.cfg.idle_ttl
    }

    /// Removes `cell` from the map if it is still the cell for `scope`.
    fn unlink(&self, scope: &ScopeId, cell: &Arc<ScopeCell>) {
        self.scopes.remove_if(scope, |_, c| Arc::ptr_eq(c, cell));
    }

    /// Marks a scope dead (its lock is held) and leaves its tombstone. Must run before the cell
    /// is unlinked, so that whoever re-creates the scope finds the tombstone.
    fn bury(&self, scope: &ScopeId, st: &mut ScopeState, now: Instant) {
        st.dead = true;
        let mut high: HashMap<Kind, u64> = st.bases.clone();
        for (k, ks) in &st.kinds {
            high.insert(k.clone(), ks.high_water());
        }
        if !high.is_empty() {
            self.tombstones.insert(scope.clone(), Tombstone { at: now, high });
        }
    }

    /// The live cell for `scope`, creating it if absent.
    fn cell_or_create(&self, scope: &ScopeId) -> Arc<ScopeCell> {
        if let Some(c) = self.scopes.get(scope) {
            return Arc::clone(c.value());
        }
        Arc::clone(
            self.scopes
                .entry(scope.clone())
                .or_insert_with(|| {
                    let now = Instant::now();
                    let bases = match self.tombstones.remove(scope) {
                        Some((_, t)) if now.saturating_duration_since(t.at) <= self.cfg.tombstone_ttl => {
                            t.high
                        }
                        _ => HashMap::new(),
                    };
                    Arc::new(ScopeCell::new(now, bases))
                })
                .value(),
        )
    }
}

impl Vault for MemoryVault {
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized> {
        loop {
            let cell = self.cell_or_create(scope);
            let mut guard = cell.lock();
            let st = &mut *guard;
            if st.dead {
                // Expired between the lookup and the lock: take (or make) the new cell.
                drop(guard);
                self.unlink(scope, &cell);
                continue;
            }
            let now = Instant::now();
            if self.expired(st, now) {
                self.bury(scope, st, now);
                drop(guard);
                self.unlink(scope, &cell);
                continue;
            }
            st.last_access = now;
            let limit = self.cfg.max_entries_per_scope;
            let full = st.len >= limit;
            if !st.kinds.contains_key(kind) {
                if full {
                    return Err(Error::scope_full(limit));
                }
                let base = st.bases.get(kind).copied().unwrap_or(0);
                st.kinds.insert(
                    kind.clone(),
                    KindState {
                        base,
                        ..KindState::default()
                    },
                );
            }
            let origin_id = match st.origin_names.iter().position(|o| **o == *origin) {
                Some(i) => u32::try_from(i).expect("origin count fits u32"),
                None => {
                    let Ok(id) = u32::try_from(st.origin_names.len()) else {
                        return Err(Error::scope_full(limit));
                    };
                    st.origin_names.push(Arc::from(origin));
                    id
                }
            };
            let ks = st.kinds.get_mut(kind).expect("inserted above");
            if let Some(i) = ks.find(&self.hasher, value) {
                ks.add_origin(i, origin_id);
                let n = ks.base + u64::try_from(i).expect("index fits u64") + 1;
                return Ok(Tokenized {
                    placeholder: Placeholder {
                        kind: kind.clone(),
                        n,
                    },
                    minted: false,
                });
            }
            let index = match u32::try_from(ks.ends.len()) {
                Ok(i) if !full => i,
                _ => return Err(Error::scope_full(limit)),
            };
            let n = ks.push(&self.hasher, value, origin_id, index);
            st.len += 1;
            return Ok(Tokenized {
                placeholder: Placeholder {
                    kind: kind.clone(),
                    n,
                },
                minted: true,
            });
        }
    }

    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>> {
        let Some(cell) = self.scopes.get(scope).map(|c| Arc::clone(c.value())) else {
            return Ok(None);
        };
        let mut guard = cell.lock();
        let st = &mut *guard;
        if st.dead {
            return Ok(None);
        }
        let now = Instant::now();
        if self.expired(st, now) {
            self.bury(scope, st, now);
            drop(guard);
            self.unlink(scope, &cell);
            return Ok(None);
        }
        st.last_access = now;
        let Some(ks) = st.kinds.get(&placeholder.kind) else {
            return Ok(None);
        };
        let Some(i) = ks.slot_index(placeholder.n) else {
            return Ok(None);
        };
        Ok(Some(Entry {
            value: Secret::new(ks.value(i)),
            kind: placeholder.kind.clone(),
            origins: ks
                .origins(i)
                .map(|o| Arc::clone(&st.origin_names[o as usize]))
                .collect(),
        }))
    }

    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut dropped = 0;
        self.scopes.retain(|scope, cell| {
            let mut guard = cell.lock();
            let st = &mut *guard;
            if st.dead {
                dropped += 1;
                false
            } else if self.expired(st, now) {
                self.bury(scope, st, now);
                dropped += 1;
                false
            } else {
                true
            }
        });
        let ttl = self.cfg.tombstone_ttl;
        self.tombstones
            .retain(|_, t| now.saturating_duration_since(t.at) <= ttl);
        dropped
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn email() -> Kind {
        Kind::email()
    }

    #[test]
    fn numbers_per_kind_from_one_in_order() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        let a = v.tokenize(&s, &email(), "a@example.org", "x").unwrap();
        let p = v.tokenize(&s, &Kind::phone(), "+1 202 555 0100", "x").unwrap();
        let b = v.tokenize(&s, &email(), "b@example.org", "x").unwrap();
        let a2 = v.tokenize(&s, &email(), "a@example.org", "y").unwrap();
        assert_eq!(a.placeholder.to_string(), "[EMAIL_1]");
        assert_eq!(p.placeholder.to_string(), "[PHONE_1]");
        assert_eq!(b.placeholder.to_string(), "[EMAIL_2]");
        assert!(a.minted && b.minted && p.minted && !a2.minted);
        assert_eq!(a2.placeholder, a.placeholder);
        let e = v.resolve(&s, &a.placeholder).unwrap().unwrap();
        assert_eq!(e.value.expose(), "a@example.org");
        let origins: Vec<&str> = e.origins.iter().map(|o| &**o).collect();
        assert_eq!(origins, ["x", "y"]);
    }

    #[test]
    fn same_text_different_kind_is_different_entry() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        let a = v.tokenize(&s, &email(), "[PHONE_1]", "x").unwrap();
        let b = v.tokenize(&s, &Kind::phone(), "[PHONE_1]", "x").unwrap();
        assert_eq!(a.placeholder.to_string(), "[EMAIL_1]");
        assert_eq!(b.placeholder.to_string(), "[PHONE_1]");
    }

    #[test]
    fn scopes_are_isolated() {
        let v = MemoryVault::builder().build();
        let s1 = ScopeId::new("c", "s1");
        let s2 = ScopeId::new("c", "s2");
        let other_client = ScopeId::new("d", "s1");
        let a = v.tokenize(&s1, &email(), "a@example.org", "x").unwrap();
        assert!(v.resolve(&s2, &a.placeholder).unwrap().is_none());
        assert!(v.resolve(&other_client, &a.placeholder).unwrap().is_none());
        let b = v.tokenize(&s2, &email(), "b@example.org", "x").unwrap();
        assert_eq!(b.placeholder.n, 1);
    }

    #[test]
    fn unknown_numbers_do_not_resolve() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        v.tokenize(&s, &email(), "a@example.org", "x").unwrap();
        for n in [0, 2, u64::MAX] {
            let p = Placeholder { kind: email(), n };
            assert!(v.resolve(&s, &p).unwrap().is_none(), "n={n}");
        }
        let p = Placeholder {
            kind: Kind::phone(),
            n: 1,
        };
        assert!(v.resolve(&s, &p).unwrap().is_none());
    }

    #[test]
    fn cap_gives_scope_full_but_known_values_still_work() {
        let v = MemoryVault::builder().max_entries_per_scope(2).build();
        let s = ScopeId::new("c", "s");
        v.tokenize(&s, &email(), "a@example.org", "x").unwrap();
        v.tokenize(&s, &Kind::phone(), "+1 202 555 0100", "x").unwrap();
        let e = v.tokenize(&s, &email(), "c@example.org", "x").unwrap_err();
        assert!(e.is_scope_full());
        assert!(!e.to_string().contains("c@example.org"));
        let e = v
            .tokenize(&s, &Kind::new("CUSTOM").unwrap(), "z", "x")
            .unwrap_err();
        assert!(e.is_scope_full());
        let again = v.tokenize(&s, &email(), "a@example.org", "y").unwrap();
        assert!(!again.minted);
        // Another scope is unaffected.
        v.tokenize(&ScopeId::new("c", "t"), &email(), "c@example.org", "x")
            .unwrap();
    }

    #[test]
    fn sweep_drops_idle_scopes_only() {
        let v = MemoryVault::builder()
            .idle_ttl(Duration::from_millis(400))
            .build();
        let idle = ScopeId::new("c", "idle");
        let busy = ScopeId::new("c", "busy");
        let pi = v.tokenize(&idle, &email(), "a@example.org", "x").unwrap();
        let pb = v.tokenize(&busy, &email(), "b@example.org", "x").unwrap();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(100));
            assert!(v.resolve(&busy, &pb.placeholder).unwrap().is_some());
        }
        assert_eq!(v.sweep(), 1);
        assert_eq!(v.scope_count(), 1);
        assert!(v.resolve(&idle, &pi.placeholder).unwrap().is_none());
        assert!(v.resolve(&busy, &pb.placeholder).unwrap().is_some());
        assert_eq!(v.sweep(), 0);
    }

    #[test]
    fn lazy_expiry_without_sweep() {
        let v = MemoryVault::builder().idle_ttl(Duration::from_millis(30)).build();
        let s = ScopeId::new("c", "s");
        let a = v.tokenize(&s, &email(), "a@example.org", "x").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert!(v.resolve(&s, &a.placeholder).unwrap().is_none());
        assert_eq!(v.scope_count(), 0);
        // The re-created scope continues after the old numbers, so the stale [EMAIL_1] stays
        // unknown instead of resolving to another value; the old value is new to it.
        let b = v.tokenize(&s, &email(), "b@example.org", "x").unwrap();
        assert_eq!(b.placeholder.n, 2);
        assert!(b.minted);
        assert!(v.resolve(&s, &a.placeholder).unwrap().is_none());
        let p = v.tokenize(&s, &Kind::phone(), "+1 202 555 0100", "x").unwrap();
        assert_eq!(p.placeholder.n, 1, "kinds without history start at 1");
        std::thread::sleep(Duration::from_millis(60));
        let a2 = v.tokenize(&s, &email(), "a@example.org", "x").unwrap();
        assert!(a2.minted);
        assert_eq!(a2.placeholder.n, 3);
    }

    #[test]
    fn numbering_restarts_after_the_tombstone_expires() {
        let v = MemoryVault::builder()
            .idle_ttl(Duration::from_millis(20))
            .tombstone_ttl(Duration::from_millis(300))
            .build();
        let s = ScopeId::new("c", "s");
        v.tokenize(&s, &email(), "a@example.org", "x").unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(v.sweep(), 1);
        let b = v.tokenize(&s, &email(), "b@example.org", "x").unwrap();
        assert_eq!(b.placeholder.n, 2);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(v.sweep(), 1);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(v.sweep(), 0);
        assert!(format!("{v:?}").contains("tombstones: 0"), "{v:?}");
        let c = v.tokenize(&s, &email(), "c@example.org", "x").unwrap();
        assert_eq!(c.placeholder.n, 1);
    }

    #[test]
    fn debug_never_shows_values() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        let secret = "very.secret.person@example.org";
        let t = v.tokenize(&s, &email(), secret, "x").unwrap();
        let e = v.resolve(&s, &t.placeholder).unwrap().unwrap();
        for shown in [
            format!("{v:?}"),
            format!("{v:#?}"),
            format!("{e:?}"),
            format!("{e:#?}"),
            format!("{:?}", e.value),
            format!("{t:?}"),
        ] {
            assert!(!shown.contains("very.secret"), "{shown}");
        }
    }
    #[test]
    fn values_sharing_bytes_stay_distinct_and_exact() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        // Neighbours in the arena that are prefixes of each other, an empty value, multi-byte
        // characters: each is its own entry and comes back byte for byte.
        let values = [
            "ab",
            "a",
            "b",
            "",
            "abab",
            "ünï@例え.jp",
            "ünï@例え.j",
            "[EMAIL_1]",
        ];
        let mut got = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let t = v.tokenize(&s, &email(), value, "x").unwrap();
            assert!(t.minted, "{value:?}");
            assert_eq!(t.placeholder.n, i as u64 + 1);
            got.push(t.placeholder);
        }
        for (value, p) in values.iter().zip(&got) {
            assert_eq!(v.resolve(&s, p).unwrap().unwrap().value.expose(), *value);
            assert_eq!(&v.tokenize(&s, &email(), value, "x").unwrap().placeholder, p);
        }
    }

    #[test]
    fn many_values_survive_table_growth() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        let value = |i: u64| format!("user{i}@example.org");
        for i in 1..=20_000 {
            assert_eq!(v.tokenize(&s, &email(), &value(i), "x").unwrap().placeholder.n, i);
        }
        for i in (1..=20_000).rev() {
            let t = v.tokenize(&s, &email(), &value(i), "x").unwrap();
            assert!(!t.minted);
            assert_eq!(t.placeholder.n, i);
            let e = v.resolve(&s, &t.placeholder).unwrap().unwrap();
            assert_eq!(e.value.expose(), value(i));
        }
    }

    #[test]
    fn origins_are_kept_per_entry_in_order_of_first_appearance() {
        let v = MemoryVault::builder().build();
        let s = ScopeId::new("c", "s");
        let a = v.tokenize(&s, &email(), "a@example.org", "crm").unwrap();
        let b = v.tokenize(&s, &email(), "b@example.org", "mail").unwrap();
        let p = v.tokenize(&s, &Kind::phone(), "+1 202 555 0100", "hr").unwrap();
        for origin in ["mail", "crm", "hr", "mail"] {
            v.tokenize(&s, &email(), "a@example.org", origin).unwrap();
        }
        v.tokenize(&s, &Kind::phone(), "+1 202 555 0100", "crm").unwrap();
        let origins = |p: &Placeholder| -> Vec<String> {
            let e = v.resolve(&s, p).unwrap().unwrap();
            e.origins.iter().map(|o| o.to_string()).collect()
        };
        assert_eq!(origins(&a.placeholder), ["crm", "mail", "hr"]);
        assert_eq!(origins(&b.placeholder), ["mail"]);
        assert_eq!(origins(&p.placeholder), ["hr", "crm"]);
        // Another scope has its own origin table.
        let t = ScopeId::new("c", "t");
        let c = v.tokenize(&t, &email(), "a@example.org", "hr").unwrap();
        let e = v.resolve(&t, &c.placeholder).unwrap().unwrap();
        assert_eq!(e.origins.len(), 1);
        assert_eq!(&*e.origins[0], "hr");
    }
}
