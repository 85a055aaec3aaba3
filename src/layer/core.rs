//! The transport-free message core: restore toward servers, tokenize toward the model.
//!
//! [`PiiCore`] works on parsed JSON-RPC messages (`serde_json::Value`, one message or a batch)
//! and knows nothing of HTTP; the tower layers drive it (the proxy's stdio front and stdio
//! upstreams reach it through those layers too).
//!
//! - [`PiiCore::to_server`] plans the restore of a whole message (every batch element), asks the
//!   [`Hooks`] (flow policy) about every plan, then applies them all: all or nothing. On error
//!   nothing may be forwarded; answer the client with [`error_reply`] (or drop a notification).
//! - [`PiiCore::to_model`] tokenizes and never fails: when tokenizing fails it replaces the
//!   message by a JSON-RPC error response for the same id, or tells the caller to drop it
//!   ([`ToModel::Dropped`]). The raw message is never released.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_pii_gateway::layer::core::{ExchangeCtx, PiiCore, ToServer};
//! use mcp_pii_gateway::vault::ScopeId;
//! let core = PiiCore::builtin();
//! let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "crm");
//! let mut msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
//! assert!(matches!(core.to_server(&mut msg, &ctx).unwrap(), ToServer::Unchanged));
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::jsonrpc::error_response;
use crate::rewrite::{RestorePlan, Rewriter, TokenizeReport};
use crate::vault::{MemoryVault, ScopeId};

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

/// What [`PiiCore::to_server`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToServer {
    /// Nothing to restore: forward the original bytes.
    Unchanged,
    /// Placeholders were restored in place: re-serialize the message.
    Restored {
        /// How many distinct placeholders (summed over batch elements) were restored.
        placeholders: usize,
    },
}

/// What [`PiiCore::to_model`] did. The message may be released unless it is [`Dropped`].
///
/// [`Dropped`]: ToModel::Dropped
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToModel {
    /// No PII: the original bytes may be released.
    Unchanged,
    /// PII was tokenized in place: re-serialize the message.
    Tokenized {
        /// Placeholders written (distinct per message, summed over batch elements).
        placeholders: usize,
        /// Of those, how many were new to the scope.
        minted: usize,
    },
    /// Tokenizing failed for at least one response: the message now holds JSON-RPC error
    /// responses in its place (batch elements that could not be answered were removed).
    /// Re-serialize it.
    Replaced,
    /// Tokenizing failed and nothing can be sent in its place (a notification, a
    /// server-initiated request, or a batch of those): release nothing.
    Dropped,
}

impl ToModel {
    /// True when the message must be re-serialized before release.
    pub fn is_changed(&self) -> bool {
        matches!(self, ToModel::Tokenized { .. } | ToModel::Replaced)
    }
}

/// Extension points for flow policy and audit. Every method has a no-op default.
///
/// Hooks run synchronously on the message path: keep them cheap and never log values.
pub trait Hooks: Send + Sync + 'static {
    /// Decides whether a client→server message may be forwarded to `ctx.server`; called once per
    /// message (once per batch element) before anything is applied, also when `plan` is empty
    /// (so a policy can look for PII the model typed itself: `msg` is the message as the client
    /// sent it, with placeholders). `request` is the request the element is (`None` for
    /// notifications and responses to server-initiated requests). For a mirror header value
    /// (`Mcp-Name`, `Mcp-Param-*`) `msg` is that value as a JSON string. An error rejects the
    /// whole message: nothing is forwarded.
    fn check_restore(
        &self,
        ctx: &ExchangeCtx,
        request: Option<&RequestInfo>,
        msg: &Value,
        plan: &RestorePlan,
    ) -> Result<()> {
        let _ = (ctx, request, msg, plan);
        Ok(())
    }
    /// A client→server message was restored (`placeholders` > 0) and will be forwarded.
    fn restored(&self, ctx: &ExchangeCtx, placeholders: usize) {
        let _ = (ctx, placeholders);
    }
    /// A client→server message was rejected with `error`; nothing was forwarded.
    fn rejected(&self, ctx: &ExchangeCtx, error: &Error) {
        let _ = (ctx, error);
    }
    /// A server→client message was tokenized and is about to be released. `answers` is the
    /// request it answers, when it is a response to a request of this exchange. An error
    /// withholds the message (fail closed: replaced by an error response, or dropped).
    fn tokenized(
        &self,
        ctx: &ExchangeCtx,
        answers: Option<&RequestInfo>,
        report: &TokenizeReport,
    ) -> Result<()> {
        let _ = (ctx, answers, report);
        Ok(())
    }
    /// Tokenizing a server→client message failed; it was replaced or dropped.
    fn withheld(&self, ctx: &ExchangeCtx, error: &Error) {
        let _ = (ctx, error);
    }
}

/// Hooks that do nothing (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;
impl Hooks for NoHooks {}

/// The transport-free core: a [`Rewriter`] plus [`Hooks`]. Cheap to clone; share one per
/// gateway (the server name travels in the [`ExchangeCtx`]).
#[derive(Clone)]
pub struct PiiCore {
    rewriter: Rewriter,
    hooks: Arc<dyn Hooks>,
}

impl fmt::Debug for PiiCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PiiCore")
            .field("rewriter", &self.rewriter)
            .finish_non_exhaustive()
    }
}

impl PiiCore {
    /// A core over `rewriter`, with no hooks.
    pub fn new(rewriter: Rewriter) -> PiiCore {
        PiiCore {
            rewriter,
            hooks: Arc::new(NoHooks),
        }
    }
    /// The built-in detector and a fresh in-memory vault with its defaults.
    pub fn builtin() -> PiiCore {
        PiiCore::new(Rewriter::new(
            Arc::new(Detector::builtin()),
            Arc::new(MemoryVault::builder().build()),
        ))
    }
    /// Sets the hooks (flow policy, audit). Default: [`NoHooks`].
    pub fn with_hooks(mut self, hooks: Arc<dyn Hooks>) -> PiiCore {
        self.hooks = hooks;
        self
    }
    /// The rewriter.
    pub fn rewriter(&self) -> &Rewriter {
        &self.rewriter
    }
    /// The hooks.
    pub fn hooks(&self) -> &Arc<dyn Hooks> {
        &self.hooks
    }

    /// Restores placeholders in a client→server message or batch, all or nothing.
    ///
    /// Every element is planned and checked by [`Hooks::check_restore`] before any is applied;
    /// on error `msg` is untouched and nothing may be forwarded (see [`error_reply`]).
    pub fn to_server(&self, msg: &mut Value, ctx: &ExchangeCtx) -> Result<ToServer> {
        let result = self.to_server_inner(msg, ctx);
        match &result {
            Ok(ToServer::Restored { placeholders }) => self.hooks.restored(ctx, *placeholders),
            Ok(ToServer::Unchanged) => {}
            Err(e) => self.hooks.rejected(ctx, e),
        }
        result
    }

    fn to_server_inner(&self, msg: &mut Value, ctx: &ExchangeCtx) -> Result<ToServer> {
        let scope = &ctx.scope;
        match msg {
            Value::Array(items) => {
                let mut plans = Vec::with_capacity(items.len());
                for item in items.iter() {
                    // As toward the model: an element that is not an object is no message,
                    // and all of it is restored.
                    let plan = if item.is_object() {
                        self.rewriter.plan_restore_message(item, scope)?
                    } else {
                        self.rewriter.plan_restore_value(item, scope)?
                    };
                    let req = RequestInfo::from_message(item);
                    self.hooks.check_restore(ctx, req.as_ref(), item, &plan)?;
                    plans.push(plan);
                }
                let mut placeholders = 0;
                for (item, plan) in items.iter_mut().zip(&plans) {
                    if !plan.is_empty() {
                        placeholders += plan.uses.len();
                        if item.is_object() {
                            self.rewriter.apply_restore_message(item, plan);
                        } else {
                            self.rewriter.apply_restore(item, plan);
                        }
                    }
                }
                Ok(if placeholders == 0 {
                    ToServer::Unchanged
                } else {
                    ToServer::Restored { placeholders }
                })
            }
            single => {
                let plan = self.rewriter.plan_restore_message(single, scope)?;
                let req = RequestInfo::from_message(single);
                self.hooks.check_restore(ctx, req.as_ref(), single, &plan)?;
                if plan.is_empty() {
                    return Ok(ToServer::Unchanged);
                }
                self.rewriter.apply_restore_message(single, &plan);
                Ok(ToServer::Restored {
                    placeholders: plan.uses.len(),
                })
            }
        }
    }

    /// Restores placeholders in one free-standing string that travels with a message (an
    /// `Mcp-Name` or `Mcp-Param-*` header value). `Ok(None)` when it holds none.
    pub fn restore_text(&self, text: &str, ctx: &ExchangeCtx) -> Result<Option<String>> {
        let mut v = Value::String(text.to_owned());
        let plan = self.rewriter.plan_restore_value(&v, &ctx.scope)?;
        if plan.is_empty() {
            return Ok(None);
        }
        self.hooks.check_restore(ctx, ctx.requests.first(), &v, &plan)?;
        self.rewriter.apply_restore(&mut v, &plan);
        match v {
            Value::String(s) => Ok(Some(s)),
            _ => Err(Error::internal("restoring a string produced a non-string")),
        }
    }

    /// Tokenizes a server→client message or batch in place; never releases raw data.
    ///
    /// A batch is handled element by element so that one failing element does not cost the
    /// others. See [`ToModel`] for what to send.
    pub fn to_model(&self, msg: &mut Value, ctx: &ExchangeCtx) -> ToModel {
        if let Value::Array(items) = msg {
            let mut placeholders = 0;
            let mut minted = 0;
            let mut failed = false;
            let mut keep = Vec::with_capacity(items.len());
            for item in items.iter_mut() {
                match self.to_model_one(item, ctx) {
                    ToModel::Unchanged => keep.push(true),
                    ToModel::Tokenized {
                        placeholders: p,
                        minted: m,
                    } => {
                        placeholders += p;
                        minted += m;
                        keep.push(true);
                    }
                    ToModel::Replaced => {
                        failed = true;
                        keep.push(true);
                    }
                    ToModel::Dropped => {
                        failed = true;
                        keep.push(false);
                    }
                }
            }
            if failed {
                let mut flags = keep.into_iter();
                items.retain(|_| flags.next().unwrap_or(false));
                return if items.is_empty() {
                    ToModel::Dropped
                } else {
                    ToModel::Replaced
                };
            }
            return if placeholders == 0 {
                ToModel::Unchanged
            } else {
                ToModel::Tokenized { placeholders, minted }
            };
        }
        self.to_model_one(msg, ctx)
    }

    fn to_model_one(&self, msg: &mut Value, ctx: &ExchangeCtx) -> ToModel {
        // Ids, methods and progress tokens are relayed untouched (the client matches on them),
        // so they must hold no PII: a message whose protocol members do is withheld whole, and
        // never answered under an id that holds PII.
        if let Some(member) = self.protocol_member_with_pii(msg, ctx) {
            tracing::warn!(
                server = %ctx.server,
                member,
                "a message toward the model holds PII in a protocol member; it was withheld"
            );
            let e = Error::upstream(format!(
                "the server's message holds personal data in its `{member}`, which the gateway cannot rewrite"
            ));
            self.hooks.withheld(ctx, &e);
            // Answer in its place only under an id that may be shown.
            if self.id_is_clean(msg, ctx) {
                if let Some(id) = response_id(msg) {
                    *msg = error_response(id, withheld_error(&e));
                    return ToModel::Replaced;
                }
            }
            *msg = Value::Null;
            return ToModel::Dropped;
        }
        // Read the id before rewriting: the rewriter leaves ids alone, but on error the value is
        // in an unspecified state.
        let response_id = response_id(msg);
        let answers = response_id.as_ref().and_then(|id| ctx.request_for(id));
        // Only an object is a message: anything else in a message's place (an array inside a
        // batch, a bare string) is no JSON-RPC, but a client still decodes it: every string
        // in it is scanned, protocol names or not.
        let tokenized = if msg.is_object() {
            self.rewriter.tokenize_message(msg, &ctx.scope, &ctx.server)
        } else {
            self.rewriter.tokenize_value(msg, &ctx.scope, &ctx.server)
        };
        let tokenized =
            tokenized.and_then(|report| self.hooks.tokenized(ctx, answers, &report).map(|_| report));
        match tokenized {
            Ok(report) => {
                if report.placeholders.is_empty() {
                    ToModel::Unchanged
                } else {
                    ToModel::Tokenized {
                        placeholders: report.placeholders.len(),
                        minted: report.placeholders.iter().filter(|t| t.minted).count(),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    server = %ctx.server,
                    error = error_kind(&e),
                    "could not tokenize a message toward the model; it was withheld"
                );
                self.hooks.withheld(ctx, &e);
                match response_id {
                    Some(id) => {
                        *msg = error_response(id, withheld_error(&e));
                        ToModel::Replaced
                    }
                    None => {
                        *msg = Value::Null;
                        ToModel::Dropped
                    }
                }
            }
        }
    }

    /// The name of the first member the rewriter leaves untouched (`jsonrpc`, `id`, `method`,
    /// `progressToken`, `requestId`) that holds something the detector finds, in any string
    /// or member name of whatever JSON it is. A response's id that is one of the exchange's
    /// own requests is the client's text.
    fn protocol_member_with_pii(&self, msg: &Value, ctx: &ExchangeCtx) -> Option<&'static str> {
        let obj = msg.as_object()?;
        let pii = |v: Option<&Value>| v.is_some_and(|v| self.holds_pii(v));
        if pii(obj.get("jsonrpc")) {
            return Some("jsonrpc");
        }
        if !self.id_is_clean(msg, ctx) {
            return Some("id");
        }
        if pii(obj.get("method")) {
            return Some("method");
        }
        let params = obj.get("params")?;
        if pii(params.get("progressToken")) || pii(params.get("_meta").and_then(|m| m.get("progressToken"))) {
            return Some("progressToken");
        }
        if pii(params.get("requestId")) {
            return Some("requestId");
        }
        None
    }

    /// False when the message's `id` holds PII and is not one of the exchange's own requests
    /// (the client's text): no answer may carry it.
    fn id_is_clean(&self, msg: &Value, ctx: &ExchangeCtx) -> bool {
        let Some(id) = msg.get("id") else {
            return true;
        };
        !self.holds_pii(id) || response_id(msg).is_some_and(|id| ctx.request_for(&id).is_some())
    }

    /// True when any string or member name in `v` holds something the detector finds.
    fn holds_pii(&self, v: &Value) -> bool {
        let detector = self.rewriter.detector();
        let found = |s: &str| detector.might_contain(s) && !detector.find(s).is_empty();
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) if found(s) => return true,
                Value::Array(a) => stack.extend(a),
                Value::Object(m) => {
                    if m.keys().any(|k| found(k)) {
                        return true;
                    }
                    stack.extend(m.values());
                }
                _ => {}
            }
        }
        false
    }

    /// Tokenizes free text toward the model (an SSE comment, a non-JSON body).
    /// `Ok(None)` when it holds no PII.
    pub fn tokenize_text(&self, text: &str, ctx: &ExchangeCtx) -> Result<Option<String>> {
        // Most such text (`id: <uuid>`, `event: message`) cannot hold anything: no copy, no pass.
        if !text.contains('[') && !self.rewriter.detector().might_contain(text) {
            return Ok(None);
        }
        let (out, report) = self.rewriter.tokenize_text(text, &ctx.scope, &ctx.server)?;
        Ok(if report.placeholders.is_empty() {
            None
        } else {
            Some(out)
        })
    }
}

/// A short, value-free name for an error's kind, for log lines (error messages name
/// placeholders and JSON paths; logs get only this).
pub fn error_kind(e: &Error) -> &'static str {
    if e.is_unknown_placeholder() {
        "unknown_placeholder"
    } else if e.is_policy_denied() {
        "policy_denied"
    } else if e.is_scope_full() {
        "scope_full"
    } else if e.is_bad_input() {
        "bad_input"
    } else if e.is_upstream() {
        "upstream"
    } else if e.is_vault_unavailable() {
        "vault_unavailable"
    } else {
        "internal"
    }
}

/// The JSON-RPC error object sent instead of a response that could not be tokenized.
fn withheld_error(e: &Error) -> Value {
    let mut err = e.to_jsonrpc_error();
    if let Some(obj) = err.as_object_mut() {
        obj.insert(
            "message".into(),
            Value::String(format!(
                "the gateway withheld the server's response because it could not tokenize it: {e}; \
                 the request itself reached the server and may have taken effect"
            )),
        );
    }
    err
}

/// The id of a response (`result` or `error` member and a non-null id), if `msg` is one.
pub fn response_id(msg: &Value) -> Option<Value> {
    let obj = msg.as_object()?;
    if obj.contains_key("method") || !(obj.contains_key("result") || obj.contains_key("error")) {
        return None;
    }
    obj.get("id").filter(|id| !id.is_null()).cloned()
}

/// What to answer a client whose message `msg` was rejected with `err`: an error response for
/// each request in it (an object for one message, an array for a batch), or `None` when it held
/// no request (notifications and responses get no answer).
pub fn error_reply(msg: &Value, err: &Error) -> Option<Value> {
    let error = nothing_forwarded(err);
    match msg {
        Value::Array(items) => {
            let out: Vec<Value> = items
                .iter()
                .filter_map(RequestInfo::from_message)
                .map(|r| error_response(r.id, error.clone()))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => RequestInfo::from_message(other).map(|r| error_response(r.id, error)),
    }
}

/// `err` as a JSON-RPC error object for a client message that was not forwarded, saying so.
fn nothing_forwarded(err: &Error) -> Value {
    let mut error = err.to_jsonrpc_error();
    if let Some(Value::String(m)) = error.get_mut("message") {
        if !m.ends_with("nothing was forwarded") {
            m.push_str("; nothing was forwarded");
        }
    }
    error
}

/// What to forward to the server instead of a rejected client→server message that holds
/// responses (the client's answers to server-initiated requests) but no request: an error
/// response with the same id for each response, so the server does not wait for an answer that
/// will never come (an object for one message, an array for a batch). Notifications are left
/// out. `None` when there is no response in `msg`.
pub fn responses_as_errors(msg: &Value, err: &Error) -> Option<Value> {
    let error = nothing_forwarded(err);
    match msg {
        Value::Array(items) => {
            let out: Vec<Value> = items
                .iter()
                .filter_map(response_id)
                .map(|id| error_response(id, error.clone()))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => response_id(other).map(|id| error_response(id, error)),
    }
}

/// Error responses for the requests of `ctx` whose ids are not in `answered`, as one message
/// (an object for one, an array for several); `None` when all were answered.
pub fn unanswered_errors(ctx: &ExchangeCtx, answered: &[Value], error: &Value) -> Option<Value> {
    let mut out: Vec<Value> = ctx
        .requests
        .iter()
        .filter(|r| !answered.contains(&r.id))
        .map(|r| error_response(r.id.clone(), error.clone()))
        .collect();
    match out.len() {
        0 => None,
        1 => out.pop(),
        _ => Some(Value::Array(out)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jsonrpc::INVALID_PARAMS;
    use serde_json::json;

    #[test]
    fn safe_names() {
        assert_eq!(&*safe_name("tools/call"), "tools/call");
        assert_eq!(&*safe_name("notifications/progress"), "notifications/progress");
        assert_eq!(&*safe_name("ana.lima@example.org"), "<other>");
        assert_eq!(&*safe_name("call 2025550143"), "<other>");
        assert_eq!(&*safe_name("x12345"), "<other>");
        assert_eq!(&*safe_name(""), "<other>");
    }

    #[test]
    fn request_info_and_replies() {
        let batch = json!([
            {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":"a","method":"ping"}
        ]);
        let reqs = RequestInfo::collect(&batch);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].tool.as_deref(), Some("send"));
        let e = Error::unknown_placeholder("[EMAIL_9]", "/params/arguments/to");
        let reply = error_reply(&batch, &e).unwrap();
        assert_eq!(reply.as_array().unwrap().len(), 2);
        assert_eq!(reply[1]["id"], "a");
        assert_eq!(reply[0]["error"]["code"], INVALID_PARAMS);
        let note = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{}});
        assert!(error_reply(&note, &e).is_none());
    }

    #[test]
    fn response_ids() {
        assert_eq!(
            response_id(&json!({"jsonrpc":"2.0","id":3,"result":{}})),
            Some(json!(3))
        );
        assert_eq!(response_id(&json!({"jsonrpc":"2.0","id":null,"error":{}})), None);
        assert_eq!(response_id(&json!({"jsonrpc":"2.0","id":3,"method":"x"})), None);
    }
}
