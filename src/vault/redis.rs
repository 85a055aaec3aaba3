//! The Redis vault: one vault shared by every gateway replica; see [`RedisVault`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::OnceCell;

use futures_util::future::BoxFuture;

use super::{Batched, Entry, Placeholder, ScopeId, Secret, SessionStore, SharedSession, Tokenized, Vault};
use crate::detect::Kind;
use crate::error::{Error, Result};

/// The vault key: 32 secret bytes from which the lookup (HMAC-SHA256) and sealing
/// (AES-256-GCM) keys are derived. Every replica of one deployment needs the same key; losing it
/// makes every value in Redis unreadable (placeholders issued so far stop resolving).
#[derive(Clone)]
pub struct VaultKey([u8; 32]);

impl VaultKey {
    /// Parses 64 hex digits. The error never quotes the input.
    pub fn from_hex(s: &str) -> std::result::Result<VaultKey, String> {
        let s = s.trim();
        let bytes = hex::decode(s).map_err(|_| "the vault key is not hex".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!("the vault key must be 32 bytes (64 hex digits), not {}", b.len())
        })?;
        Ok(VaultKey(key))
    }
    /// A fresh random key (tests, throwaway deployments).
    pub fn random() -> VaultKey {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system's random source works");
        VaultKey(key)
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey(<redacted>)")
    }
}

/// Builder for [`RedisVault`].
#[derive(Debug, Clone)]
pub struct RedisVaultBuilder {
    url: String,
    key: VaultKey,
    prefix: String,
    idle_ttl: Duration,
    tombstone_ttl: Duration,
    max_entries_per_scope: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    fresh_origins: bool,
    cluster: bool,
}

impl RedisVaultBuilder {
    /// Talks to a Redis Cluster: the URL is one of its nodes (the others are discovered), and
    /// commands follow the cluster's slot map (`MOVED`/`ASK`). Default: false (one node, or a
    /// proxy in front of a cluster).
    pub fn cluster(mut self, yes: bool) -> Self {
        self.cluster = yes;
        self
    }
    /// Prefix of every key the vault writes. Default: `mcp-pii`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }
    /// Idle time after which a scope's entries expire in Redis (refreshed on use). Default: 1h.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }
    /// How long a scope's numbering outlives its entries, so that a scope that comes back never
    /// reissues a number (as the memory vault's tombstones). Default: 24h.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.tombstone_ttl = ttl;
        self
    }
    /// Most entries one scope may hold (all kinds together), enforced atomically. Default:
    /// 100 000.
    pub fn max_entries_per_scope(mut self, n: usize) -> Self {
        self.max_entries_per_scope = n;
        self
    }
    /// Time to connect (and to reconnect). Default: 2s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Time one round trip may take before the message is withheld. Default: 500ms.
    pub fn command_timeout(mut self, d: Duration) -> Self {
        self.command_timeout = d;
        self
    }
    /// Whether restoring reads every placeholder's origins fresh from Redis (one round trip per
    /// message with placeholders), so that a flow decision sees origins other replicas added.
    /// Turn it off only when no flow policy reads origins. Default: true.
    pub fn fresh_origins(mut self, yes: bool) -> Self {
        self.fresh_origins = yes;
        self
    }

    /// Builds the vault. Must be called inside a tokio runtime (the connection and the health
    /// check run on it). Connects lazily: an unreachable Redis is not an error here, it makes
    /// [`Vault::healthy`] false and every message that needs the store is withheld until it is
    /// back.
    pub fn build(self) -> Result<RedisVault> {
        let bad_url = |e: redis::RedisError| {
            Error::config(vec![format!(
                "vault.url: not a Redis URL ({:?}); expected redis://host:port or rediss://host:port",
                e.kind()
            )])
        };
        let client = if self.cluster {
            Client::Cluster(
                redis::cluster::ClusterClientBuilder::new(vec![self.url.as_str()])
                    .connection_timeout(self.connect_timeout)
                    .response_timeout(self.command_timeout)
                    .retries(1)
                    .build()
                    .map_err(bad_url)?,
            )
        } else {
            Client::Single(redis::Client::open(self.url.as_str()).map_err(bad_url)?)
        };
        let handle = Handle::try_current()
            .map_err(|_| Error::internal("the Redis vault must be built inside a tokio runtime"))?;
        let inner = Arc::new(Inner {
            addr: redacted_addr(&self.url),
            client,
            conn: OnceCell::new(),
            handle,
            keys: Keys::new(&self.key),
            scopes: DashMap::new(),
            healthy: AtomicBool::new(true),
            cfg: self,
        });
        spawn_health_check(Arc::downgrade(&inner));
        Ok(RedisVault { inner })
    }
}

/// A vault whose placeholders live in Redis (or Valkey), shared by every replica of a gateway.
///
/// Nothing in Redis reveals a value or a scope: a value is looked up by
/// HMAC-SHA256(key, scope, kind, value), stored sealed with AES-256-GCM (random nonce; the
/// scope and placeholder as associated data, so a sealed value cannot be moved to another
/// placeholder), and scopes appear only as HMAC fingerprints. Origins (server names) are stored
/// as they are.
///
/// All keys of one scope share one Redis Cluster hash tag (`{fingerprint}`), so a scope's
/// keys live in one slot and the minting script runs on one node.
///
/// Numbering is atomic across replicas: every new value of one message is minted by one Lua
/// script (one round trip), two replicas minting the same value at once get the same
/// placeholder, and a scope's counters outlive its entries by `tombstone_ttl`, so numbers are
/// not reissued when a scope comes back. Each replica caches what never changes once minted
/// (value ⇄ placeholder within a scope), so values it already knows cost no round trip.
///
/// Round trips block the calling thread with [`tokio::task::block_in_place`]: the vault needs
/// tokio's multi-thread runtime (on a current-thread runtime every round trip fails closed).
#[derive(Clone)]
pub struct RedisVault {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisVault")
            .field("addr", &self.inner.addr)
            .field("prefix", &self.inner.cfg.prefix)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// `host:port` of the URL, without credentials: what errors and logs may name.
    addr: String,
    client: Client,
    conn: OnceCell<Conn>,
    handle: Handle,
    keys: Keys,
    scopes: DashMap<ScopeId, Arc<ScopeCache>>,
    healthy: AtomicBool,
    cfg: RedisVaultBuilder,
}

#[allow(clippy::large_enum_variant)] // one per vault
enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A connection that reconnects by itself: to one node, or to a cluster (following its slots).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// What one replica knows of one scope. Entries are never changed once minted, so they are
/// only added (and dropped with the scope when it idles out).
struct ScopeCache {
    /// The scope's fingerprint: the Redis hash tag of its keys.
    tag: String,
    state: Mutex<CacheState>,
}

struct CacheState {
    by_value: HashMap<Kind, HashMap<Arc<str>, u64>>,
    by_placeholder: HashMap<Placeholder, Known>,
    /// Highest number seen per kind: the guess for the next one (see `tokenize_batch`).
    high: HashMap<Kind, u64>,
    last_access: Instant,
    /// When Redis last saw this scope used (its TTLs refreshed).
    last_touch: Instant,
}

struct Known {
    value: Secret,
    /// Origins known to be recorded in Redis.
    origins: Vec<Arc<str>>,
}

impl ScopeCache {
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The scope's Redis keys.
struct ScopeKeys {
    /// Hash: lookup HMAC → number.
    lookup: String,
    /// Hash: `KIND_N` → sealed value.
    sealed: String,
    /// Hash: `KIND_N` → origins, one per line.
    origins: String,
    /// Hash: kind → highest number issued.
    counters: String,
}

impl Inner {
    fn keys_for(&self, tag: &str) -> ScopeKeys {
        let p = &self.cfg.prefix;
        ScopeKeys {
            lookup: format!("{p}:{{{tag}}}:l"),
            sealed: format!("{p}:{{{tag}}}:s"),
            origins: format!("{p}:{{{tag}}}:o"),
            counters: format!("{p}:{{{tag}}}:c"),
        }
    }

    fn scope(&self, scope: &ScopeId) -> Arc<ScopeCache> {
        if let Some(c) = self.scopes.get(scope) {
            return c.clone();
        }
        self.scopes
            .entry(scope.clone())
            .or_insert_with(|| {
                let now = Instant::now();
                Arc::new(ScopeCache {
                    tag: self.keys.scope_tag(scope),
                    state: Mutex::new(CacheState {
                        by_value: HashMap::new(),
                        by_placeholder: HashMap::new(),
                        high: HashMap::new(),
                        last_access: now,
                        last_touch: now,
                    }),
                })
            })
            .clone()
    }

    fn idle_ms(&self) -> u64 {
        u64::try_from(self.cfg.idle_ttl.as_millis()).unwrap_or(u64::MAX)
    }
    fn counter_ms(&self) -> u64 {
        u64::try_from((self.cfg.idle_ttl + self.cfg.tombstone_ttl).as_millis()).unwrap_or(u64::MAX)
    }

    async fn conn(&self) -> Result<Conn> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let connect = async {
                    match &self.client {
                        Client::Single(client) => {
                            let cfg = ConnectionManagerConfig::new()
                                .set_connection_timeout(Some(self.cfg.connect_timeout))
                                .set_response_timeout(Some(self.cfg.command_timeout))
                                .set_number_of_retries(1);
                            ConnectionManager::new_with_config(client.clone(), cfg)
                                .await
                                .map(Conn::Single)
                        }
                        Client::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
                    }
                };
                match tokio::time::timeout(self.cfg.connect_timeout, connect).await {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => Err(self.unavailable(&e)),
                    Err(_) => Err(Error::vault_unavailable(format!(
                        "could not connect to Redis at {} within {:?}",
                        self.addr, self.cfg.connect_timeout
                    ))),
                }
            })
            .await;
        match conn {
            Ok(c) => Ok(c.clone()),
            Err(e) => {
                self.healthy.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn unavailable(&self, e: &redis::RedisError) -> Error {
        // The error's text can carry a server reply; name only its kind.
        Error::vault_unavailable(format!("Redis at {} failed ({:?})", self.addr, e.kind()))
    }

    /// Runs one round trip against Redis with the command timeout, recording health.
    async fn round_trip<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(self.cfg.command_timeout, f(conn)).await {
            Ok(Ok(v)) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) if e.code() == Some("SCOPE_FULL") => {
                Err(Error::scope_full(self.cfg.max_entries_per_scope))
            }
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
                {
                    self.healthy.store(false, Ordering::Relaxed);
                }
                Err(self.unavailable(&e))
            }
            Err(_) => {
                self.healthy.store(false, Ordering::Relaxed);
                Err(Error::vault_unavailable(format!(
                    "Redis at {} did not answer within {:?}",
                    self.addr, self.cfg.command_timeout
                )))
            }
        }
    }

    /// Waits for `fut` on this thread (see [`RedisVault`]).
    fn block<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match Handle::try_current() {
            Ok(h) => match h.runtime_flavor() {
                RuntimeFlavor::CurrentThread => Err(Error::vault_unavailable(
                    "the Redis vault needs tokio's multi-thread runtime; a current-thread runtime cannot wait for Redis",
                )),
                _ => tokio::task::block_in_place(|| h.block_on(fut)),
            },
            Err(_) => self.handle.block_on(fut),
        }
    }

    /// Refreshes the scope's TTLs in Redis in the background when values are served from the
    /// cache for a while (so a scope in steady use does not expire there).
    fn touch(self: &Arc<Self>, cache: &ScopeCache, st: &mut CacheState, now: Instant) {
        if now.duration_since(st.last_touch) < self.cfg.idle_ttl / 8 {
            return;
        }
        st.last_touch = now;
        let Some(conn) = self.conn.get().cloned() else {
            return;
        };
        let keys = self.keys_for(&cache.tag);
        let (idle, counter) = (self.idle_ms(), self.counter_ms());
        self.handle.spawn(async move {
            let mut conn = conn;
            let mut p = redis::pipe();
            for k in [&keys.lookup, &keys.sealed, &keys.origins] {
                p.cmd("PEXPIRE").arg(k).arg(idle).ignore();
            }
            p.cmd("PEXPIRE").arg(&keys.counters).arg(counter).ignore();
            // Best effort: a failure shows on the next round trip.
            let _: redis::RedisResult<()> = p.query_async(&mut conn).await;
        });
    }
}

fn spawn_health_check(inner: Weak<Inner>) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let handle = strong.handle.clone();
    drop(strong);
    handle.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let ok = inner
                .round_trip(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
                .await
                .is_ok();
            inner.healthy.store(ok, Ordering::Relaxed);
        }
    });
}

/// `host:port` of a Redis URL: the part that may appear in logs and errors.
fn redacted_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("").to_owned()
}

/// The derived keys.
struct Keys {
    lookup: hmac::Key,
    seal: LessSafeKey,
    rng: SystemRandom,
}

impl Keys {
    fn new(master: &VaultKey) -> Keys {
        let m = hmac::Key::new(hmac::HMAC_SHA256, &master.0);
        let lookup = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&m, b"mcp-pii-gateway vault lookup v1").as_ref(),
        );
        let seal = hmac::sign(&m, b"mcp-pii-gateway vault seal v1");
        let seal = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, seal.as_ref()).expect("HMAC-SHA256 gives 32 bytes"),
        );
        Keys {
            lookup,
            seal,
            rng: SystemRandom::new(),
        }
    }

    /// HMAC over length-prefixed parts, the first 16 bytes in hex.
    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.lookup);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        hex::encode(&ctx.sign().as_ref()[..16])
    }

    fn scope_tag(&self, scope: &ScopeId) -> String {
        self.mac(&[b"scope", scope.client().as_bytes(), scope.key().as_bytes()])
    }

    fn lookup(&self, tag: &str, kind: &Kind, value: &str) -> String {
        self.mac(&[
            b"value",
            tag.as_bytes(),
            kind.as_str().as_bytes(),
            value.as_bytes(),
        ])
    }

    fn seal(&self, tag: &str, field: &str, value: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::internal("the system's random source failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + value.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(value.as_bytes());
        let mut body = out.split_off(NONCE_LEN);
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(tag, field), &mut body)
            .map_err(|_| Error::internal("sealing a vault value failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, tag: &str, field: &str, blob: &[u8]) -> Result<Secret> {
        let bad = || {
            Error::vault_unavailable(format!(
                "the sealed value of {field} in Redis does not open with this vault key (wrong key, or the data was altered)"
            ))
        };
        if blob.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, body) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut body = body.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, aad(tag, field), &mut body)
            .map_err(|_| bad())?;
        let s = std::str::from_utf8(plain).map_err(|_| bad())?;
        Ok(Secret::new(s))
    }
}

fn aad(tag: &str, field: &str) -> Aad<Vec<u8>> {
    let mut v = Vec::with_capacity(tag.len() + field.len() + 1);
    v.extend_from_slice(tag.as_bytes());
    v.push(0);
    v.extend_from_slice(field.as_bytes());
    Aad::from(v)
}

/// Mints (or finds) every value of a message in one step: see the module docs of
/// `RedisVault`. KEYS: lookup, sealed, origins, counters. ARGV: idle TTL (ms), counter TTL
/// (ms), max entries, origin, the number of floors, the floors as (kind, highest number this
/// replica knows) pairs, then per value: lookup HMAC, kind, guessed number, value sealed for
/// the guessed number. Returns per value: number, minted (0/1), still to seal (0/1), origins
/// (one per line). The floors keep a scope's numbering above what replicas issued even if Redis
/// lost the scope's counters.
const MINT: &str = r#"
local origin = ARGV[4]
local floors = tonumber(ARGV[5])
local first = 6 + 2 * floors
for i = 6, first - 1, 2 do
  local c = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
  local floor = tonumber(ARGV[i + 1])
  if c < floor then redis.call('HSET', KEYS[4], ARGV[i], floor) end
end
local fresh, new = {}, 0
for i = first, #ARGV, 4 do
  local h = ARGV[i]
  if fresh[h] == nil and redis.call('HEXISTS', KEYS[1], h) == 0 then
    fresh[h] = true
    new = new + 1
  end
end
if new > 0 and redis.call('HLEN', KEYS[1]) + new > tonumber(ARGV[3]) then
  return redis.error_reply('SCOPE_FULL the scope holds its maximum of vault entries')
end
local out = {}
for i = first, #ARGV, 4 do
  local h, kind, guess, sealed = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local n = redis.call('HGET', KEYS[1], h)
  local minted = '0'
  if not n then
    n = tostring(redis.call('HINCRBY', KEYS[4], kind, 1))
    redis.call('HSET', KEYS[1], h, n)
    minted = '1'
  end
  local field = kind .. '_' .. n
  local unsealed = '0'
  if redis.call('HEXISTS', KEYS[2], field) == 0 then
    if n == guess and sealed ~= '' then
      redis.call('HSET', KEYS[2], field, sealed)
    else
      unsealed = '1'
    end
  end
  local list = redis.call('HGET', KEYS[3], field)
  if not list then
    list = origin
    redis.call('HSET', KEYS[3], field, list)
  else
    local found = false
    for o in string.gmatch(list, '[^\n]+') do
      if o == origin then found = true break end
    end
    if not found then
      list = list .. '\n' .. origin
      redis.call('HSET', KEYS[3], field, list)
    end
  end
  out[#out + 1] = n
  out[#out + 1] = minted
  out[#out + 1] = unsealed
  out[#out + 1] = list
end
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[1]) end
redis.call('PEXPIRE', KEYS[4], ARGV[2])
return out
"#;

/// Redis no longer agrees with what this replica issued: its data was lost (a restart without
/// persistence, a flush). Refuse rather than restore or issue a wrong value.
fn lost(ph: &Placeholder) -> Error {
    Error::vault_unavailable(format!(
        "Redis no longer holds what this replica issued as {ph} (was its data lost or flushed?); \
         nothing was released; restart the gateway replicas to start from what Redis holds"
    ))
}

fn split_origins(list: &str) -> Vec<Arc<str>> {
    list.split('\n')
        .filter(|o| !o.is_empty())
        .map(Arc::from)
        .collect()
}

impl RedisVault {
    /// A builder for the vault at `url` (`redis://` or `rediss://`) with `key`.
    pub fn builder(url: &str, key: VaultKey) -> RedisVaultBuilder {
        RedisVaultBuilder {
            url: url.to_owned(),
            key,
            prefix: "mcp-pii".to_owned(),
            idle_ttl: Duration::from_secs(3600),
            tombstone_ttl: Duration::from_secs(24 * 3600),
            max_entries_per_scope: 100_000,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_millis(500),
            fresh_origins: true,
            cluster: false,
        }
    }

    /// Checks that Redis answers now (one round trip), e.g. at startup.
    pub async fn ping(&self) -> Result<()> {
        self.inner
            .round_trip(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Scopes cached by this replica.
    pub fn cached_scopes(&self) -> usize {
        self.inner.scopes.len()
    }

    async fn mint(&self, scope: &ScopeId, origin: &str, items: &[(Kind, Secret)]) -> Result<Vec<Tokenized>> {
        let inner = &self.inner;
        let cache = inner.scope(scope);
        let tag = cache.tag.as_str();
        let keys = inner.keys_for(tag);
        // Guess each new value's number from the highest this replica has seen, and seal it
        // for that number: when nobody else minted in this scope meanwhile (the usual case)
        // the script stores it and one round trip does everything.
        let mut guesses = Vec::with_capacity(items.len());
        let mut floors: Vec<(Kind, u64)> = Vec::new();
        {
            let st = cache.lock();
            for (kind, _) in items {
                if let Some(&h) = st.high.get(kind) {
                    if !floors.iter().any(|(k, _)| k == kind) {
                        floors.push((kind.clone(), h));
                    }
                }
            }
            let mut next: HashMap<&Kind, u64> = HashMap::new();
            let mut seen: HashMap<(&Kind, &str), u64> = HashMap::new();
            for (kind, value) in items {
                let known = st.by_value.get(kind).and_then(|m| m.get(value.expose())).copied();
                let n = match known.or_else(|| seen.get(&(kind, value.expose())).copied()) {
                    Some(n) => n,
                    None => {
                        let n = next
                            .entry(kind)
                            .or_insert_with(|| st.high.get(kind).copied().unwrap_or(0));
                        *n += 1;
                        *n
                    }
                };
                seen.insert((kind, value.expose()), n);
                guesses.push(n);
            }
        }
        let mut args: Vec<Vec<u8>> = Vec::with_capacity(4 + 4 * items.len());
        args.push(inner.idle_ms().to_string().into_bytes());
        args.push(inner.counter_ms().to_string().into_bytes());
        args.push(inner.cfg.max_entries_per_scope.to_string().into_bytes());
        args.push(origin.as_bytes().to_vec());
        args.push(floors.len().to_string().into_bytes());
        for (kind, h) in &floors {
            args.push(kind.as_str().as_bytes().to_vec());
            args.push(h.to_string().into_bytes());
        }
        for ((kind, value), n) in items.iter().zip(&guesses) {
            args.push(inner.keys.lookup(tag, kind, value.expose()).into_bytes());
            args.push(kind.as_str().as_bytes().to_vec());
            args.push(n.to_string().into_bytes());
            args.push(inner.keys.seal(tag, &format!("{kind}_{n}"), value.expose())?);
        }
        let script = redis::Script::new(MINT);
        let reply: Vec<String> = inner
            .round_trip(|mut c| {
                let mut inv = script.prepare_invoke();
                inv.key(&keys.lookup)
                    .key(&keys.sealed)
                    .key(&keys.origins)
                    .key(&keys.counters);
                for a in &args {
                    inv.arg(a.as_slice());
                }
                async move { inv.invoke_async(&mut c).await }
            })
            .await?;
        if reply.len() != 4 * items.len() {
            return Err(Error::vault_unavailable(
                "Redis answered the minting script with a malformed reply",
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        let mut to_seal = Vec::new();
        let mut learned = Vec::with_capacity(items.len());
        for ((kind, value), r) in items.iter().zip(reply.chunks_exact(4)) {
            let n: u64 =
                r[0].parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::vault_unavailable("Redis returned a malformed placeholder number")
                })?;
            let field = format!("{kind}_{n}");
            if r[2] == "1" {
                to_seal.push((field.clone(), inner.keys.seal(tag, &field, value.expose())?));
            }
            learned.push((kind.clone(), value.clone(), n, split_origins(&r[3])));
            out.push(Tokenized {
                placeholder: Placeholder {
                    kind: kind.clone(),
                    n,
                },
                minted: r[1] == "1",
            });
        }
        if !to_seal.is_empty() {
            // Someone else minted in this scope meanwhile: the guess was off; seal for the
            // numbers Redis gave (a second round trip, only in that case).
            let idle = inner.idle_ms();
            inner
                .round_trip(|mut c| {
                    let mut p = redis::pipe();
                    for (field, blob) in &to_seal {
                        p.cmd("HSET")
                            .arg(&keys.sealed)
                            .arg(field)
                            .arg(blob.as_slice())
                            .ignore();
                    }
                    p.cmd("PEXPIRE").arg(&keys.sealed).arg(idle).ignore();
                    async move { p.query_async::<()>(&mut c).await }
                })
                .await?;
        }
        let now = Instant::now();
        let mut st = cache.lock();
        for (kind, value, n, _) in &learned {
            let ph = Placeholder {
                kind: kind.clone(),
                n: *n,
            };
            let known_n = st.by_value.get(kind).and_then(|m| m.get(value.expose())).copied();
            let known_v = st.by_placeholder.get(&ph).map(|k| &k.value);
            if known_n.is_some_and(|m| m != *n) || known_v.is_some_and(|v| v != value) {
                return Err(lost(&ph));
            }
        }
        st.last_access = now;
        st.last_touch = now;
        for (kind, value, n, origins) in learned {
            let high = st.high.entry(kind.clone()).or_insert(0);
            *high = (*high).max(n);
            let value_arc: Arc<str> = Arc::from(value.expose());
            st.by_value.entry(kind.clone()).or_default().insert(value_arc, n);
            st.by_placeholder
                .insert(Placeholder { kind, n }, Known { value, origins });
        }
        Ok(out)
    }

    async fn fetch(&self, scope: &ScopeId, placeholders: &[Placeholder]) -> Result<Vec<Option<Entry>>> {
        let inner = &self.inner;
        let cache = inner.scope(scope);
        let tag = cache.tag.as_str();
        let keys = inner.keys_for(tag);
        let fields: Vec<String> = placeholders
            .iter()
            .map(|p| format!("{}_{}", p.kind, p.n))
            .collect();
        let (idle, counter) = (inner.idle_ms(), inner.counter_ms());
        let (sealed, origins): (Vec<Option<Vec<u8>>>, Vec<Option<String>>) = inner
            .round_trip(|mut c| {
                let mut p = redis::pipe();
                p.cmd("HMGET").arg(&keys.sealed).arg(&fields);
                p.cmd("HMGET").arg(&keys.origins).arg(&fields);
                for k in [&keys.lookup, &keys.sealed, &keys.origins] {
                    p.cmd("PEXPIRE").arg(k).arg(idle).ignore();
                }
                p.cmd("PEXPIRE").arg(&keys.counters).arg(counter).ignore();
                async move { p.query_async(&mut c).await }
            })
            .await?;
        if sealed.len() != placeholders.len() || origins.len() != placeholders.len() {
            return Err(Error::vault_unavailable(
                "Redis answered a lookup with a malformed reply",
            ));
        }
        let mut out = Vec::with_capacity(placeholders.len());
        let mut learned = Vec::new();
        for ((ph, field), (blob, list)) in placeholders
            .iter()
            .zip(&fields)
            .zip(sealed.into_iter().zip(origins))
        {
            match blob {
                None => out.push(None),
                Some(blob) => {
                    let value = inner.keys.open(tag, field, &blob)?;
                    let origins = list.as_deref().map(split_origins).unwrap_or_default();
                    learned.push((ph.clone(), value.clone(), origins.clone()));
                    out.push(Some(Entry {
                        value,
                        kind: ph.kind.clone(),
                        origins,
                    }));
                }
            }
        }
        let now = Instant::now();
        let mut st = cache.lock();
        for (ph, value, _) in &learned {
            if st.by_placeholder.get(ph).is_some_and(|k| k.value != *value) {
                return Err(lost(ph));
            }
        }
        st.last_access = now;
        st.last_touch = now;
        for (ph, value, origins) in learned {
            let high = st.high.entry(ph.kind.clone()).or_insert(0);
            *high = (*high).max(ph.n);
            st.by_value
                .entry(ph.kind.clone())
                .or_default()
                .insert(Arc::from(value.expose()), ph.n);
            st.by_placeholder.insert(ph, Known { value, origins });
        }
        Ok(out)
    }
}

impl Vault for RedisVault {
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized> {
        if let Some(placeholder) = self.cached(scope, kind, value, origin) {
            return Ok(Tokenized {
                placeholder,
                minted: false,
            });
        }
        let items = [(kind.clone(), Secret::new(value))];
        let mut out = self.inner.block(self.mint(scope, origin, &items))?;
        out.pop().ok_or_else(|| {
            Error::vault_unavailable("Redis answered the minting script with a malformed reply")
        })
    }

    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>> {
        // The value never changes once minted: a cached one answers (origins as last seen).
        if let Some(cache) = self.inner.scopes.get(scope).map(|c| c.clone()) {
            let mut st = cache.lock();
            st.last_access = Instant::now();
            if let Some(k) = st.by_placeholder.get(placeholder) {
                return Ok(Some(Entry {
                    value: k.value.clone(),
                    kind: placeholder.kind.clone(),
                    origins: k.origins.clone(),
                }));
            }
        }
        let mut out = self
            .inner
            .block(self.fetch(scope, std::slice::from_ref(placeholder)))?;
        Ok(out.pop().flatten())
    }

    fn sweep(&self) -> usize {
        let ttl = self.inner.cfg.idle_ttl;
        let now = Instant::now();
        let before = self.inner.scopes.len();
        self.inner
            .scopes
            .retain(|_, c| now.duration_since(c.lock().last_access) < ttl);
        before.saturating_sub(self.inner.scopes.len())
    }

    fn batched(&self) -> Option<&dyn Batched> {
        Some(self)
    }

    fn healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    fn sessions(&self) -> Option<Arc<dyn SessionStore>> {
        Some(Arc::new(self.clone()))
    }
}

impl RedisVault {
    /// The Redis key of a session: its id is a bearer credential toward the gateway, so only
    /// its fingerprint is stored.
    fn session_key(&self, server: &str, session: &str) -> (String, String) {
        let tag = self
            .inner
            .keys
            .mac(&[b"session", server.as_bytes(), session.as_bytes()]);
        (format!("{}:session:{tag}", self.inner.cfg.prefix), tag)
    }
}

/// Sessions are stored sealed (the upstream's session id is a credential too), with the
/// session's fingerprint as associated data.
impl SessionStore for RedisVault {
    fn get<'a>(
        &'a self,
        server: &'a str,
        session: &'a str,
        idle: Duration,
    ) -> BoxFuture<'a, Result<Option<SharedSession>>> {
        Box::pin(async move {
            let (key, tag) = self.session_key(server, session);
            let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
            let (blob, _): (Option<Vec<u8>>, i64) = self
                .inner
                .round_trip(|mut c| {
                    let mut p = redis::pipe();
                    p.cmd("GET").arg(&key);
                    p.cmd("PEXPIRE").arg(&key).arg(ms);
                    async move { p.query_async(&mut c).await }
                })
                .await?;
            let Some(blob) = blob else {
                return Ok(None);
            };
            let plain = self.inner.keys.open(&tag, "session", &blob)?;
            let v: serde_json::Value = serde_json::from_str(plain.expose())
                .map_err(|_| Error::vault_unavailable("a shared session record in Redis is malformed"))?;
            match (
                v.get("u").and_then(|u| u.as_str()),
                v.get("c").and_then(|c| c.as_str()),
            ) {
                (Some(u), Some(c)) => Ok(Some(SharedSession {
                    upstream_id: u.to_owned(),
                    client: c.to_owned(),
                })),
                _ => Err(Error::vault_unavailable(
                    "a shared session record in Redis is malformed",
                )),
            }
        })
    }

    fn put<'a>(
        &'a self,
        server: &'a str,
        session: &'a str,
        value: &'a SharedSession,
        idle: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (key, tag) = self.session_key(server, session);
            let plain = serde_json::json!({"u": value.upstream_id, "c": value.client}).to_string();
            let blob = self.inner.keys.seal(&tag, "session", &plain)?;
            let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
            self.inner
                .round_trip(|mut c| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(blob.as_slice())
                        .arg("PX")
                        .arg(ms)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await
        })
    }

    fn remove<'a>(&'a self, server: &'a str, session: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (key, _) = self.session_key(server, session);
            self.inner
                .round_trip(
                    |mut c| async move { redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await },
                )
                .await
        })
    }
}

impl Batched for RedisVault {
    fn cached(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Option<Placeholder> {
        let cache = self.inner.scopes.get(scope).map(|c| c.clone())?;
        let mut st = cache.lock();
        let n = *st.by_value.get(kind)?.get(value)?;
        let placeholder = Placeholder {
            kind: kind.clone(),
            n,
        };
        let known = st.by_placeholder.get(&placeholder)?;
        if !known.origins.iter().any(|o| &**o == origin) {
            return None;
        }
        let now = Instant::now();
        st.last_access = now;
        self.inner.touch(&cache, &mut st, now);
        Some(placeholder)
    }

    fn cached_entry(&self, scope: &ScopeId, placeholder: &Placeholder) -> Option<Entry> {
        if self.inner.cfg.fresh_origins {
            return None;
        }
        let cache = self.inner.scopes.get(scope).map(|c| c.clone())?;
        let mut st = cache.lock();
        let now = Instant::now();
        st.last_access = now;
        let entry = st.by_placeholder.get(placeholder).map(|k| Entry {
            value: k.value.clone(),
            kind: placeholder.kind.clone(),
            origins: k.origins.clone(),
        })?;
        self.inner.touch(&cache, &mut st, now);
        Some(entry)
    }

    fn tokenize_batch(
        &self,
        scope: &ScopeId,
        origin: &str,
        items: &[(Kind, Secret)],
    ) -> Result<Vec<Tokenized>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.block(self.mint(scope, origin, items))
    }

    fn resolve_batch(&self, scope: &ScopeId, placeholders: &[Placeholder]) -> Result<Vec<Option<Entry>>> {
        if placeholders.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.block(self.fetch(scope, placeholders))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_parsing_never_quotes_the_input() {
        assert!(VaultKey::from_hex(&"ab".repeat(32)).is_ok());
        let e = VaultKey::from_hex("secret-looking-input").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        let e = VaultKey::from_hex(&"ab".repeat(16)).unwrap_err();
        assert!(e.contains("32 bytes"), "{e}");
        assert_eq!(format!("{:?}", VaultKey::random()), "VaultKey(<redacted>)");
    }

    #[test]
    fn addresses_lose_their_credentials() {
        assert_eq!(redacted_addr("redis://user:pw@cache:6380/0"), "cache:6380");
        assert_eq!(redacted_addr("rediss://:p%40ss@10.0.0.1:6379"), "10.0.0.1:6379");
        assert_eq!(redacted_addr("redis://localhost"), "localhost");
    }

    #[test]
    fn sealed_values_open_only_for_their_placeholder_and_key() {
        let keys = Keys::new(&VaultKey::random());
        let blob = keys.seal("tag", "EMAIL_1", "ana@example.org").unwrap();
        assert!(!blob.windows(3).any(|w| w == b"ana"));
        assert_eq!(
            keys.open("tag", "EMAIL_1", &blob).unwrap().expose(),
            "ana@example.org"
        );
        assert!(keys.open("tag", "EMAIL_2", &blob).is_err());
        assert!(keys.open("other", "EMAIL_1", &blob).is_err());
        assert!(Keys::new(&VaultKey::random())
            .open("tag", "EMAIL_1", &blob)
            .is_err());
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(keys.open("tag", "EMAIL_1", &flipped).is_err());
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        let keys = Keys::new(&VaultKey::random());
        let a = keys.scope_tag(&ScopeId::new("ab", "c"));
        let b = keys.scope_tag(&ScopeId::new("a", "bc"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        let email = Kind::email();
        assert_ne!(keys.lookup("t", &email, "x"), keys.lookup("u", &email, "x"));
        assert_eq!(keys.lookup("t", &email, "x"), keys.lookup("t", &email, "x"));
    }
}
