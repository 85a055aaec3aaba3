//! The embedded in-memory vault; see [`MemoryVault`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;

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
            scopes: DashMap::new(),
            tombstones: DashMap::new(),
        }
    }
}

/// One value's record inside a scope. The value's `Arc<str>` is shared with the lookup key.
struct Slot {
    value: Secret,
    origins: Vec<Arc<str>>,
}

/// The entries of one kind in one scope: `slots[n - 1 - base]` is placeholder `n`.
#[derive(Default)]
struct KindState {
    /// Numbers up to `base` belonged to an expired incarnation of this scope.
    base: u64,
    by_value: HashMap<Arc<str>, u64>,
    slots: Vec<Slot>,
}

impl KindState {
    fn slot_index(&self, n: u64) -> Option<usize> {
        usize::try_from(n.checked_sub(self.base)?.checked_sub(1)?).ok()
    }
    fn high_water(&self) -> u64 {
        self.base + u64::try_from(self.slots.len()).expect("slot count fits u64")
    }
}

/// What an expired scope leaves behind: its highest number per kind.
struct Tombstone {
    at: Instant,
    high: HashMap<Kind, u64>,
}

struct ScopeState {
    kinds: HashMap<Kind, KindState>,
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
/// Lock order (no deadlock): a `scopes` shard lock, then a scope's lock, then a `tombstones`
/// shard lock; each is optional, and none is ever taken while a later one is held (tokenize and
/// resolve take a scope lock only after the shard lock is released).
///
/// Lazy expiry makes expired placeholders fail without any sweep, but only [`Vault::sweep`]
/// frees the memory of scopes that are never touched again: the owner should call it
/// periodically (say every `idle_ttl / 4`).
pub struct MemoryVault {
    cfg: MemoryVaultBuilder,
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
            let ks = st.kinds.get_mut(kind).expect("inserted above");
            if let Some(&n) = ks.by_value.get(value) {
                let idx = ks.slot_index(n).expect("numbers in by_value index the slots");
                let slot = &mut ks.slots[idx];
                if !slot.origins.iter().any(|o| &**o == origin) {
                    slot.origins.push(Arc::from(origin));
                }
                return Ok(Tokenized {
                    placeholder: Placeholder {
                        kind: kind.clone(),
                        n,
                    },
                    minted: false,
                });
            }
            if full {
                return Err(Error::scope_full(limit));
            }
            let shared: Arc<str> = Arc::from(value);
            let n = ks.high_water() + 1;
            ks.slots.push(Slot {
                value: Secret(Arc::clone(&shared)),
                origins: vec![Arc::from(origin)],
            });
            ks.by_value.insert(shared, n);
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
        let slot = st
            .kinds
            .get(&placeholder.kind)
            .and_then(|ks| ks.slots.get(ks.slot_index(placeholder.n)?));
        Ok(slot.map(|s| Entry {
            value: s.value.clone(),
            kind: placeholder.kind.clone(),
            origins: s.origins.clone(),
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
}
