//! Flow policy and audit log as [`Hooks`]: [`PolicyHooks`].
//!
//! - Every client→server message that carries placeholders (or, unless the policy says
//!   `untracked_pii = "allow"`, PII the vault never issued) is evaluated under the
//!   [`Policy`] for its target server and tool; with an [`Auditor`] the decision is recorded
//!   (placeholders, kinds, origins, rule ids, value fingerprints) before anything is forwarded,
//!   and a failure to record rejects the message.
//! - With an auditor, every response to a request of the exchange gets an `exchange` record
//!   (placeholders minted, outcome, duration); a failure to record withholds the response.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_pii_gateway::detect::Detector;
//! use mcp_pii_gateway::layer::{core::PiiCore, policy_hooks::PolicyHooks, PiiLayer};
//! use mcp_pii_gateway::policy::Policy;
//! let core = PiiCore::builtin();
//! let hooks = PolicyHooks::new(Policy::default(), core.rewriter().detector().clone());
//! let layer = PiiLayer::with_core(core.with_hooks(Arc::new(hooks)), "crm");
//! # let _ = layer;
//! ```

use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::core::{error_kind, method_of, ExchangeCtx, Hooks, RequestInfo};
use crate::audit::{Auditor, Record};
use crate::detect::{Detector, Kind};
use crate::error::{Error, Result};
use crate::policy::{FlowItem, FlowRequest, Policy, UntrackedPii};
use crate::rewrite::{RestorePlan, TokenizeReport};
use crate::vault::{Secret, Vault};

/// Flow policy (and optionally the audit log) as [`Hooks`]; see the [module docs](self).
pub struct PolicyHooks {
    policy: RwLock<Arc<Policy>>,
    detector: Arc<Detector>,
    audit: Option<(Arc<Auditor>, Arc<dyn Vault>)>,
}

impl std::fmt::Debug for PolicyHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHooks")
            .field("policy_hash", &self.policy().hash())
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

impl PolicyHooks {
    /// Enforces `policy`; `detector` finds untracked PII in outgoing messages.
    pub fn new(policy: Policy, detector: Arc<Detector>) -> PolicyHooks {
        PolicyHooks {
            policy: RwLock::new(Arc::new(policy)),
            detector,
            audit: None,
        }
    }
    /// Records decisions and exchanges with `auditor`; `vault` (the rewriter's) provides the
    /// values of minted placeholders to fingerprint. Default: no audit log.
    pub fn with_auditor(mut self, auditor: Arc<Auditor>, vault: Arc<dyn Vault>) -> PolicyHooks {
        self.audit = Some((auditor, vault));
        self
    }
    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
    /// Puts `policy` in force for the next messages (and records it, with an auditor).
    pub fn set_policy(&self, policy: Policy) -> Result<()> {
        if let Some((a, _)) = &self.audit {
            a.policy(&policy)?;
        }
        let mut slot = self
            .policy
            .write()
            .map_err(|_| Error::internal("policy lock poisoned"))?;
        *slot = Arc::new(policy);
        Ok(())
    }
}

impl Hooks for PolicyHooks {
    fn check_restore(
        &self,
        ctx: &ExchangeCtx,
        request: Option<&RequestInfo>,
        msg: &Value,
        plan: &RestorePlan,
    ) -> Result<()> {
        let policy = self.policy();
        let items: Vec<FlowItem> = plan.uses.iter().map(FlowItem::from).collect();
        let untracked = if policy.untracked_pii() == UntrackedPii::Allow {
            Vec::new()
        } else {
            untracked_kinds(&self.detector, msg)
        };
        if items.is_empty() && untracked.is_empty() {
            return Ok(());
        }
        let tool = request.and_then(|r| r.tool.as_deref());
        let req = FlowRequest::new(&ctx.server, tool, &items).with_untracked(&untracked);
        match &self.audit {
            None => policy.evaluate(&req).check(),
            Some((auditor, vault)) => {
                let method = request.map(|r| r.method.clone()).or_else(|| method_of(msg));
                let actx = auditor.context(
                    &ctx.client,
                    &ctx.scope,
                    &ctx.server,
                    method.as_deref().unwrap_or("-"),
                    tool,
                );
                // The values, to fingerprint (the plan resolved them a moment ago).
                let mut secrets: Vec<Option<Secret>> = Vec::with_capacity(plan.uses.len());
                for u in &plan.uses {
                    secrets.push(vault.resolve(&ctx.scope, &u.placeholder)?.map(|e| e.value));
                }
                let values: Vec<Option<&Secret>> = secrets.iter().map(Option::as_ref).collect();
                auditor.enforce(&policy, &actx, &req, &values).map(|_| ())
            }
        }
    }

    fn tokenized(
        &self,
        ctx: &ExchangeCtx,
        answers: Option<&RequestInfo>,
        report: &TokenizeReport,
    ) -> Result<()> {
        let (Some((auditor, vault)), Some(request)) = (&self.audit, answers) else {
            return Ok(());
        };
        let mut minted = Vec::new();
        for t in report.placeholders.iter().filter(|t| t.minted) {
            if let Some(entry) = vault.resolve(&ctx.scope, &t.placeholder)? {
                minted.push(auditor.entry(&t.placeholder, &entry));
            }
        }
        let actx = auditor.context(
            &ctx.client,
            &ctx.scope,
            &ctx.server,
            &request.method,
            request.tool.as_deref(),
        );
        let policy = self.policy();
        let record = Record::exchange(
            &actx,
            minted,
            Vec::new(),
            "ok",
            ctx.started.elapsed(),
            Some(policy.hash()),
        );
        auditor.exchange(record).map(|_| ()).inspect_err(|e| {
            tracing::error!(error = error_kind(e), "could not write the audit record");
        })
    }
}

/// The kinds of PII found in the strings and keys of `msg` (placeholders are not PII), each
/// once, in rule order. The JSON-RPC envelope (`jsonrpc`, `id`, `method`) is skipped.
pub fn untracked_kinds(detector: &Detector, msg: &Value) -> Vec<Kind> {
    let mut found: Vec<Kind> = Vec::new();
    let mut spans = Vec::new();
    let mut stack: Vec<(&Value, bool)> = vec![(msg, true)];
    let mut check = |s: &str, found: &mut Vec<Kind>| {
        if !detector.might_contain(s) {
            return;
        }
        detector.find_into(s, &mut spans);
        for sp in spans.drain(..) {
            if !found.contains(&sp.kind) {
                found.push(sp.kind);
            }
        }
    };
    while let Some((v, envelope)) = stack.pop() {
        match v {
            Value::String(s) => check(s, &mut found),
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, envelope))),
            Value::Object(m) => {
                for (k, child) in m {
                    if envelope && matches!(k.as_str(), "jsonrpc" | "id" | "method") {
                        continue;
                    }
                    check(k, &mut found);
                    stack.push((child, false));
                }
            }
            _ => {}
        }
    }
    let order = detector.kinds();
    found.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    found
}
