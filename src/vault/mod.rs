//! The vault: placeholders and the values behind them, per scope.
//!
//! ```
//! use mcp_pii_gateway::vault::{MemoryVault, ScopeId, Vault};
//! use mcp_pii_gateway::detect::Kind;
//! let vault = MemoryVault::builder().build();
//! let scope = ScopeId::new("anonymous", "run-42");
//! let a = vault.tokenize(&scope, &Kind::email(), "ana.lima@example.org", "crm").unwrap();
//! let b = vault.tokenize(&scope, &Kind::email(), "ana.lima@example.org", "mail").unwrap();
//! assert_eq!(a.placeholder.to_string(), "[EMAIL_1]");
//! assert_eq!(a.placeholder, b.placeholder);
//! let entry = vault.resolve(&scope, &a.placeholder).unwrap().unwrap();
//! assert_eq!(entry.value.expose(), "ana.lima@example.org");
//! assert_eq!(entry.origins.len(), 2);
//! ```
//!
//! The contract (`Vault`, `ScopeId`, `Placeholder`, `Secret`, `Entry`, `Tokenized`,
//! `MemoryVault::builder()`) is shared by every backend; [`MemoryVault`] is the embedded one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::detect::Kind;
use crate::error::Result;

mod memory;
mod redis;
pub use memory::{MemoryVault, MemoryVaultBuilder};
pub use redis::{RedisVault, RedisVaultBuilder, VaultKey};

/// Whose placeholders these are: the authenticated client (or `anonymous`) and the scope key
/// (scope header value, downstream session id, or the client's default scope).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId {
    client: Arc<str>,
    key: Arc<str>,
}

impl ScopeId {
    /// A scope for `client` keyed by `key`.
    pub fn new(client: &str, key: &str) -> ScopeId {
        ScopeId {
            client: Arc::from(client),
            key: Arc::from(key),
        }
    }
    /// The client name.
    pub fn client(&self) -> &str {
        &self.client
    }
    /// The scope key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Scope keys are run ids or session ids, not PII; still keep them short in logs.
        write!(f, "ScopeId({}/{})", self.client, self.key)
    }
}

/// A placeholder `[KIND_N]`: KIND a rule's kind, N a decimal number from 1.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Placeholder {
    /// The kind.
    pub kind: Kind,
    /// The number, from 1, per scope and per kind.
    pub n: u64,
}

impl Placeholder {
    /// Parses exactly `[KIND_N]` (no surrounding text). N has no leading zero.
    pub fn parse(s: &str) -> Option<Placeholder> {
        let inner = s.strip_prefix('[')?.strip_suffix(']')?;
        let (kind, n) = inner.rsplit_once('_')?;
        if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = n.parse().ok()?;
        Some(Placeholder {
            kind: Kind::new(kind).ok()?,
            n,
        })
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}_{}]", self.kind, self.n)
    }
}

/// A secret string: never shown by `Debug` or `Display`. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: &str) -> Secret {
        Secret(Arc::from(value))
    }
    /// The raw value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a placeholder stands for.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The raw value.
    pub value: Secret,
    /// Its kind.
    pub kind: Kind,
    /// The servers whose data contained it, in order of first appearance.
    pub origins: Vec<Arc<str>>,
}

/// The result of [`Vault::tokenize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenized {
    /// The placeholder for the value.
    pub placeholder: Placeholder,
    /// True when this call minted it (first appearance in the scope).
    pub minted: bool,
}

/// A store of placeholders per scope. Implementations must be stable (same value, same scope →
/// same placeholder, under any concurrency) and must never expose values through `Debug`, logs
/// or errors.
pub trait Vault: Send + Sync + 'static {
    /// The placeholder for `value` of `kind` in `scope`, minting the next number for that kind if
    /// the value is new; records `origin` (a server name) among the entry's origins.
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized>;

    /// What `placeholder` stands for in `scope`; `None` when it was never issued there or has
    /// expired. Refreshes the scope's idle timer.
    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>>;

    /// Drops scopes idle for longer than the TTL; returns how many were dropped.
    fn sweep(&self) -> usize;

    /// The batch interface of a vault whose store is a network round trip away; `None` (the
    /// default) for an embedded one. The rewriter uses it so that one message costs at most
    /// one round trip (see [`Batched`]).
    fn batched(&self) -> Option<&dyn Batched> {
        None
    }

    /// False while the vault cannot serve (its store is unreachable): `/healthz` then answers
    /// 503 so that a load balancer drains this replica. Default: always true.
    fn healthy(&self) -> bool {
        true
    }

    /// Where gateway sessions are shared between replicas, when this vault's store holds them
    /// too (Redis). Default: `None` (sessions live in the replica that created them).
    fn sessions(&self) -> Option<Arc<dyn SessionStore>> {
        None
    }
}

/// A gateway session as other replicas need it: the upstream's session id and the client it
/// belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSession {
    /// The upstream server's `Mcp-Session-Id`.
    pub upstream_id: String,
    /// The client that created the session.
    pub client: String,
}

impl fmt::Debug for SharedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSession")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Sessions shared by replicas, keyed by server name and the gateway's session id. A store
/// that cannot be reached answers with [`Error::vault_unavailable`](crate::Error::vault_unavailable).
pub trait SessionStore: Send + Sync {
    /// The session, if it exists; restarts its idle timer at `idle`.
    fn get<'a>(
        &'a self,
        server: &'a str,
        session: &'a str,
        idle: Duration,
    ) -> BoxFuture<'a, Result<Option<SharedSession>>>;
    /// Records a session, expiring after `idle` without use.
    fn put<'a>(
        &'a self,
        server: &'a str,
        session: &'a str,
        value: &'a SharedSession,
        idle: Duration,
    ) -> BoxFuture<'a, Result<()>>;
    /// Forgets a session.
    fn remove<'a>(&'a self, server: &'a str, session: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// The batch interface of a remote vault ([`Vault::batched`]).
///
/// The rewriter first rewrites a message against what the replica already knows
/// ([`cached`](Self::cached), [`cached_entry`](Self::cached_entry): no I/O), collecting what it
/// does not; then it asks the store for all of that at once
/// ([`tokenize_batch`](Self::tokenize_batch), [`resolve_batch`](Self::resolve_batch): one
/// round trip each, blocking the calling thread) and rewrites again with the answers. A message
/// whose values are all known costs no round trip.
pub trait Batched: Send + Sync {
    /// The placeholder of `value` in `scope` when this replica knows it and knows that `origin`
    /// is already recorded among its origins; no I/O.
    fn cached(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Option<Placeholder>;
    /// What `placeholder` stands for, when this replica may answer without the store: it knows
    /// the value and the store's origins are not needed fresh. No I/O.
    fn cached_entry(&self, scope: &ScopeId, placeholder: &Placeholder) -> Option<Entry>;
    /// [`Vault::tokenize`] for every item, from `origin`, in one round trip.
    fn tokenize_batch(
        &self,
        scope: &ScopeId,
        origin: &str,
        items: &[(Kind, Secret)],
    ) -> Result<Vec<Tokenized>>;
    /// [`Vault::resolve`] for every placeholder in one round trip, origins as the store has them.
    fn resolve_batch(&self, scope: &ScopeId, placeholders: &[Placeholder]) -> Result<Vec<Option<Entry>>>;
}

impl<V: Vault + ?Sized> Vault for Arc<V> {
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized> {
        (**self).tokenize(scope, kind, value, origin)
    }
    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>> {
        (**self).resolve(scope, placeholder)
    }
    fn sweep(&self) -> usize {
        (**self).sweep()
    }
    fn batched(&self) -> Option<&dyn Batched> {
        (**self).batched()
    }
    fn healthy(&self) -> bool {
        (**self).healthy()
    }
    fn sessions(&self) -> Option<Arc<dyn SessionStore>> {
        (**self).sessions()
    }
}
