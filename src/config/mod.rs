//! Configuration: `gateway.toml` → raw serde structs → a validated [`Config`].
//!
//! Validation happens before any port is bound and reports every problem at once
//! ([`Error::config`](crate::Error::config), one line per problem); the CLI then exits with 2.
//! `${VAR}` in server `url`, `headers` and `env` values is expanded from the environment (a
//! missing variable is a problem). Durations are humantime strings (`"1h"`, `"30s"`). Unknown keys
//! are rejected with the table they appeared in. An annotated file with every key is
//! `src/config/example.toml`.
//!
//! - `[policy]` (or `policy_file = "..."`, relative to the configuration file) is validated by
//!   [`Policy::from_config`]; with neither, the default policy applies: `cross_server = "deny"`
//!   (a placeholder only goes back to a server it came from), `untracked_pii = "audit"`.
//! - `[audit]` ([`AuditConfig`]) turns the audit log on; its fingerprint key is read from the
//!   environment variable named by `key_env` (default `MCP_PII_AUDIT_KEY`) at load, and a missing
//!   or short key is a problem like any other. Without `[audit]` nothing is audited.
//! - `vault.backend = "redis"` needs `url` (`redis://` or `rediss://`, `${VAR}` expanded) and the
//!   vault key: 64 hex digits in the environment variable named by `key_env` (default
//!   `MCP_PII_VAULT_KEY`), read at load; a missing or short key is a problem like any other.
//! - TLS: an `https://` server `url` trusts the system's roots, or only the CAs in its
//!   `ca_file`, and may present `client_cert_file` + `client_key_file`; `[tls]` (`cert_file`,
//!   `key_file`) makes the front serve HTTPS. Every PEM file is read and checked at load
//!   (relative paths against the configuration's directory): an unreadable or invalid one is a
//!   problem naming its path.
//!
//! ```
//! use mcp_pii_gateway::config::Config;
//! let toml = r#"
//! listen = "127.0.0.1:8080"
//! [[servers]]
//! name = "crm"
//! url = "http://127.0.0.1:9001/mcp"
//! headers = { Authorization = "Bearer ${CRM_TOKEN}" }
//! "#;
//! let cfg = Config::from_toml_str(toml, |v| (v == "CRM_TOKEN").then(|| "t0k".to_string())).unwrap();
//! assert_eq!(cfg.servers[0].name, "crm");
//! // Credentials never show in Debug output.
//! assert!(!format!("{cfg:?}").contains("t0k"));
//!
//! let bad = "listen = \"nope\"\n[[servers]]\nname = \"Bad Name\"\n";
//! let err = Config::from_toml_str(bad, |_| None).unwrap_err();
//! assert_eq!(err.config_problems().len(), 3); // listen, name, neither url nor command
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;

use crate::audit::{AuditConfig, FileSink, Fingerprinter};
use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::vault::VaultKey;

mod raw;
mod tls;
pub use raw::{RawAggregate, RawClient, RawConfig, RawLimits, RawScope, RawServer, RawTls, RawVault};
pub use tls::{FrontTls, UpstreamTls};

/// The validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP front listens on.
    pub listen: SocketAddr,
    /// `[tls]`: when set, the front serves HTTPS only.
    pub tls: Option<FrontTls>,
    /// How requests are assigned to a vault scope.
    pub scope: ScopeConfig,
    /// The vault backend.
    pub vault: VaultConfig,
    /// Size limits and timeouts.
    pub limits: Limits,
    /// Accepted `Host` header host names (lower case, without port); `*` accepts any.
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` header values, canonical (see [`normalize_origin`]: lower case, no
    /// default port, e.g. `http://localhost:3000`); `*` accepts any. Empty: origins whose host
    /// is an allowed host. A request without `Origin` is always accepted (not a browser).
    pub allowed_origins: Vec<String>,
    /// Upstream servers, in file order.
    pub servers: Vec<ServerConfig>,
    /// Authenticated clients; empty = no authentication, every request is client `anonymous`.
    pub clients: Vec<ClientConfig>,
    /// The flow policy: the `[policy]` table, the file named by `policy_file`, or (neither
    /// given) [`Policy::default`]: `cross_server = "deny"`, `untracked_pii = "audit"`, no flows.
    pub policy: Policy,
    /// Where [`policy`](Self::policy) came from.
    pub policy_source: PolicySource,
    /// The audit log; `None` without an `[audit]` table (then nothing is audited).
    pub audit: Option<AuditSettings>,
    /// The detector: the built-in rules plus the custom rule files named by `rules = [...]`
    /// (resolved against the configuration's directory), compiled at load.
    pub detector: Arc<Detector>,
    /// This replica's name among the gateways sharing one Redis vault: `replica_id`, or the
    /// host name when the vault is Redis; `None` for a single gateway. It names the replica's
    /// own audit chain (`audit.log` becomes `audit.<replica>.log`) and the replica running a
    /// session's stdio servers.
    pub replica_id: Option<String>,
    /// `[aggregate]`: the aggregated endpoint `/mcp`.
    pub aggregate: AggregateConfig,
}

/// `[aggregate]`: the aggregated endpoint `/mcp`, one MCP server presenting every server a
/// client may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateConfig {
    /// Serve `/mcp` (default: true).
    pub enabled: bool,
    /// What its `tools/list` holds (default: [`Expose::All`]).
    pub expose: Expose,
    /// One server whose tools, prompts and resources keep their own names on `/mcp` (no
    /// `<server>__` prefix, no `mcp-gateway://` URI): for clients written against that one
    /// server. Its names that look like another server's (`crm__x` while `crm` exists) or a
    /// gateway tool's are shadowed. Default: none.
    pub unprefixed: Option<String>,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            enabled: true,
            expose: Expose::All,
            unprefixed: None,
        }
    }
}

/// What `/mcp`'s `tools/list` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expose {
    /// Every upstream tool (`<server>__<tool>`) and the gateway's own tools.
    All,
    /// Only the gateway's own tools and `call_tool`: the model discovers the rest with
    /// `search_tools`.
    Search,
}

/// Where the flow policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// Neither `[policy]` nor `policy_file`: [`Policy::default`].
    Default,
    /// The `[policy]` table of the configuration.
    Inline,
    /// The file named by `policy_file` (resolved against the configuration's directory).
    File(PathBuf),
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::Default => f.write_str("the default policy (no [policy] configured)"),
            PolicySource::Inline => f.write_str("[policy]"),
            PolicySource::File(p) => write!(f, "policy_file {}", p.display()),
        }
    }
}

/// `[audit]`, validated: the log file (resolved against the configuration's directory), how it
/// is written, and the fingerprint key read from the environment variable `key_env` (a missing
/// or too short key is a configuration problem: the gateway never runs an audit log without
/// one). `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The active log file.
    pub path: PathBuf,
    /// The table as written (`fsync`, `rotate_bytes`, `key_env`, ...).
    pub config: AuditConfig,
    /// The fingerprinter keyed from `key_env`.
    pub fingerprinter: Fingerprinter,
}

impl AuditSettings {
    /// Opens (or creates) the log file, recovering its chain.
    pub fn open_sink(&self) -> Result<FileSink> {
        FileSink::open(self.path.clone(), self.config.sink_options())
    }
}

/// `[scope]`.
#[derive(Debug, Clone, Default)]
pub struct ScopeConfig {
    /// The header carrying the scope key (e.g. one agent run's id), if any.
    pub header: Option<HeaderName>,
    /// When true, requests without the header are rejected (400).
    pub required: bool,
}

/// Vault backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultBackend {
    /// In-process sharded map.
    Memory,
    /// Redis (or Valkey) at this URL, shared by replicas.
    Redis(RedisVaultConfig),
}

/// `[vault]` with `backend = "redis"`.
#[derive(Clone)]
pub struct RedisVaultConfig {
    /// `redis://` or `rediss://` URL (after `${VAR}` expansion; may hold credentials).
    pub url: String,
    /// The vault key (from the environment variable `key_env`).
    pub key: VaultKey,
    /// Prefix of every Redis key. Default: `mcp-pii`.
    pub prefix: String,
    /// Default: 2s.
    pub connect_timeout: Duration,
    /// Default: 500ms.
    pub command_timeout: Duration,
    /// `url` is a node of a Redis Cluster. Default: false.
    pub cluster: bool,
}

impl fmt::Debug for RedisVaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisVaultConfig")
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RedisVaultConfig {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.prefix == other.prefix
    }
}
impl Eq for RedisVaultConfig {}

/// `[vault]`.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The backend. Default: memory.
    pub backend: VaultBackend,
    /// Scopes idle this long are dropped. Default: 1h.
    pub idle_ttl: Duration,
    /// Maximum entries per scope. Default: 100 000.
    pub max_entries_per_scope: usize,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            backend: VaultBackend::Memory,
            idle_ttl: Duration::from_secs(3600),
            max_entries_per_scope: 100_000,
        }
    }
}

/// `[limits]`: sizes and timeouts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond). Default: 4 MiB.
    pub max_body_bytes: usize,
    /// Largest JSON response from a server, in bytes: an HTTP upstream's body, a stdio
    /// upstream's message line (or `max_sse_event_bytes`, when larger). A larger one is withheld
    /// with a JSON-RPC error. Default: 16 MiB.
    pub max_response_bytes: usize,
    /// Largest single SSE event, in bytes. Default: 4 MiB.
    pub max_sse_event_bytes: usize,
    /// Upstream TCP connect timeout. Default: 5s.
    pub connect_timeout: Duration,
    /// Time an upstream may take to answer a request (response head for HTTP, the response
    /// message for stdio). Default: 5 min (tool calls can be slow).
    pub upstream_timeout: Duration,
    /// How long shutdown waits for in-flight requests. Default: 10s.
    pub shutdown_grace: Duration,
    /// Downstream sessions unused this long are ended (stdio children stopped, HTTP mappings
    /// dropped and the upstream session deleted). Default: 1h.
    pub session_idle: Duration,
    /// Distinct scope-header keys one client may hold at once (a key is held until it has been
    /// unused for `vault.idle_ttl`, as its vault scope is). A request with a new key past the
    /// cap is refused with 429 and creates nothing. Session-keyed scopes are bounded by
    /// [`max_sessions`](Self::max_sessions), and each client has one default scope.
    /// Default: 1000.
    pub max_scopes_per_client: usize,
    /// Downstream MCP sessions across the gateway (every server together). Past it,
    /// `initialize` is refused with 503 until sessions end (DELETE or `session_idle`).
    /// Default: 1024.
    pub max_sessions: usize,
    /// Accepted client TCP connections at once. Past it the gateway stops accepting: new
    /// connections wait in the listen backlog until one closes. Default: 512.
    pub max_connections: usize,
    /// Total time a client may take to send a request body; a slower client gets 408 and its
    /// connection is closed. Default: 30s.
    pub request_body_timeout: Duration,
    /// Total time an HTTP upstream may take to send a JSON response body, from its response
    /// head (on top of [`upstream_timeout`](Self::upstream_timeout), which bounds the wait for
    /// the head and any silence). Past it the client gets a 504 JSON-RPC error. SSE streams are
    /// long-lived by design and are not bounded by it. Default: 5 min.
    pub upstream_response_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_response_bytes: 16 << 20,
            max_sse_event_bytes: 4 << 20,
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
            session_idle: Duration::from_secs(3600),
            max_scopes_per_client: 1000,
            max_sessions: 1024,
            max_connections: 512,
            request_body_timeout: Duration::from_secs(30),
            upstream_response_deadline: Duration::from_secs(300),
        }
    }
}

/// One upstream server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `[a-z0-9_-]+`, unique; served at `/servers/{name}/mcp`.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
}

/// How an upstream is reached.
#[derive(Clone)]
pub enum Transport {
    /// Streamable HTTP.
    Http {
        /// Endpoint URL (`http://` or `https://`).
        url: Uri,
        /// Headers added to every upstream request (credentials live here, in the gateway).
        headers: Vec<(HeaderName, HeaderValue)>,
        /// TLS settings; `Some` exactly when `url` is `https://`.
        tls: Option<UpstreamTls>,
    },
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Extra environment variables.
        env: Vec<(String, String)>,
    },
}

impl fmt::Debug for Transport {
    // Header and env values may be credentials: show names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Http { url, headers, tls } => f
                .debug_struct("Http")
                .field("url", &format_args!("{}", redact_uri(url)))
                .field(
                    "headers",
                    &headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                )
                .field("tls", tls)
                .finish(),
            Transport::Stdio { command, args, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
                .finish(),
        }
    }
}

fn redact_uri(u: &Uri) -> String {
    // Query strings may hold API keys.
    match (u.scheme_str(), u.authority()) {
        (Some(s), Some(a)) => format!("{s}://{}{}", a.host(), u.path()),
        _ => u.path().to_string(),
    }
}

/// One authenticated client.
#[derive(Clone)]
pub struct ClientConfig {
    /// The client's name (scopes are namespaced by it).
    pub name: String,
    /// SHA-256 of its bearer token.
    pub token_sha256: [u8; 32],
    /// The servers it may use.
    pub servers: Vec<String>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads and validates a file; `${VAR}` and the audit key come from the process
    /// environment; `policy_file` and a relative `audit.path` are resolved against the file's
    /// directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(vec![format!("cannot read {}: {e}", path.display())]))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Config::from_toml_str_in(&text, dir, |v| std::env::var(v).ok())
    }

    /// Parses and validates TOML text; `env` resolves `${VAR}` and the audit key; relative
    /// paths are resolved against the current directory.
    pub fn from_toml_str(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        Config::from_toml_str_in(text, Path::new("."), env)
    }

    /// Parses and validates TOML text whose relative paths (`policy_file`, `audit.path`) are
    /// relative to `base_dir`; `env` resolves `${VAR}` and the audit key.
    pub fn from_toml_str_in(
        text: &str,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::config(vec![format!("not valid TOML: {}", e.message())]))?;
        let mut p = Problems::default();
        let raw = raw::split(table, &mut p);
        let cfg = validate(raw, base_dir, &env, &mut p);
        if p.0.is_empty() {
            Ok(cfg)
        } else {
            Err(Error::config(p.0))
        }
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }
}

/// Collected problems.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<String>);

impl Problems {
    pub(crate) fn push(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
}

/// True when the server name is `[a-z0-9_-]+`.
pub fn is_valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Expands `${VAR}` from `env`. `$$` is a literal `$`. Errors name the variable, never a value.
pub fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| "unterminated ${ (write $$ for a literal $)".to_string())?;
            let name = &r[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!("invalid variable name ${{{name}}}"));
            }
            let v = env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&v);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn duration(field: &str, s: &Option<String>, default: Duration, p: &mut Problems) -> Duration {
    match s {
        None => default,
        Some(s) => match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                p.push(format!("{field}: must be greater than zero"));
                default
            }
            Err(e) => {
                p.push(format!(
                    "{field}: {s:?} is not a duration like \"30s\" or \"1h\" ({e})"
                ));
                default
            }
        },
    }
}

/// An `Origin` value (or a configured origin) in canonical form: `scheme://host[:port]`, lower
/// case, the scheme's default port (80 for http, 443 for https) left out, so that
/// `HTTP://LocalHost:80` and `http://localhost` compare equal. `*` and the opaque origin `null`
/// are kept as they are. `None` for anything that is not an origin (user info, a path other than
/// `/`, a query, no scheme or no host).
pub fn normalize_origin(s: &str) -> Option<String> {
    let s = s.trim();
    if s == "*" || s.eq_ignore_ascii_case("null") {
        return Some(s.to_ascii_lowercase());
    }
    let uri: Uri = s.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let auth = uri.authority()?;
    if auth.as_str().contains('@') || uri.query().is_some() || !matches!(uri.path(), "" | "/") {
        return None;
    }
    let host = auth.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    Some(match auth.port_u16() {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn is_loopback_listen(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn validate(
    raw: RawConfig,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Config {
    let listen = match raw
        .listen
        .as_deref()
        .unwrap_or("127.0.0.1:8080")
        .parse::<SocketAddr>()
    {
        Ok(a) => a,
        Err(_) => {
            p.push(format!(
                "listen: {:?} is not an IP:port address (e.g. \"127.0.0.1:8080\")",
                raw.listen.as_deref().unwrap_or_default()
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };

    let mut scope = ScopeConfig::default();
    if let Some(s) = raw.scope {
        if let Some(h) = s.header {
            match HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => scope.header = Some(n),
                Err(_) => p.push(format!("scope.header: {h:?} is not a valid HTTP header name")),
            }
        }
        scope.required = s.required.unwrap_or(false);
        if scope.required && scope.header.is_none() {
            p.push("scope.required = true needs scope.header");
        }
    }

    let mut vault = VaultConfig::default();
    if let Some(v) = raw.vault {
        vault.idle_ttl = duration("vault.idle_ttl", &v.idle_ttl, vault.idle_ttl, p);
        if let Some(n) = v.max_entries_per_scope {
            if n == 0 {
                p.push("vault.max_entries_per_scope: must be at least 1");
            } else {
                vault.max_entries_per_scope = n;
            }
        }
        match v.backend.as_deref().unwrap_or("memory") {
            "memory" => {
                for (field, set) in [
                    ("url", v.url.is_some()),
                    ("key_env", v.key_env.is_some()),
                    ("prefix", v.prefix.is_some()),
                    ("connect_timeout", v.connect_timeout.is_some()),
                    ("command_timeout", v.command_timeout.is_some()),
                    ("cluster", v.cluster.is_some()),
                ] {
                    if set {
                        p.push(format!("vault.{field}: only used with backend = \"redis\""));
                    }
                }
            }
            "redis" => {
                if let Some(r) = redis_vault(&v, env, p) {
                    vault.backend = VaultBackend::Redis(r);
                }
            }
            other => p.push(format!(
                "vault.backend: {other:?} is not one of \"memory\", \"redis\""
            )),
        }
    }

    let mut limits = Limits::default();
    if let Some(l) = raw.limits {
        for (field, val, slot) in [
            (
                "limits.max_body_bytes",
                l.max_body_bytes,
                &mut limits.max_body_bytes,
            ),
            (
                "limits.max_response_bytes",
                l.max_response_bytes,
                &mut limits.max_response_bytes,
            ),
            (
                "limits.max_sse_event_bytes",
                l.max_sse_event_bytes,
                &mut limits.max_sse_event_bytes,
            ),
            (
                "limits.max_scopes_per_client",
                l.max_scopes_per_client,
                &mut limits.max_scopes_per_client,
            ),
            ("limits.max_sessions", l.max_sessions, &mut limits.max_sessions),
            (
                "limits.max_connections",
                l.max_connections,
                &mut limits.max_connections,
            ),
        ] {
            match val {
                Some(0) => p.push(format!("{field}: must be at least 1")),
                Some(n) => *slot = n,
                None => {}
            }
        }
        limits.connect_timeout = duration(
            "limits.connect_timeout",
            &l.connect_timeout,
            limits.connect_timeout,
            p,
        );
        limits.upstream_timeout = duration(
            "limits.upstream_timeout",
            &l.upstream_timeout,
            limits.upstream_timeout,
            p,
        );
        limits.session_idle = duration("limits.session_idle", &l.session_idle, limits.session_idle, p);
        limits.shutdown_grace = duration(
            "limits.shutdown_grace",
            &l.shutdown_grace,
            limits.shutdown_grace,
            p,
        );
        limits.request_body_timeout = duration(
            "limits.request_body_timeout",
            &l.request_body_timeout,
            limits.request_body_timeout,
            p,
        );
        limits.upstream_response_deadline = duration(
            "limits.upstream_response_deadline",
            &l.upstream_response_deadline,
            limits.upstream_response_deadline,
            p,
        );
    }

    let allowed_hosts = match raw.allowed_hosts {
        Some(h) => h.into_iter().map(|s| s.to_ascii_lowercase()).collect(),
        None if is_loopback_listen(&listen) => {
            vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
        }
        None => vec!["*".into()],
    };
    let allowed_origins = match raw.allowed_origins {
        Some(o) => o
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let n = normalize_origin(&s);
                if n.is_none() {
                    p.push(format!(
                        "allowed_origins[{i}]: not an origin like \"http://localhost:3000\" (scheme://host[:port]), \"null\" or \"*\""
                    ));
                }
                n
            })
            .collect(),
        None => Vec::new(),
    };

    let mut servers = Vec::new();
    let mut names = HashSet::new();
    for (i, s) in raw.servers.into_iter().enumerate() {
        let label = match &s.name {
            Some(n) => format!("servers[{i}] ({n})"),
            None => format!("servers[{i}]"),
        };
        let name = match s.name {
            None => {
                p.push(format!("{label}: missing name"));
                String::new()
            }
            Some(n) => {
                if !is_valid_server_name(&n) {
                    p.push(format!("{label}: name must match [a-z0-9_-]+"));
                } else if !names.insert(n.clone()) {
                    p.push(format!("{label}: duplicate server name"));
                }
                n
            }
        };
        let transport = match (s.url, s.command) {
            (Some(_), Some(_)) => {
                p.push(format!("{label}: set exactly one of url and command, not both"));
                None
            }
            (None, None) => {
                p.push(format!(
                    "{label}: set exactly one of url (HTTP) and command (stdio)"
                ));
                None
            }
            (Some(url), None) => {
                if !s.args.is_empty() || !s.env.is_empty() {
                    p.push(format!("{label}: args and env are for command (stdio) servers"));
                }
                let files = TlsFiles {
                    ca_file: s.ca_file.as_deref(),
                    client_cert_file: s.client_cert_file.as_deref(),
                    client_key_file: s.client_key_file.as_deref(),
                };
                http_transport(&label, &url, s.headers, files, base_dir, env, p)
            }
            (None, Some(command)) => {
                if !s.headers.is_empty() {
                    p.push(format!("{label}: headers are for url (HTTP) servers"));
                }
                if s.ca_file.is_some() || s.client_cert_file.is_some() || s.client_key_file.is_some() {
                    p.push(format!(
                        "{label}: ca_file, client_cert_file and client_key_file are for https:// url servers"
                    ));
                }
                if command.is_empty() {
                    p.push(format!("{label}: command is empty"));
                }
                let mut envs = Vec::new();
                for (k, v) in s.env {
                    match expand_env(&v, env) {
                        Ok(v) => envs.push((k, v)),
                        Err(e) => p.push(format!("{label}: env.{k}: {e}")),
                    }
                }
                Some(Transport::Stdio {
                    command,
                    args: s.args,
                    env: envs,
                })
            }
        };
        if let Some(transport) = transport {
            servers.push(ServerConfig { name, transport });
        }
    }
    if names.is_empty() && p.0.iter().all(|l| !l.starts_with("servers[")) {
        p.push("no [[servers]] configured: add at least one");
    }

    let mut clients = Vec::new();
    let mut client_names = HashSet::new();
    for (i, c) in raw.clients.into_iter().enumerate() {
        let label = match &c.name {
            Some(n) => format!("clients[{i}] ({n})"),
            None => format!("clients[{i}]"),
        };
        let name = c.name.unwrap_or_default();
        if name.is_empty() {
            p.push(format!("{label}: missing name"));
        } else if name == "anonymous" {
            p.push(format!("{label}: the name \"anonymous\" is reserved"));
        } else if !client_names.insert(name.clone()) {
            p.push(format!("{label}: duplicate client name"));
        }
        let mut hash = [0u8; 32];
        match c.token_sha256 {
            None => p.push(format!("{label}: missing token_sha256")),
            Some(h) => {
                if hex::decode_to_slice(h.trim(), &mut hash).is_err() {
                    p.push(format!(
                        "{label}: token_sha256 must be 64 hex digits (sha256 of the token)"
                    ));
                }
            }
        }
        for s in &c.servers {
            if !names.contains(s) {
                p.push(format!("{label}: unknown server {s:?}"));
            }
        }
        clients.push(ClientConfig {
            name,
            token_sha256: hash,
            servers: c.servers,
        });
    }

    let tls = raw
        .tls
        .and_then(|t| tls::front(t.cert_file.as_deref(), t.key_file.as_deref(), base_dir, p));

    let (policy, policy_source) = policy_part(raw.policy, raw.policy_file, base_dir, p);
    let replica_id = match raw.replica_id {
        Some(id) if is_valid_replica_id(&id) => Some(id),
        Some(_) => {
            p.push("replica_id: must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
            None
        }
        None if matches!(vault.backend, VaultBackend::Redis(_)) => Some(host_replica_id()),
        None => None,
    };
    let mut audit = audit_part(raw.audit, base_dir, env, p);
    if let (Some(a), Some(id)) = (&mut audit, &replica_id) {
        a.path = replica_path(&a.path, id);
    }
    let detector = detector_part(raw.rules.unwrap_or_default(), base_dir, p);
    flow_names(&policy, &servers, &detector, p);
    let aggregate = aggregate_part(raw.aggregate, &servers, p);

    Config {
        listen,
        tls,
        scope,
        vault,
        limits,
        allowed_hosts,
        allowed_origins,
        servers,
        clients,
        policy,
        policy_source,
        audit,
        detector,
        replica_id,
        aggregate,
    }
}

fn aggregate_part(raw: Option<RawAggregate>, servers: &[ServerConfig], p: &mut Problems) -> AggregateConfig {
    let mut a = AggregateConfig::default();
    if let Some(r) = raw {
        a.enabled = r.enabled.unwrap_or(true);
        match r.expose.as_deref() {
            None | Some("all") => {}
            Some("search") => a.expose = Expose::Search,
            Some(other) => p.push(format!(
                "aggregate.expose: {other:?} is not one of \"all\", \"search\""
            )),
        }
        if let Some(u) = r.unprefixed {
            if servers.iter().any(|s| s.name == u) {
                a.unprefixed = Some(u);
            } else {
                p.push(format!("aggregate.unprefixed: {u:?} is not a configured server"));
            }
        }
    }
    if a.enabled {
        let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        for problem in crate::proxy::aggregate::names::problems(&names) {
            p.push(format!("{problem} (or set [aggregate] enabled = false)"));
        }
    }
    a
}

/// Flows must name configured servers and known kinds: a typo would otherwise make a flow that
/// never matches (and every request it was meant for refused, with no hint why).
fn flow_names(policy: &Policy, servers: &[ServerConfig], detector: &Detector, p: &mut Problems) {
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    let list = names.join(", ");
    let kinds: Vec<&str> = detector.kinds().iter().map(|k| k.as_str()).collect();
    for f in policy.flows() {
        for (field, server) in [("from", &f.from), ("to", &f.to_server)] {
            if !names.contains(&server.as_str()) {
                p.push(format!(
                    "policy flow {:?}: {field} names server {server:?}, which is not configured (servers: {list})",
                    f.id
                ));
            }
        }
        for k in f.kinds.iter().flatten() {
            if !kinds.contains(&k.as_str()) {
                p.push(format!(
                    "policy flow {:?}: kind {k:?} is not a detected kind (kinds: {})",
                    f.id,
                    kinds.join(", ")
                ));
            }
        }
    }
}

fn is_valid_replica_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The host name as a replica id (characters outside the allowed set become `-`).
fn host_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let id: String = host
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() {
        "gateway".to_owned()
    } else {
        id
    }
}

/// `dir/audit.log` → `dir/audit.<replica>.log` (`audit` → `audit.<replica>`): each replica
/// writes its own chain.
pub fn replica_path(path: &Path, replica: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{replica}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{replica}"),
    };
    path.with_file_name(name)
}

/// The built-in rules plus the custom rule files in `rules` (relative to `base_dir`); each bad
/// file is one problem (naming the file and the rule, never quoting its content).
fn detector_part(rules: Vec<String>, base_dir: &Path, p: &mut Problems) -> Arc<Detector> {
    let mut builder = Detector::builder();
    for file in &rules {
        builder = builder.with_rules_file(base_dir.join(file));
    }
    // Every unreadable file and every rule that does not compile, in every file, is a problem
    // of its own (each names its file).
    match builder.build() {
        Ok(d) => Arc::new(d),
        Err(e) if e.is_config() => {
            for problem in e.config_problems() {
                p.push(format!("rules: {problem}"));
            }
            Arc::new(Detector::builtin())
        }
        Err(e) => {
            p.push(format!("rules: {e}"));
            Arc::new(Detector::builtin())
        }
    }
}

/// The flow policy: `[policy]` or `policy_file` (through [`Policy::from_config`]), else the
/// default.
fn policy_part(
    policy: Option<toml::Value>,
    policy_file: Option<toml::Value>,
    base_dir: &Path,
    p: &mut Problems,
) -> (Policy, PolicySource) {
    let source = match (&policy, &policy_file) {
        (Some(_), _) => PolicySource::Inline,
        (None, Some(toml::Value::String(f))) => PolicySource::File(base_dir.join(f)),
        _ => PolicySource::Default,
    };
    let mut root = toml::Table::new();
    if let Some(v) = policy {
        root.insert("policy".into(), v);
    }
    if let Some(v) = policy_file {
        root.insert("policy_file".into(), v);
    }
    match Policy::from_config(&root, base_dir) {
        Ok(policy) => (policy, source),
        Err(e) => {
            push_error(e, p);
            (Policy::default(), source)
        }
    }
}

/// `[audit]`: the table, its path against `base_dir`, and the key from `env(key_env)`.
fn audit_part(
    value: Option<toml::Value>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<AuditSettings> {
    let config: AuditConfig = parse_part("[audit]", value?, p)?;
    let problems = config.validate();
    let valid = problems.is_empty();
    for problem in problems {
        p.push(problem);
    }
    let key = if config.key_env.is_empty() {
        None // already reported by validate()
    } else {
        match env(&config.key_env) {
            None => {
                p.push(format!(
                    "audit key: environment variable {} is not set; [audit] needs a secret key of at \
                     least 16 bytes (hex or text) to fingerprint values (set audit.key_env to use another variable)",
                    config.key_env
                ));
                None
            }
            // The key itself never reaches a message: only its variable's name and length.
            Some(text) => match Fingerprinter::from_key_text(&text) {
                Ok(fp) => Some(fp),
                Err(e) => {
                    for problem in e.config_problems() {
                        p.push(format!(
                            "{problem} (from environment variable {})",
                            config.key_env
                        ));
                    }
                    None
                }
            },
        }
    };
    let fingerprinter = key?;
    valid.then(|| AuditSettings {
        path: base_dir.join(&config.path),
        config,
        fingerprinter,
    })
}

fn push_error(e: Error, p: &mut Problems) {
    if e.is_config() {
        for problem in e.config_problems() {
            p.push(problem.clone());
        }
    } else {
        p.push(e.to_string());
    }
}

/// The Redis backend's settings; `None` (with problems pushed) when something is wrong.
fn redis_vault(
    v: &RawVault,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<RedisVaultConfig> {
    let mut ok = true;
    let url = match v.url.as_deref() {
        None => {
            p.push("vault.url: required with backend = \"redis\" (redis://host:6379 or rediss://host:6380)");
            ok = false;
            String::new()
        }
        Some(u) => match expand_env(u, env) {
            Err(e) => {
                p.push(format!("vault.url: {e}"));
                ok = false;
                String::new()
            }
            Ok(u) if u.starts_with("redis://") || u.starts_with("rediss://") => u,
            Ok(_) => {
                p.push("vault.url: must start with redis:// or rediss://");
                ok = false;
                String::new()
            }
        },
    };
    let key_env = v.key_env.as_deref().unwrap_or("MCP_PII_VAULT_KEY");
    let key = match env(key_env) {
        None => {
            p.push(format!(
                "vault.key_env: the environment variable {key_env} is not set (the vault key: 64 hex digits, e.g. from `openssl rand -hex 32`)"
            ));
            None
        }
        Some(k) => match VaultKey::from_hex(&k) {
            Ok(k) => Some(k),
            Err(e) => {
                p.push(format!("vault.key_env: {key_env}: {e}"));
                None
            }
        },
    };
    let prefix = v.prefix.clone().unwrap_or_else(|| "mcp-pii".to_owned());
    if prefix.is_empty() || prefix.contains(['{', '}']) || prefix.chars().any(char::is_whitespace) {
        p.push("vault.prefix: must be non-empty, without braces or whitespace");
        ok = false;
    }
    let connect_timeout = duration(
        "vault.connect_timeout",
        &v.connect_timeout,
        Duration::from_secs(2),
        p,
    );
    let command_timeout = duration(
        "vault.command_timeout",
        &v.command_timeout,
        Duration::from_millis(500),
        p,
    );
    let key = key?;
    ok.then_some(RedisVaultConfig {
        url,
        key,
        prefix,
        connect_timeout,
        command_timeout,
        cluster: v.cluster.unwrap_or(false),
    })
}

/// A server's TLS file fields, as written.
struct TlsFiles<'a> {
    ca_file: Option<&'a str>,
    client_cert_file: Option<&'a str>,
    client_key_file: Option<&'a str>,
}

fn http_transport(
    label: &str,
    url: &str,
    headers: BTreeMap<String, String>,
    files: TlsFiles<'_>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<Transport> {
    let mut ok = true;
    let url = match expand_env(url, env) {
        Err(e) => {
            p.push(format!("{label}: url: {e}"));
            None
        }
        Ok(u) => match u.parse::<Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() => {
                Some(uri)
            }
            _ => {
                p.push(format!("{label}: url: not an absolute http:// or https:// URL"));
                None
            }
        },
    };
    let has_files =
        files.ca_file.is_some() || files.client_cert_file.is_some() || files.client_key_file.is_some();
    let mut tls = None;
    match url.as_ref().map(|u| u.scheme_str() == Some("https")) {
        Some(true) => {
            tls = tls::upstream(
                label,
                files.ca_file,
                files.client_cert_file,
                files.client_key_file,
                base_dir,
                p,
            );
            ok &= tls.is_some();
        }
        Some(false) if has_files => {
            p.push(format!(
                "{label}: ca_file, client_cert_file and client_key_file need an https:// url"
            ));
            ok = false;
        }
        _ => {}
    }
    let mut hs = Vec::new();
    for (k, v) in headers {
        let name = match HeaderName::from_bytes(k.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                p.push(format!("{label}: headers: {k:?} is not a valid header name"));
                ok = false;
                None
            }
        };
        match expand_env(&v, env) {
            Err(e) => {
                p.push(format!("{label}: headers.{k}: {e}"));
                ok = false;
            }
            Ok(v) => match HeaderValue::from_str(&v) {
                Ok(mut hv) => {
                    hv.set_sensitive(true);
                    if let Some(n) = name {
                        hs.push((n, hv));
                    }
                }
                Err(_) => {
                    p.push(format!("{label}: headers.{k}: value is not a valid header value"));
                    ok = false;
                }
            },
        }
    }
    match (url, ok) {
        (Some(url), true) => Some(Transport::Http {
            url,
            headers: hs,
            tls,
        }),
        _ => None,
    }
}

/// Parses one serde value of type `T` from a TOML value, reporting a problem with `label`.
pub(crate) fn parse_part<T: for<'de> Deserialize<'de>>(
    label: &str,
    v: toml::Value,
    p: &mut Problems,
) -> Option<T> {
    let table = match &v {
        toml::Value::Table(t) => Some(t.clone()),
        _ => None,
    };
    match T::deserialize(v) {
        Ok(t) => Some(t),
        Err(e) => {
            // serde stops at the first bad member; report every one of a table's members that
            // is wrong on its own, so one type error does not hide the others.
            let mut each = Vec::new();
            for (key, value) in table.iter().flatten() {
                let mut one = toml::Table::new();
                one.insert(key.clone(), value.clone());
                if let Err(e) = T::deserialize(toml::Value::Table(one)) {
                    let msg = e.message().trim().to_owned();
                    // A member missing elsewhere is not this member's fault.
                    if !msg.starts_with("missing field") {
                        each.push(format!("{label}: {key}: {msg}"));
                    }
                }
            }
            if each.is_empty() {
                p.push(format!("{label}: {}", e.message().trim()));
            } else {
                p.0.extend(each);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
