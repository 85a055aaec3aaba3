//! Raw serde shapes of `gateway.toml`, as written by the user (before validation).
//!
//! Each table is deserialized on its own so that one bad table does not hide the problems of
//! the others; unknown keys are rejected (`deny_unknown_fields`) and named with their table.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{parse_part, Problems};

/// The whole file.
#[derive(Debug, Default)]
pub struct RawConfig {
    /// `listen`.
    pub listen: Option<String>,
    /// `allowed_hosts`.
    pub allowed_hosts: Option<Vec<String>>,
    /// `allowed_origins`.
    pub allowed_origins: Option<Vec<String>>,
    /// `[scope]`.
    pub scope: Option<RawScope>,
    /// `[vault]`.
    pub vault: Option<RawVault>,
    /// `[limits]`.
    pub limits: Option<RawLimits>,
    /// `[tls]`.
    pub tls: Option<RawTls>,
    /// `[[servers]]` that parsed.
    pub servers: Vec<RawServer>,
    /// `[[clients]]` that parsed.
    pub clients: Vec<RawClient>,
    /// `[policy]`, raw (validated by [`Policy`](crate::policy::Policy)).
    pub policy: Option<toml::Value>,
    /// `policy_file`, raw: a file holding the policy instead of `[policy]`.
    pub policy_file: Option<toml::Value>,
    /// `[audit]`, raw (validated as [`AuditConfig`](crate::audit::AuditConfig)).
    pub audit: Option<toml::Value>,
    /// `rules`: custom rule files (see `rules/README.md`).
    pub rules: Option<Vec<String>>,
    /// `replica_id`.
    pub replica_id: Option<String>,
    /// `[aggregate]`.
    pub aggregate: Option<RawAggregate>,
}

/// `[scope]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// Header name.
    pub header: Option<String>,
    /// Reject requests without the header.
    pub required: Option<bool>,
}

/// `[vault]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVault {
    /// `memory` or `redis`.
    pub backend: Option<String>,
    /// Humantime duration.
    pub idle_ttl: Option<String>,
    /// Redis URL.
    pub url: Option<String>,
    /// Cap per scope.
    pub max_entries_per_scope: Option<usize>,
    /// Environment variable holding the vault key (Redis).
    pub key_env: Option<String>,
    /// Key prefix (Redis).
    pub prefix: Option<String>,
    /// Humantime duration (Redis).
    pub connect_timeout: Option<String>,
    /// Humantime duration (Redis).
    pub command_timeout: Option<String>,
    /// Redis Cluster.
    pub cluster: Option<bool>,
}

/// `[tls]`: TLS on the front.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain.
    pub cert_file: Option<String>,
    /// PEM private key.
    pub key_file: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Bytes.
    pub max_body_bytes: Option<usize>,
    /// Bytes.
    pub max_response_bytes: Option<usize>,
    /// Bytes.
    pub max_sse_event_bytes: Option<usize>,
    /// Humantime duration.
    pub connect_timeout: Option<String>,
    /// Humantime duration.
    pub upstream_timeout: Option<String>,
    /// Humantime duration.
    pub shutdown_grace: Option<String>,
    /// Humantime duration.
    pub session_idle: Option<String>,
    /// Distinct scope-header keys one client may hold at once.
    pub max_scopes_per_client: Option<usize>,
    /// Downstream sessions across the gateway.
    pub max_sessions: Option<usize>,
    /// Accepted TCP connections at once.
    pub max_connections: Option<usize>,
    /// Humantime duration: total time to read a request body.
    pub request_body_timeout: Option<String>,
    /// Humantime duration: total time to read an upstream's JSON response body.
    pub upstream_response_deadline: Option<String>,
}

/// `[[servers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Name.
    pub name: Option<String>,
    /// HTTP endpoint.
    pub url: Option<String>,
    /// HTTP headers added upstream.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// PEM CA certificates trusted for an https `url` (instead of the system's roots).
    pub ca_file: Option<String>,
    /// PEM client certificate chain (mTLS).
    pub client_cert_file: Option<String>,
    /// PEM client private key (mTLS).
    pub client_key_file: Option<String>,
    /// stdio program.
    pub command: Option<String>,
    /// stdio arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// stdio environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[aggregate]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAggregate {
    /// Serve `/mcp`.
    pub enabled: Option<bool>,
    /// `all` or `search`.
    pub expose: Option<String>,
    /// The server whose names are not prefixed.
    pub unprefixed: Option<String>,
}

/// `[[clients]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// Name.
    pub name: Option<String>,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: Option<String>,
    /// Allowed servers.
    #[serde(default)]
    pub servers: Vec<String>,
}

const TOP_KEYS: &str = "listen, allowed_hosts, allowed_origins, scope, vault, limits, tls, servers, clients, policy, policy_file, audit, rules, replica_id, aggregate";

/// Splits the top-level table into raw parts, collecting every problem.
pub(crate) fn split(table: toml::Table, p: &mut Problems) -> RawConfig {
    let mut raw = RawConfig::default();
    for (key, value) in table {
        match key.as_str() {
            "listen" => raw.listen = parse_part("listen", value, p),
            "replica_id" => raw.replica_id = parse_part("replica_id", value, p),
            "allowed_hosts" => raw.allowed_hosts = parse_part("allowed_hosts", value, p),
            "allowed_origins" => raw.allowed_origins = parse_part("allowed_origins", value, p),
            "scope" => raw.scope = parse_part("[scope]", value, p),
            "vault" => raw.vault = parse_part("[vault]", value, p),
            "limits" => raw.limits = parse_part("[limits]", value, p),
            "tls" => raw.tls = parse_part("[tls]", value, p),
            "aggregate" => raw.aggregate = parse_part("[aggregate]", value, p),
            "servers" | "clients" => {
                let toml::Value::Array(items) = value else {
                    p.push(format!("{key}: must be an array of tables ([[{key}]])"));
                    continue;
                };
                for (i, item) in items.into_iter().enumerate() {
                    let label = format!("{key}[{i}]");
                    if key == "servers" {
                        if let Some(s) = parse_part(&label, item, p) {
                            raw.servers.push(s);
                        }
                    } else if let Some(c) = parse_part(&label, item, p) {
                        raw.clients.push(c);
                    }
                }
            }
            "policy" => raw.policy = Some(value),
            "policy_file" => raw.policy_file = Some(value),
            "audit" => raw.audit = Some(value),
            "rules" => raw.rules = parse_part("rules", value, p),
            other => p.push(format!(
                "unknown top-level key {other:?} (expected one of: {TOP_KEYS})"
            )),
        }
    }
    raw
}
