//! Flow policy and audit log as [`Hooks`]: [`PolicyHooks`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use serde_json::Value;

use super::{error_kind, method_of, ExchangeCtx, Hooks, RequestInfo};
use crate::audit::{Auditor, PlaceholderRecord, Record};
use crate::detect::{Detector, Kind};
use crate::error::{Error, Result};
use crate::policy::{FlowItem, FlowRequest, Policy, UntrackedPii};
use crate::rewrite::{for_each_message_text, RestorePlan, TokenizeReport};
use crate::vault::{Secret, Vault};

/// How many requests' restored placeholders [`PolicyHooks`] keeps, by default, until their
/// responses are recorded.
pub const PENDING_LIMIT: usize = 4096;

/// Flow policy (and optionally the audit log) as [`Hooks`].
///
/// - Every client→server message that carries placeholders (or, unless the policy says
///   `untracked_pii = "allow"`, PII the vault never issued) is evaluated under the
///   [`Policy`] for its target server and tool; with an [`Auditor`] the decision is recorded
///   (placeholders, kinds, origins, rule ids, value fingerprints) before anything is forwarded,
///   and a failure to record rejects the message.
/// - With an auditor, every response to a request of the exchange gets an `exchange` record
///   (placeholders minted in the response and restored in the request it answers, outcome,
///   duration); a failure to record withholds the response.
///
/// The placeholders restored in a request are kept from its (allowed) decision until its
/// response, keyed by the exchange (client, server, the [`ExchangeCtx::started`] instant that
/// every clone of one exchange's context shares) and the request's JSON-RPC id. The scope is not
/// part of the key: it may change between request and response (the session id a server assigns
/// in its answer to `initialize`). Requests that never get a response (rejected, withheld, no
/// body) leave an entry no later exchange can match; at most [`PENDING_LIMIT`] entries are kept
/// (see [`PolicyHooks::with_pending_limit`]), the oldest are forgotten beyond that.
///
/// ```
/// use std::sync::Arc;
/// use mcp_pii_gateway::exchange::{PiiCore, PolicyHooks};
/// use mcp_pii_gateway::layer::PiiLayer;
/// use mcp_pii_gateway::policy::Policy;
/// let core = PiiCore::builtin();
/// let hooks = PolicyHooks::new(Policy::default(), core.rewriter().detector().clone());
/// let layer = PiiLayer::with_core(core.with_hooks(Arc::new(hooks)), "crm");
/// # let _ = layer;
/// ```
pub struct PolicyHooks {
    policy: RwLock<Arc<Policy>>,
    detector: Arc<Detector>,
    audit: Option<(Arc<Auditor>, Arc<dyn Vault>)>,
    pending: Mutex<Pending>,
}

/// Identifies one request of one exchange; see [`PolicyHooks`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PendingKey {
    client: Arc<str>,
    server: Arc<str>,
    started: Instant,
    /// The JSON text of the id (so `1` and `"1"` differ). Never log it: clients choose it.
    id: String,
}

impl PendingKey {
    fn new(ctx: &ExchangeCtx, request: &RequestInfo) -> PendingKey {
        PendingKey {
            client: ctx.client.clone(),
            server: ctx.server.clone(),
            started: ctx.started,
            id: request.id.to_string(),
        }
    }
}

/// The placeholders restored in requests whose responses are not recorded yet, bounded.
#[derive(Debug)]
struct Pending {
    limit: usize,
    /// Insertion counter: the smallest is the oldest entry.
    next: u64,
    entries: HashMap<PendingKey, (u64, Vec<PlaceholderRecord>)>,
}

impl Pending {
    fn new(limit: usize) -> Pending {
        Pending {
            limit: limit.max(1),
            next: 0,
            entries: HashMap::new(),
        }
    }
    /// Adds `records` to the request's entry (once per placeholder), forgetting the oldest entry
    /// when full.
    fn add(&mut self, key: PendingKey, records: Vec<PlaceholderRecord>) {
        if let Some((_, have)) = self.entries.get_mut(&key) {
            for r in records {
                if !have.iter().any(|h| h.placeholder == r.placeholder) {
                    have.push(r);
                }
            }
            return;
        }
        if self.entries.len() >= self.limit {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
                tracing::warn!(
                    limit = self.limit,
                    "too many requests awaiting their response: the oldest one's exchange record \
                     will not list the placeholders it restored"
                );
            }
        }
        self.entries.insert(key, (self.next, records));
        self.next += 1;
    }
    fn take(&mut self, key: &PendingKey) -> Vec<PlaceholderRecord> {
        self.entries.remove(key).map(|(_, r)| r).unwrap_or_default()
    }
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
            pending: Mutex::new(Pending::new(PENDING_LIMIT)),
        }
    }
    /// Keeps the restored placeholders of at most `limit` requests (at least 1) until their
    /// responses are recorded. Default: [`PENDING_LIMIT`].
    pub fn with_pending_limit(self, limit: usize) -> PolicyHooks {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = Pending::new(limit);
        self
    }
    /// How many requests' restored placeholders are kept awaiting their responses.
    pub fn pending_len(&self) -> usize {
        self.pending_lock().entries.len()
    }
    fn pending_lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A cache of what to list in exchange records: usable after a panic elsewhere.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// The auditor, when the hooks record decisions.
    pub fn auditor(&self) -> Option<&Arc<Auditor>> {
        self.audit.as_ref().map(|(a, _)| a)
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
            Some((auditor, _)) => {
                let method = request.map(|r| r.method.clone()).or_else(|| method_of(msg));
                let actx = auditor.context(
                    &ctx.client,
                    &ctx.scope,
                    &ctx.server,
                    method.as_deref().unwrap_or("-"),
                    tool,
                );
                // The values, to fingerprint: the plan resolved them a moment ago.
                let values: Vec<Option<&Secret>> =
                    plan.uses.iter().map(|u| plan.value_of(&u.placeholder)).collect();
                auditor.enforce(&policy, &actx, &req, &values)?;
                // Allowed: what is restored goes into the exchange record of the response.
                if let Some(request) = request.filter(|_| !items.is_empty()) {
                    let restored = items
                        .iter()
                        .zip(&values)
                        .map(|(item, value)| auditor.placeholder(item, *value))
                        .collect();
                    self.pending_lock().add(PendingKey::new(ctx, request), restored);
                }
                Ok(())
            }
        }
    }

    fn rejected(&self, ctx: &ExchangeCtx, _error: &Error) {
        // Nothing was forwarded: no response will come for these requests.
        if self.audit.is_some() && !ctx.requests.is_empty() {
            let mut pending = self.pending_lock();
            for r in ctx.requests.iter() {
                pending.take(&PendingKey::new(ctx, r));
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
        // Taken first: whatever happens next, no later response can list them again.
        let restored = self.pending_lock().take(&PendingKey::new(ctx, request));
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
            restored,
            "ok",
            ctx.started.elapsed(),
            Some(policy.hash()),
        );
        auditor.exchange(record).map(|_| ()).inspect_err(|e| {
            tracing::error!(error = error_kind(e), "could not write the audit record");
        })
    }
}

/// The kinds of PII found in `msg` (placeholders are not PII), each once, in rule order. Only
/// what restoring reads is looked at: the members the rewriter leaves untouched (the envelope,
/// correlation tokens, base64 blobs) are skipped, as [`for_each_message_text`] says.
pub fn untracked_kinds(detector: &Detector, msg: &Value) -> Vec<Kind> {
    let mut found: Vec<Kind> = Vec::new();
    let mut spans = Vec::new();
    for_each_message_text(msg, &mut |s| {
        if !detector.might_contain(s) {
            return;
        }
        detector.find_into(s, &mut spans);
        for sp in spans.drain(..) {
            if !found.contains(&sp.kind) {
                found.push(sp.kind);
            }
        }
    });
    let order = detector.kinds();
    found.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::ScopeId;
    use serde_json::json;

    fn rec(p: &str) -> PlaceholderRecord {
        PlaceholderRecord {
            placeholder: p.to_owned(),
            kind: "EMAIL".to_owned(),
            origins: vec!["crm".to_owned()],
            fingerprint: None,
            rule_id: None,
            allowed: None,
        }
    }

    fn key(ctx: &ExchangeCtx, id: Value) -> PendingKey {
        let req = RequestInfo {
            id,
            method: Arc::from("tools/call"),
            tool: None,
        };
        PendingKey::new(ctx, &req)
    }

    #[test]
    fn pending_merges_takes_and_evicts_the_oldest() {
        let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "mail");
        let mut p = Pending::new(2);
        p.add(key(&ctx, json!(1)), vec![rec("[EMAIL_1]")]);
        p.add(key(&ctx, json!(1)), vec![rec("[EMAIL_1]"), rec("[EMAIL_2]")]);
        p.add(key(&ctx, json!("1")), vec![rec("[EMAIL_3]")]);
        assert_eq!(p.entries.len(), 2, "1 and \"1\" are different ids");
        p.add(key(&ctx, json!(2)), vec![rec("[EMAIL_4]")]);
        assert_eq!(p.entries.len(), 2);
        assert!(p.take(&key(&ctx, json!(1))).is_empty(), "the oldest was evicted");
        let names: Vec<String> = p
            .take(&key(&ctx, json!("1")))
            .into_iter()
            .map(|r| r.placeholder)
            .collect();
        assert_eq!(names, ["[EMAIL_3]"]);
        // Another exchange (another start) with the same id does not match.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let other = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "mail");
        assert!(p.take(&key(&other, json!(2))).is_empty());
        // The same exchange under another scope does.
        let moved = ctx.clone().with_scope(ScopeId::new("anonymous", "s1"));
        assert_eq!(p.take(&key(&moved, json!(2))).len(), 1);
        assert!(p.entries.is_empty());
    }

    #[test]
    fn merging_keeps_each_placeholder_once() {
        let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "mail");
        let mut p = Pending::new(PENDING_LIMIT);
        p.add(key(&ctx, json!(5)), vec![rec("[EMAIL_1]"), rec("[EMAIL_2]")]);
        p.add(key(&ctx, json!(5)), vec![rec("[EMAIL_2]"), rec("[EMAIL_1]")]);
        assert_eq!(p.take(&key(&ctx, json!(5))).len(), 2);
    }
}
