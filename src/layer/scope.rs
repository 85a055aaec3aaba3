//! Who is calling and whose placeholders these are: [`ScopeLayer`].
//!
//! The client is the one whose bearer token's SHA-256 is in the [`Clients`] table, or
//! `anonymous` when the table is empty. The scope key is the configured scope header's value
//! (`hdr:<value>`), else the `Mcp-Session-Id` header (`session:<id>`, session-based protocol),
//! else the client's default scope (`default`, stateless requests). The result goes into the
//! request's extensions as a [`ClientScope`].
//!
//! Rejections are JSON-RPC error bodies (`id: null`): 401 for a missing or unknown token when
//! clients are configured, 403 when the client may not use this server, 400 when the scope
//! header is required and missing or malformed, 429 when a [`ScopeLimiter`] is set and the
//! client already holds its maximum of distinct scope-header keys.
//!
//! Put it outermost: the trace and rewrite layers read the [`ClientScope`] it inserts. A proxy
//! that puts one `ScopeLayer` in front of all its servers leaves [`ScopeLayer::server`] unset
//! and checks [`ClientScope::may_use`] when it routes.
//!
//! ```
//! use mcp_pii_gateway::layer::scope::{ClientScope, Clients, ScopeLayer};
//! use mcp_pii_gateway::layer::body::{full, Body};
//! use tower::{ServiceBuilder, ServiceExt};
//! # tokio_test_block(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ScopeLayer::new().header(http::HeaderName::from_static("x-agent-run")))
//!     .service_fn(|req: http::Request<Body>| async move {
//!         let scope = req.extensions().get::<ClientScope>().expect("set by ScopeLayer");
//!         Ok::<_, std::convert::Infallible>(http::Response::new(full(scope.scope.key().to_owned())))
//!     });
//! let req = http::Request::builder().header("x-agent-run", "run-1").body(full("")).unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{Either, Ready};
use http::{HeaderName, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::body::Body;
use super::response::http_error;
use crate::error::{Error, Result};
use crate::jsonrpc::{ACCESS_DENIED, INVALID_REQUEST};
use crate::vault::ScopeId;

/// The `Mcp-Session-Id` header.
pub const MCP_SESSION_ID: &str = "mcp-session-id";
/// Longest accepted scope header value, in bytes.
pub const MAX_SCOPE_KEY: usize = 256;

/// Where a request's scope key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeSource {
    /// The configured scope header.
    Header,
    /// The `Mcp-Session-Id` header.
    Session,
    /// Neither: the client's default scope.
    Default,
}

/// The caller and its scope, inserted into request extensions by [`ScopeLayer`].
#[derive(Debug, Clone)]
pub struct ClientScope {
    /// The client's name.
    pub client: Arc<str>,
    /// The scope.
    pub scope: ScopeId,
    /// Where the scope key came from.
    pub source: ScopeSource,
    /// The servers this client may use (`None`: all), for stacks that check per server
    /// themselves instead of with [`ScopeLayer::server`].
    pub servers: Option<Arc<[Arc<str>]>>,
}

impl ClientScope {
    /// True when the client may use `server`.
    pub fn may_use(&self, server: &str) -> bool {
        self.servers
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| &**x == server))
    }
    /// The same scope with the client's server allow-list.
    pub fn with_servers(mut self, servers: Option<Arc<[Arc<str>]>>) -> ClientScope {
        self.servers = servers;
        self
    }
    /// The scope of `client` for a scope-header value.
    pub fn from_header(client: &str, value: &str) -> ClientScope {
        ClientScope::make(client, &format!("hdr:{value}"), ScopeSource::Header)
    }
    /// The scope of `client` for a downstream MCP session id.
    pub fn from_session(client: &str, session_id: &str) -> ClientScope {
        ClientScope::make(client, &format!("session:{session_id}"), ScopeSource::Session)
    }
    /// The client's default scope.
    pub fn default_for(client: &str) -> ClientScope {
        ClientScope::make(client, "default", ScopeSource::Default)
    }
    fn make(client: &str, key: &str, source: ScopeSource) -> ClientScope {
        ClientScope {
            client: Arc::from(client),
            scope: ScopeId::new(client, key),
            source,
            servers: None,
        }
    }
}

/// Request extension: the caller and scope were already decided by another [`ScopeLayer`] in
/// this process (the aggregated endpoint's, which relays to each server's stack). A stack's
/// `ScopeLayer` takes it as it is (no second authentication, and the scope spans servers), and
/// only checks that the client may use this stack's server. Extensions never come from the
/// network, so no client can set it.
#[derive(Debug, Clone)]
pub struct Delegated(pub ClientScope);

/// One configured client.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// Its name.
    pub name: Arc<str>,
    /// The servers it may use; `None`: all.
    pub servers: Option<Arc<[Arc<str>]>>,
}

impl ClientInfo {
    /// True when the client may use `server`.
    pub fn may_use(&self, server: &str) -> bool {
        self.servers
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| &**x == server))
    }
}

/// The clients table: lower-case hex SHA-256 of a bearer token → client. Empty means every
/// caller is `anonymous` and no token is required.
#[derive(Clone, Default)]
pub struct Clients {
    by_hash: HashMap<String, ClientInfo>,
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Token hashes are credentials' fingerprints: show names only.
        f.debug_list()
            .entries(self.by_hash.values().map(|c| &c.name))
            .finish()
    }
}

impl Clients {
    /// An empty table.
    pub fn new() -> Clients {
        Clients::default()
    }
    /// Adds a client by the hex SHA-256 of its token; `servers: None` allows every server.
    /// Fails for a hash that is not 64 hex digits or is already in the table.
    pub fn with_client(
        mut self,
        name: &str,
        token_sha256_hex: &str,
        servers: Option<Vec<String>>,
    ) -> Result<Clients> {
        let hash = token_sha256_hex.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::config(vec![format!(
                "client {name}: token_sha256 must be 64 hex digits"
            )]));
        }
        if self.by_hash.contains_key(&hash) {
            return Err(Error::config(vec![format!(
                "client {name}: token_sha256 is already used by another client"
            )]));
        }
        let info = ClientInfo {
            name: Arc::from(name),
            servers: servers.map(|s| s.iter().map(|x| Arc::from(x.as_str())).collect()),
        };
        self.by_hash.insert(hash, info);
        Ok(self)
    }
    /// True when no client is configured.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
    /// The client whose token is `token`.
    pub fn lookup(&self, token: &str) -> Option<&ClientInfo> {
        self.by_hash.get(&sha256_hex(token.as_bytes()))
    }
}

/// Lower-case hex SHA-256 of `bytes` (how tokens are configured: `token_sha256`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Caps the distinct scope-header keys each client holds at once.
///
/// Every scope key a client sends in the scope header is remembered with the time it was last
/// used; a key unused for `idle` (set it to the vault's `idle_ttl`) is forgotten. Since a key is
/// touched by every request in its scope and the vault only by those that carry PII, a key is
/// forgotten here no earlier than its vault scope expires: so a client never holds more than
/// `max` live header-keyed vault scopes. A request with a new key when the client already holds
/// `max` is refused (429, see [`ScopeLayer::limit`]) before anything is created for it.
///
/// Memory: at most `max` keys (each at most [`MAX_SCOPE_KEY`] bytes) per client; clients are
/// the configured ones plus `anonymous`. Share one limiter between the stacks of every server
/// (a scope spans servers).
pub struct ScopeLimiter {
    max: usize,
    idle: Duration,
    clients: Mutex<HashMap<Arc<str>, HeldKeys>>,
}

/// One client's scope keys and when each was last used.
type HeldKeys = HashMap<Box<str>, Instant>;

impl fmt::Debug for ScopeLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Scope keys are the clients' run ids: never shown, counts only.
        f.debug_struct("ScopeLimiter")
            .field("max", &self.max)
            .field("idle", &self.idle)
            .field("keys", &self.held())
            .finish()
    }
}

/// Why [`ScopeLimiter::admit`] refused a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeCapReached {
    /// The cap.
    pub max: usize,
    /// When the client's least recently used key expires (a hint for `Retry-After`).
    pub retry_after: Duration,
}

impl ScopeLimiter {
    /// At most `max` keys per client (at least 1), each forgotten after `idle` without use.
    pub fn new(max: usize, idle: Duration) -> ScopeLimiter {
        ScopeLimiter {
            max: max.max(1),
            idle,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many keys are held, all clients together.
    pub fn held(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, HeldKeys>> {
        // Every mutation leaves the maps consistent: recover from a poisoned lock.
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a use of `key` by `client`: `Ok` when the key is already held or fits under the
    /// cap (it is then held), `Err` when it is new and the client holds `max` live keys.
    pub fn admit(&self, client: &Arc<str>, key: &str) -> std::result::Result<(), ScopeCapReached> {
        self.admit_at(client, key, Instant::now())
    }

    fn admit_at(
        &self,
        client: &Arc<str>,
        key: &str,
        now: Instant,
    ) -> std::result::Result<(), ScopeCapReached> {
        let mut clients = self.lock();
        let keys = match clients.get_mut(client) {
            Some(k) => k,
            None => clients.entry(client.clone()).or_default(),
        };
        if let Some(last) = keys.get_mut(key) {
            *last = now;
            return Ok(());
        }
        if keys.len() >= self.max {
            // Only at the cap: forget the keys that have expired, then look again.
            keys.retain(|_, last| now.saturating_duration_since(*last) <= self.idle);
            if keys.len() >= self.max {
                let oldest = keys.values().min().copied().unwrap_or(now);
                let retry_after = (oldest + self.idle).saturating_duration_since(now);
                return Err(ScopeCapReached {
                    max: self.max,
                    retry_after,
                });
            }
        }
        keys.insert(Box::from(key), now);
        Ok(())
    }

    /// Forgets every key unused for longer than `idle`; returns how many were forgotten.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut clients = self.lock();
        let mut n = 0;
        clients.retain(|_, keys| {
            let before = keys.len();
            keys.retain(|_, last| now.saturating_duration_since(*last) <= self.idle);
            n += before - keys.len();
            !keys.is_empty()
        });
        n
    }
}

#[derive(Debug, Clone)]
struct Config {
    clients: Clients,
    header: Option<HeaderName>,
    required: bool,
    server: Option<Arc<str>>,
    limiter: Option<Arc<ScopeLimiter>>,
}

/// Determines the client and the scope of each request; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ScopeLayer {
    cfg: Arc<Config>,
}

impl Default for ScopeLayer {
    fn default() -> Self {
        ScopeLayer::new()
    }
}

impl ScopeLayer {
    /// No clients (everyone is `anonymous`), no scope header, not required, no server check.
    pub fn new() -> ScopeLayer {
        ScopeLayer {
            cfg: Arc::new(Config {
                clients: Clients::new(),
                header: None,
                required: false,
                server: None,
                limiter: None,
            }),
        }
    }
    fn cfg_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.cfg)
    }
    /// The clients table. Default: empty (no token required, client `anonymous`).
    pub fn clients(mut self, clients: Clients) -> Self {
        self.cfg_mut().clients = clients;
        self
    }
    /// The scope header, e.g. `x-agent-run`. Default: none.
    pub fn header(mut self, name: HeaderName) -> Self {
        self.cfg_mut().header = Some(name);
        self
    }
    /// Rejects requests without the scope header (400). Default: `false`. Without a header
    /// configured, this has no effect.
    pub fn required(mut self, required: bool) -> Self {
        self.cfg_mut().required = required;
        self
    }
    /// The server this stack fronts, checked against each client's `servers`. Default: none
    /// (no check).
    pub fn server(mut self, name: &str) -> Self {
        self.cfg_mut().server = Some(Arc::from(name));
        self
    }
    /// Caps the distinct scope-header keys each client holds ([`ScopeLimiter`]); a request with
    /// a new key past the cap gets 429 with a JSON-RPC error and a `Retry-After`. Default: no
    /// cap. Without a scope header configured, this has no effect.
    pub fn limit(mut self, limiter: Arc<ScopeLimiter>) -> Self {
        self.cfg_mut().limiter = Some(limiter);
        self
    }
}

impl<S> Layer<S> for ScopeLayer {
    type Service = Scope<S>;
    fn layer(&self, inner: S) -> Scope<S> {
        Scope {
            inner,
            cfg: self.cfg.clone(),
        }
    }
}

/// The service made by [`ScopeLayer`].
#[derive(Debug, Clone)]
pub struct Scope<S> {
    inner: S,
    cfg: Arc<Config>,
}

impl<S> Scope<S> {
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Why a request was refused, with the status to answer.
struct Refusal {
    status: StatusCode,
    code: i64,
    message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, code: i64, message: &'static str) -> Refusal {
        Refusal {
            status,
            code,
            message: Cow::Borrowed(message),
            retry_after: None,
        }
    }
}

impl Config {
    fn decide<B>(&self, req: &Request<B>) -> std::result::Result<ClientScope, Refusal> {
        let mut servers = None;
        let client: Arc<str> = if self.clients.is_empty() {
            Arc::from("anonymous")
        } else {
            let token = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token);
            let Some(info) = token.and_then(|t| self.clients.lookup(t)) else {
                return Err(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    ACCESS_DENIED,
                    "unauthorized: a valid bearer token is required",
                ));
            };
            if let Some(server) = &self.server {
                if !info.may_use(server) {
                    return Err(Refusal::new(
                        StatusCode::FORBIDDEN,
                        ACCESS_DENIED,
                        "forbidden: this client may not use this server",
                    ));
                }
            }
            servers = info.servers.clone();
            info.name.clone()
        };
        if let Some(h) = &self.header {
            match req.headers().get(h) {
                Some(v) if !v.is_empty() => {
                    let ok =
                        v.len() <= MAX_SCOPE_KEY && v.as_bytes().iter().all(|b| (0x21..0x7f).contains(b));
                    let Some(value) = v.to_str().ok().filter(|_| ok) else {
                        return Err(Refusal::new(
                            StatusCode::BAD_REQUEST,
                            INVALID_REQUEST,
                            "bad request: the scope header must be 1 to 256 visible ASCII characters",
                        ));
                    };
                    if let Some(limiter) = &self.limiter {
                        limiter.admit(&client, value).map_err(|e| Refusal {
                            // 429, not 400: the request is well-formed; the client holds too
                            // many scopes right now, and one frees up when it idles out.
                            status: StatusCode::TOO_MANY_REQUESTS,
                            code: INVALID_REQUEST,
                            message: Cow::Owned(format!(
                                "too many scopes: this client already holds {} distinct scope \
                                 header values (limits.max_scopes_per_client); reuse one, or retry \
                                 once an unused one has expired; nothing was forwarded",
                                e.max
                            )),
                            retry_after: Some(e.retry_after.as_secs().max(1)),
                        })?;
                    }
                    return Ok(ClientScope::from_header(&client, value).with_servers(servers));
                }
                _ if self.required => {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        INVALID_REQUEST,
                        "bad request: the scope header is required",
                    ))
                }
                _ => {}
            }
        }
        if let Some(sid) = req
            .headers()
            .get(MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
        {
            return Ok(ClientScope::from_session(&client, sid).with_servers(servers));
        }
        Ok(ClientScope::default_for(&client).with_servers(servers))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S, B> Service<Request<B>> for Scope<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<std::result::Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let decided = match req.extensions_mut().remove::<Delegated>() {
            Some(Delegated(cs)) => match &self.cfg.server {
                Some(server) if !cs.may_use(server) => Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    -32001,
                    "forbidden: this client may not use this server",
                )),
                _ => Ok(cs),
            },
            None => self.cfg.decide(&req),
        };
        match decided {
            Ok(cs) => {
                req.extensions_mut().insert(cs);
                Either::Right(self.inner.call(req))
            }
            Err(r) => {
                tracing::warn!(status = r.status.as_u16(), "request refused: {}", r.message);
                let mut res = http_error(r.status, None, r.code, &r.message);
                if r.status == StatusCode::UNAUTHORIZED {
                    res.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Bearer"),
                    );
                }
                if let Some(secs) = r.retry_after {
                    res.headers_mut()
                        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
                }
                Either::Left(futures_util::future::ready(Ok(res)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decide(layer: &ScopeLayer, headers: &[(&str, &str)]) -> std::result::Result<ClientScope, u16> {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        layer
            .cfg
            .decide(&b.body(()).unwrap())
            .map_err(|r| r.status.as_u16())
    }

    #[test]
    fn scope_keys_and_sources() {
        let plain = ScopeLayer::new();
        let cs = decide(&plain, &[]).unwrap();
        assert_eq!(
            (&*cs.client, cs.scope.key(), cs.source),
            ("anonymous", "default", ScopeSource::Default)
        );
        let cs = decide(&plain, &[("mcp-session-id", "s1")]).unwrap();
        assert_eq!((cs.scope.key(), cs.source), ("session:s1", ScopeSource::Session));
        let h = ScopeLayer::new().header(HeaderName::from_static("x-agent-run"));
        let cs = decide(&h, &[("x-agent-run", "r1"), ("mcp-session-id", "s1")]).unwrap();
        assert_eq!((cs.scope.key(), cs.source), ("hdr:r1", ScopeSource::Header));
        assert_eq!(decide(&h, &[("x-agent-run", "has space")]).unwrap_err(), 400);
        let long = "r".repeat(MAX_SCOPE_KEY + 1);
        assert_eq!(decide(&h, &[("x-agent-run", &long)]).unwrap_err(), 400);
        // Not required: falls back to the session.
        assert_eq!(
            decide(&h, &[("mcp-session-id", "s1")]).unwrap().scope.key(),
            "session:s1"
        );
        assert_eq!(
            decide(&h.clone().required(true), &[("mcp-session-id", "s1")]).unwrap_err(),
            400
        );
    }

    #[test]
    fn clients_and_servers() {
        let clients = Clients::new()
            .with_client("sandbox", &sha256_hex(b"t1"), Some(vec!["crm".into()]))
            .unwrap()
            .with_client("ops", &sha256_hex(b"t2"), None)
            .unwrap();
        let any = ScopeLayer::new().clients(clients.clone());
        assert_eq!(decide(&any, &[]).unwrap_err(), 401);
        assert_eq!(
            decide(&any, &[("authorization", "Bearer nope")]).unwrap_err(),
            401
        );
        let cs = decide(&any, &[("authorization", "Bearer t1")]).unwrap();
        assert_eq!(&*cs.client, "sandbox");
        assert_eq!(cs.scope.client(), "sandbox");
        assert!(cs.may_use("crm") && !cs.may_use("mail"));
        assert!(decide(&any, &[("authorization", "Bearer t2")])
            .unwrap()
            .may_use("mail"));
        let mail = ScopeLayer::new().clients(clients).server("mail");
        assert_eq!(decide(&mail, &[("authorization", "Bearer t1")]).unwrap_err(), 403);
        assert!(decide(&mail, &[("authorization", "Bearer t2")]).is_ok());
    }

    #[test]
    fn the_scope_cap_refuses_new_keys_only_and_frees_idle_ones() {
        let limiter = ScopeLimiter::new(2, Duration::from_secs(60));
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let t0 = Instant::now();
        assert!(limiter.admit_at(&a, "r1", t0).is_ok());
        assert!(limiter.admit_at(&a, "r2", t0).is_ok());
        let refused = limiter
            .admit_at(&a, "r3", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(refused.max, 2);
        assert_eq!(refused.retry_after, Duration::from_secs(50));
        // Held keys still work, and other clients have their own cap.
        assert!(limiter.admit_at(&a, "r1", t0 + Duration::from_secs(30)).is_ok());
        assert!(limiter.admit_at(&b, "r3", t0).is_ok());
        // r2 idles out (r1 was used at 30 s): a new key fits again.
        assert!(limiter.admit_at(&a, "r3", t0 + Duration::from_secs(61)).is_ok());
        assert!(limiter.admit_at(&a, "r4", t0 + Duration::from_secs(62)).is_err());
        assert_eq!(limiter.held(), 3);
        assert!(!format!("{limiter:?}").contains("r1"));

        let layer = ScopeLayer::new()
            .header(HeaderName::from_static("x-agent-run"))
            .limit(Arc::new(ScopeLimiter::new(1, Duration::from_secs(60))));
        assert!(decide(&layer, &[("x-agent-run", "r1")]).is_ok());
        assert_eq!(decide(&layer, &[("x-agent-run", "r2")]).unwrap_err(), 429);
        assert!(decide(&layer, &[("x-agent-run", "r1")]).is_ok());
        // Session and default scopes are not counted.
        assert!(decide(&layer, &[("mcp-session-id", "s1")]).is_ok());
        assert!(decide(&layer, &[]).is_ok());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn clients_table() {
        let c = Clients::new()
            .with_client("sandbox", &sha256_hex(b"s3cret"), Some(vec!["crm".into()]))
            .unwrap();
        assert_eq!(&*c.lookup("s3cret").unwrap().name, "sandbox");
        assert!(c.lookup("other").is_none());
        assert!(c.lookup("s3cret").unwrap().may_use("crm"));
        assert!(!c.lookup("s3cret").unwrap().may_use("mail"));
        assert!(Clients::new()
            .with_client("x", "abc", None)
            .unwrap_err()
            .is_config());
        let dup = c.clone().with_client("y", &sha256_hex(b"s3cret"), None);
        assert!(dup.unwrap_err().is_config());
        assert!(!format!("{c:?}").contains(&sha256_hex(b"s3cret")));
    }
}
