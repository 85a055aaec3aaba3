//! In-memory vault (TEMPORARY minimal version; the real one shards scopes on dashmap, expires
//! idle scopes and caps entries).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Entry, Placeholder, ScopeId, Secret, Tokenized, Vault};
use crate::detect::Kind;
use crate::error::{Error, Result};

/// Builder for [`MemoryVault`].
#[derive(Debug, Clone)]
pub struct MemoryVaultBuilder {
    idle_ttl: Duration,
    max_entries_per_scope: usize,
}

impl MemoryVaultBuilder {
    /// Idle time after which a scope and its placeholders are dropped. Default: 1 hour.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }
    /// Most entries one scope may hold. Default: 100 000.
    pub fn max_entries_per_scope(mut self, n: usize) -> Self {
        self.max_entries_per_scope = n;
        self
    }
    /// Builds the vault.
    pub fn build(self) -> MemoryVault {
        MemoryVault {
            cfg: self,
            scopes: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Default)]
struct ScopeState {
    by_value: HashMap<(Kind, Arc<str>), u64>,
    entries: HashMap<(Kind, u64), Entry>,
    next: HashMap<Kind, u64>,
}

/// The embedded in-memory vault.
pub struct MemoryVault {
    cfg: MemoryVaultBuilder,
    scopes: Mutex<HashMap<ScopeId, ScopeState>>,
}

impl std::fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryVault").finish_non_exhaustive()
    }
}

impl MemoryVault {
    /// A builder with the defaults.
    pub fn builder() -> MemoryVaultBuilder {
        MemoryVaultBuilder {
            idle_ttl: Duration::from_secs(3600),
            max_entries_per_scope: 100_000,
        }
    }
}

impl Vault for MemoryVault {
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized> {
        let mut scopes = self
            .scopes
            .lock()
            .map_err(|_| Error::internal("vault lock poisoned"))?;
        let st = scopes.entry(scope.clone()).or_default();
        let key = (kind.clone(), Arc::<str>::from(value));
        if let Some(&n) = st.by_value.get(&key) {
            let e = st
                .entries
                .get_mut(&(kind.clone(), n))
                .expect("by_value and entries agree");
            if !e.origins.iter().any(|o| &**o == origin) {
                e.origins.push(Arc::from(origin));
            }
            return Ok(Tokenized {
                placeholder: Placeholder {
                    kind: kind.clone(),
                    n,
                },
                minted: false,
            });
        }
        if st.entries.len() >= self.cfg.max_entries_per_scope {
            return Err(Error::scope_full(self.cfg.max_entries_per_scope));
        }
        let n = st.next.entry(kind.clone()).or_insert(0);
        *n += 1;
        let n = *n;
        st.by_value.insert(key, n);
        st.entries.insert(
            (kind.clone(), n),
            Entry {
                value: Secret::new(value),
                kind: kind.clone(),
                origins: vec![Arc::from(origin)],
            },
        );
        Ok(Tokenized {
            placeholder: Placeholder {
                kind: kind.clone(),
                n,
            },
            minted: true,
        })
    }

    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>> {
        let scopes = self
            .scopes
            .lock()
            .map_err(|_| Error::internal("vault lock poisoned"))?;
        Ok(scopes.get(scope).and_then(|st| {
            st.entries
                .get(&(placeholder.kind.clone(), placeholder.n))
                .cloned()
        }))
    }

    fn sweep(&self) -> usize {
        0
    }
}
