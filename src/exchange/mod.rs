//! One exchange between a client and a server, without any transport: placeholders restored
//! toward the server, PII tokenized toward the model, and the flow policy and audit log that
//! decide and record what crosses.
//!
//! [`PiiCore`] works on parsed JSON-RPC messages (`serde_json::Value`, one message or a batch)
//! and knows nothing of HTTP. In the gateway, [`RewriteLayer`](crate::layer::RewriteLayer)
//! (and its SSE rewriter) drives it for every transport: the HTTP front, the stdio front (an
//! in-process Streamable HTTP client of the same stack) and stdio upstreams (child processes
//! behind a Streamable HTTP emulation) all reach it through that layer. Another transport can
//! drive it directly.
//!
//! - [`PiiCore::to_server`] plans the restore of a whole message (every batch element), asks the
//!   [`Hooks`] (flow policy) about every plan, then applies them all: all or nothing. On error
//!   nothing may be forwarded; answer the client with [`error_reply`] (or drop a notification).
//! - [`PiiCore::to_model`] tokenizes and never fails: when tokenizing fails it replaces the
//!   message by a JSON-RPC error response for the same id, or tells the caller to drop it
//!   ([`ToModel::Dropped`]). The raw message is never released.
//! - [`ExchangeCtx`] carries who, in which scope, with which server, and the requests a
//!   response may answer ([`RequestInfo`], by JSON-RPC id).
//! - [`Hooks`] are where flow policy and audit plug in; [`PolicyHooks`] enforces a
//!   [`Policy`](crate::policy::Policy) and, with an [`Auditor`](crate::audit::Auditor), records
//!   every decision and exchange.
//!
//! ```
//! use mcp_pii_gateway::exchange::{ExchangeCtx, PiiCore, ToServer};
//! use mcp_pii_gateway::vault::ScopeId;
//! let core = PiiCore::builtin();
//! let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "crm");
//! let mut msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
//! assert!(matches!(core.to_server(&mut msg, &ctx).unwrap(), ToServer::Unchanged));
//! ```

mod ctx;
mod hooks;
mod policy;
mod reply;

pub use ctx::{method_of, safe_name, ExchangeCtx, RequestInfo};
pub use hooks::{Hooks, NoHooks};
pub use policy::{untracked_kinds, PolicyHooks, PENDING_LIMIT};
pub use reply::{error_kind, error_reply, response_id, responses_as_errors, unanswered_errors};

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::jsonrpc::error_response;
use crate::rewrite::Rewriter;
use crate::vault::MemoryVault;
use reply::withheld_error;

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
