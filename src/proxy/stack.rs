//! The per-server service stack: what sits between the front and each upstream.
//!
//! Named steps, outermost first (see `crate::layer`): the front's own checks (route, Host,
//! Origin, method, body size) → [`PiiLayer`] (scope and auth → trace → restore toward the server
//! and tokenize toward the model, with the flow-policy and audit hooks) → the [`Upstream`].
//! One [`PiiCore`] (one detector, one vault) is shared by every server, so one scope gets the
//! same placeholders from every server.

use std::convert::Infallible;
use std::sync::Arc;

use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

use super::front::{Front, ServerService};
use super::metrics::Metrics;
use super::upstream::Upstream;
use crate::config::{Config, VaultBackend};
use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::layer::body::{Body, BoxError};
use crate::layer::core::{ExchangeCtx, Hooks, NoHooks, PiiCore, RequestInfo};
use crate::layer::{Clients, PiiLayer};
use crate::rewrite::{RestorePlan, Rewriter, TokenizeReport};
use crate::vault::{MemoryVault, Vault};

/// Counts placeholders for `/metrics`, then defers to the inner hooks (policy, audit).
struct MetricsHooks {
    inner: Arc<dyn Hooks>,
    metrics: Arc<Metrics>,
}

impl Hooks for MetricsHooks {
    fn check_restore(
        &self,
        ctx: &ExchangeCtx,
        request: Option<&RequestInfo>,
        msg: &serde_json::Value,
        plan: &RestorePlan,
    ) -> Result<()> {
        self.inner.check_restore(ctx, request, msg, plan)
    }
    fn restored(&self, ctx: &ExchangeCtx, placeholders: usize) {
        self.metrics.add_restored(placeholders as u64);
        self.inner.restored(ctx, placeholders)
    }
    fn rejected(&self, ctx: &ExchangeCtx, error: &Error) {
        self.inner.rejected(ctx, error)
    }
    fn tokenized(
        &self,
        ctx: &ExchangeCtx,
        answers: Option<&RequestInfo>,
        report: &TokenizeReport,
    ) -> Result<()> {
        self.inner.tokenized(ctx, answers, report)?;
        let minted = report.placeholders.iter().filter(|t| t.minted).count();
        self.metrics.add_minted(minted as u64);
        Ok(())
    }
    fn withheld(&self, ctx: &ExchangeCtx, error: &Error) {
        self.inner.withheld(ctx, error)
    }
}

/// What the stack is made of, besides the config: the detector and the hooks (flow policy and
/// audit). Defaults: the built-in detector, no hooks.
#[derive(Clone)]
pub struct StackParts {
    /// The detector.
    pub detector: Arc<Detector>,
    /// Policy and audit hooks.
    pub hooks: Arc<dyn Hooks>,
    /// The vault; `None`: built from `config.vault`.
    pub vault: Option<Arc<dyn Vault>>,
}

impl Default for StackParts {
    fn default() -> Self {
        StackParts {
            detector: Arc::new(Detector::builtin()),
            hooks: Arc::new(NoHooks),
            vault: None,
        }
    }
}

impl std::fmt::Debug for StackParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackParts")
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

/// The vault `config.vault` describes.
pub fn vault_for(config: &Config) -> Result<Arc<dyn Vault>> {
    match &config.vault.backend {
        VaultBackend::Memory => Ok(Arc::new(
            MemoryVault::builder()
                .idle_ttl(config.vault.idle_ttl)
                .max_entries_per_scope(config.vault.max_entries_per_scope)
                .build(),
        )),
        VaultBackend::Redis { .. } => Err(Error::config(vec![
            "vault.backend = \"redis\" is not available in this build; use \"memory\"".into(),
        ])),
    }
}

/// The stack builder for `config`: wraps each server's upstream in its [`PiiLayer`].
pub fn build(
    config: &Config,
    metrics: Arc<Metrics>,
    parts: StackParts,
) -> Result<impl Fn(&str, Upstream) -> ServerService> {
    let vault = match parts.vault {
        Some(v) => v,
        None => vault_for(config)?,
    };
    let hooks: Arc<dyn Hooks> = Arc::new(MetricsHooks {
        inner: parts.hooks,
        metrics,
    });
    let core = PiiCore::new(Rewriter::new(parts.detector, vault)).with_hooks(hooks);
    let mut clients = Clients::new();
    for c in &config.clients {
        clients = clients.with_client(&c.name, &hex::encode(c.token_sha256), Some(c.servers.clone()))?;
    }
    let scope = config.scope.clone();
    let limits = config.limits.clone();
    Ok(move |server: &str, up: Upstream| -> ServerService {
        let mut layer = PiiLayer::with_core(core.clone(), server)
            .clients(clients.clone())
            .require_scope_header(scope.required)
            .max_request_body(limits.max_body_bytes)
            .max_sse_event(limits.max_sse_event_bytes);
        if let Some(h) = &scope.header {
            layer = layer.scope_header(h.clone());
        }
        let svc =
            ServiceExt::<http::Request<Body>>::map_err(layer.layer(up), |never: Infallible| -> BoxError {
                match never {}
            });
        BoxCloneSyncService::new(svc)
    })
}

impl Front {
    /// The front for `config` with its full stack (built-in detector, no policy hooks).
    pub fn from_config(config: &Config) -> Result<Front> {
        Front::from_config_with(config, StackParts::default())
    }

    /// The front for `config` with the given detector, hooks and vault.
    pub fn from_config_with(config: &Config, parts: StackParts) -> Result<Front> {
        let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
        let metrics = Arc::new(Metrics::new(&names));
        let stack = build(config, metrics.clone(), parts)?;
        Ok(Front::new(config, metrics, stack))
    }
}
