//! The context of one exchange, and what can be read of its requests without showing values.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::vault::ScopeId;

/// One client→server request of an exchange: what a response with the same id answers.
///
/// Method and tool names are kept only when they look like protocol names (no PII can hide in
/// them): see [`RequestInfo::from_message`].
#[derive(Clone, PartialEq)]
pub struct RequestInfo {
    /// The JSON-RPC id (number or string), as sent. Never log it: clients choose it.
    pub id: Value,
    /// The method, e.g. `tools/call`.
    pub method: Arc<str>,
    /// The tool name, for `tools/call`.
    pub tool: Option<Arc<str>>,
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("tool", &self.tool)
            .finish_non_exhaustive()
    }
}

impl RequestInfo {
    /// The request in one message object, if it is a request (has a non-null `id` and a
    /// `method`). Method and tool names that do not look like protocol names are replaced by
    /// `"<other>"`, so the info is always safe to log.
    pub fn from_message(msg: &Value) -> Option<RequestInfo> {
        let obj = msg.as_object()?;
        let id = obj.get("id").filter(|id| !id.is_null())?;
        let method = obj.get("method")?.as_str()?;
        let tool = if method == "tools/call" {
            obj.get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .map(safe_name)
        } else {
            None
        };
        Some(RequestInfo {
            id: id.clone(),
            method: safe_name(method),
            tool,
        })
    }

    /// Every request in a message or batch, in order.
    pub fn collect(msg: &Value) -> Vec<RequestInfo> {
        match msg {
            Value::Array(items) => items.iter().filter_map(RequestInfo::from_message).collect(),
            other => RequestInfo::from_message(other).into_iter().collect(),
        }
    }
}

/// The method of a message (the first one of a batch) as a name safe to log; `None` for a
/// response.
pub fn method_of(msg: &Value) -> Option<Arc<str>> {
    let first = match msg {
        Value::Array(items) => items.first()?,
        other => other,
    };
    first.get("method")?.as_str().map(safe_name)
}

/// A name safe to log: protocol-looking names (`[A-Za-z0-9_./-]`, at most 64 bytes, no run of
/// 5 or more digits) as they are, anything else as `<other>`.
pub fn safe_name(name: &str) -> Arc<str> {
    let mut digits = 0;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
            digits < 5 && (b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        });
    if ok {
        Arc::from(name)
    } else {
        Arc::from("<other>")
    }
}

/// The context of one exchange: who, in which scope, with which server, since when, and which
/// client requests it carries (to correlate responses by JSON-RPC id).
#[derive(Clone, Debug)]
pub struct ExchangeCtx {
    /// The client name (`anonymous` when no clients are configured).
    pub client: Arc<str>,
    /// The placeholder scope.
    pub scope: ScopeId,
    /// The upstream server's name.
    pub server: Arc<str>,
    /// When the exchange started.
    pub started: Instant,
    /// The client→server requests of this exchange (empty for GET streams and notifications).
    pub requests: Arc<[RequestInfo]>,
}

impl ExchangeCtx {
    /// A context for `scope` with `server`, starting now, with no requests.
    pub fn new(scope: ScopeId, server: impl Into<Arc<str>>) -> ExchangeCtx {
        ExchangeCtx {
            client: Arc::from(scope.client()),
            scope,
            server: server.into(),
            started: Instant::now(),
            requests: Arc::from(Vec::new()),
        }
    }
    /// A context for one client→server message: [`new`](Self::new) plus the message's requests.
    pub fn for_message(scope: ScopeId, server: impl Into<Arc<str>>, msg: &Value) -> ExchangeCtx {
        ExchangeCtx::new(scope, server).with_requests(RequestInfo::collect(msg))
    }
    /// The same context carrying `requests` (see [`RequestInfo::collect`]).
    pub fn with_requests(mut self, requests: Vec<RequestInfo>) -> ExchangeCtx {
        self.requests = Arc::from(requests);
        self
    }
    /// The same context with another scope (e.g. the session id a server assigned in its
    /// answer to `initialize`).
    pub fn with_scope(mut self, scope: ScopeId) -> ExchangeCtx {
        self.client = Arc::from(scope.client());
        self.scope = scope;
        self
    }
    /// The request a response with `id` answers, if it belongs to this exchange.
    pub fn request_for(&self, id: &Value) -> Option<&RequestInfo> {
        self.requests.iter().find(|r| &r.id == id)
    }
    /// The first request's method, for logs (`None` for GET streams).
    pub fn method(&self) -> Option<&str> {
        self.requests.first().map(|r| &*r.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert_eq!(&*safe_name("tools/call"), "tools/call");
        assert_eq!(&*safe_name("notifications/progress"), "notifications/progress");
        assert_eq!(&*safe_name("ana.lima@example.org"), "<other>");
        assert_eq!(&*safe_name("call 2025550143"), "<other>");
        assert_eq!(&*safe_name("x12345"), "<other>");
        assert_eq!(&*safe_name(""), "<other>");
    }
}
