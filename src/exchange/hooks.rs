//! Where flow policy and audit plug into an exchange.

use serde_json::Value;

use super::{ExchangeCtx, RequestInfo};
use crate::error::{Error, Result};
use crate::rewrite::{RestorePlan, TokenizeReport};

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
