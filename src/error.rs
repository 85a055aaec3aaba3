//! The crate's one error type.
//!
//! Every error says where it came from ([`Origin`]): the downstream client, an upstream server,
//! or the gateway itself. That decides the JSON-RPC error code, the HTTP status and the log line.
//! No error ever holds a raw PII value: messages name placeholders, kinds, JSON paths and
//! servers, never the values behind them.
//!
//! ```
//! use mcp_pii_gateway::{Error, error::Origin};
//! let e = Error::unknown_placeholder("[EMAIL_7]", "/params/arguments/to");
//! assert!(e.is_unknown_placeholder());
//! assert_eq!(e.origin(), Origin::Client);
//! assert!(e.to_string().contains("[EMAIL_7]"));
//! ```

use std::fmt;

use crate::jsonrpc;

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The downstream client sent something we must refuse (bad input, unknown placeholder,
    /// denied flow).
    Client,
    /// An upstream server failed or misbehaved.
    Upstream,
    /// The gateway itself (vault full, misconfiguration, a bug).
    Internal,
}

/// The gateway's error: an opaque kind plus its origin. Use the `is_*` predicates to inspect it.
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong. Kept crate-private so variants can change; public callers use predicates.
#[derive(Debug)]
pub(crate) enum ErrorKind {
    /// A placeholder in outgoing data was never issued in this scope (or expired).
    UnknownPlaceholder { placeholder: String, path: String },
    /// A scope holds as many entries as it may.
    ScopeFull { limit: usize },
    /// A rule file or rule definition is invalid.
    Rule { rule: String, reason: String },
    /// Configuration is invalid; one line per problem.
    Config { problems: Vec<String> },
    /// A flow policy denied a request.
    PolicyDenied { message: String },
    /// Input that is not valid (not JSON, missing field, ...).
    BadInput { message: String },
    /// An upstream failed.
    Upstream { message: String },
    /// Audit sink failure.
    Audit { message: String },
    /// The vault's store cannot be reached (or answered too slowly).
    VaultUnavailable { message: String },
    /// I/O failure inside the gateway.
    Io(std::io::Error),
    /// Anything else internal.
    Internal { message: String },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }
    /// A placeholder that was never issued in this scope, found at a JSON path.
    pub fn unknown_placeholder(placeholder: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnknownPlaceholder {
            placeholder: placeholder.into(),
            path: path.into(),
        })
    }
    /// The scope's entry cap was reached.
    pub fn scope_full(limit: usize) -> Self {
        Self::new(ErrorKind::ScopeFull { limit })
    }
    /// An invalid rule.
    pub fn rule(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rule {
            rule: rule.into(),
            reason: reason.into(),
        })
    }
    /// Invalid configuration: every problem found, one per entry.
    pub fn config(problems: Vec<String>) -> Self {
        Self::new(ErrorKind::Config { problems })
    }
    /// A policy denial; the message must name placeholders, kinds, servers and rules only.
    pub fn policy_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PolicyDenied {
            message: message.into(),
        })
    }
    /// Bad input from the client.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput {
            message: message.into(),
        })
    }
    /// An upstream failure.
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Upstream {
            message: message.into(),
        })
    }
    /// An audit sink failure.
    pub fn audit(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Audit {
            message: message.into(),
        })
    }
    /// The vault's store is unreachable or too slow; the message must say which store and why,
    /// never a value.
    pub fn vault_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::VaultUnavailable {
            message: message.into(),
        })
    }
    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal {
            message: message.into(),
        })
    }

    /// Where this error came from.
    pub fn origin(&self) -> Origin {
        match &self.kind {
            ErrorKind::UnknownPlaceholder { .. }
            | ErrorKind::PolicyDenied { .. }
            | ErrorKind::BadInput { .. } => Origin::Client,
            ErrorKind::Upstream { .. } => Origin::Upstream,
            _ => Origin::Internal,
        }
    }
    /// True for an unknown (never issued, or expired) placeholder.
    pub fn is_unknown_placeholder(&self) -> bool {
        matches!(self.kind, ErrorKind::UnknownPlaceholder { .. })
    }
    /// True when a scope reached its entry cap.
    pub fn is_scope_full(&self) -> bool {
        matches!(self.kind, ErrorKind::ScopeFull { .. })
    }
    /// True for invalid configuration.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::Config { .. })
    }
    /// True for an invalid rule.
    pub fn is_rule(&self) -> bool {
        matches!(self.kind, ErrorKind::Rule { .. })
    }
    /// True for a policy denial.
    pub fn is_policy_denied(&self) -> bool {
        matches!(self.kind, ErrorKind::PolicyDenied { .. })
    }
    /// True for bad client input.
    pub fn is_bad_input(&self) -> bool {
        matches!(self.kind, ErrorKind::BadInput { .. })
    }
    /// True when the vault's store is unreachable or too slow.
    pub fn is_vault_unavailable(&self) -> bool {
        matches!(self.kind, ErrorKind::VaultUnavailable { .. })
    }
    /// True for an upstream failure.
    pub fn is_upstream(&self) -> bool {
        matches!(self.kind, ErrorKind::Upstream { .. })
    }
    /// The configuration problems, when this is a config error.
    pub fn config_problems(&self) -> &[String] {
        match &self.kind {
            ErrorKind::Config { problems } => problems,
            _ => &[],
        }
    }

    /// The JSON-RPC error code for this error ([`crate::jsonrpc`]).
    ///
    /// Client errors are [`INVALID_PARAMS`](jsonrpc::INVALID_PARAMS) for placeholders and
    /// input, [`ACCESS_DENIED`](jsonrpc::ACCESS_DENIED) for policy denials; upstream failures
    /// are [`UPSTREAM_FAILED`](jsonrpc::UPSTREAM_FAILED); internal ones
    /// [`INTERNAL_ERROR`](jsonrpc::INTERNAL_ERROR).
    pub fn jsonrpc_code(&self) -> i64 {
        match &self.kind {
            ErrorKind::UnknownPlaceholder { .. } | ErrorKind::BadInput { .. } => jsonrpc::INVALID_PARAMS,
            ErrorKind::PolicyDenied { .. } => jsonrpc::ACCESS_DENIED,
            ErrorKind::Upstream { .. } => jsonrpc::UPSTREAM_FAILED,
            _ => jsonrpc::INTERNAL_ERROR,
        }
    }

    /// This error as a JSON-RPC error object (`{"code":..,"message":..}`), safe to send to the
    /// client: it says as little as needed and never echoes a sensitive value.
    pub fn to_jsonrpc_error(&self) -> serde_json::Value {
        jsonrpc::error_object(self.jsonrpc_code(), &self.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::UnknownPlaceholder { placeholder, path } => write!(
                f,
                "unknown placeholder {placeholder} at {path}: it was never issued in this scope or has expired; nothing was forwarded"
            ),
            ErrorKind::ScopeFull { limit } => {
                write!(f, "the scope holds its maximum of {limit} vault entries")
            }
            ErrorKind::Rule { rule, reason } => write!(f, "rule {rule}: {reason}"),
            ErrorKind::Config { problems } => {
                write!(f, "invalid configuration ({} problem(s)):", problems.len())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            ErrorKind::PolicyDenied { message } => write!(f, "flow policy denied the request: {message}"),
            ErrorKind::BadInput { message } => write!(f, "bad input: {message}"),
            ErrorKind::Upstream { message } => write!(f, "upstream error: {message}"),
            ErrorKind::Audit { message } => write!(f, "audit log error: {message}"),
            ErrorKind::VaultUnavailable { message } => write!(f, "the vault is unavailable: {message}"),
            ErrorKind::Io(e) => write!(f, "I/O error: {e}"),
            ErrorKind::Internal { message } => write!(f, "internal gateway error: {message}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("origin", &self.origin())
            .field("kind", &self.kind)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorKind::Io(e))
    }
}
