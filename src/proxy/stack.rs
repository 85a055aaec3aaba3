//! The per-server service stack: what sits between the front and each upstream.
//!
//! Named steps, outermost first (see `crate::layer`): the front's own checks (route, Host,
//! Origin, method, body size) → [`PiiLayer`] (scope and auth → trace → restore toward the server
//! and tokenize toward the model, with the flow-policy and audit hooks) → the [`Upstream`].
//! One [`PiiCore`] (one detector, one vault) is shared by every server, so one scope gets the
//! same placeholders from every server.
//!
//! [`Gateway::from_config`] is what `serve` and `stdio` run: the stack with the configured flow
//! policy and audit log as its hooks ([`PolicyHooks`]), plus the upkeep beside it (vault sweep,
//! periodic audit fsync) and the flush at shutdown. [`Front::from_config`] applies the flow
//! policy but runs no upkeep and refuses a configuration with `[audit]`; [`StackParts`] with
//! [`Front::from_config_with`] builds any other combination.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

use super::aggregate::{Aggregate, AggregateParts, PolicySource};
use super::front::{Front, ServerService};
use super::metrics::Metrics;
use super::upstream::Upstream;
use crate::audit::{AuditSink, Auditor, FileSink, FsyncPolicy, Record};
use crate::config::{Config, VaultBackend};
use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::exchange::{ExchangeCtx, Hooks, NoHooks, PiiCore, PolicyHooks, RequestInfo};
use crate::layer::body::{Body, BoxError};
use crate::layer::scope::{ScopeLayer, ScopeLimiter};
use crate::layer::{Clients, PiiLayer};
use crate::rewrite::{RestorePlan, Rewriter, TokenizeReport};
use crate::vault::{MemoryVault, RedisVault, Vault};

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
    /// The flow policy in force, as `/mcp`'s `check_flow` and tool annotations read it, and
    /// the audit log its `describe_placeholders` answers go to. Default: `config.policy`, no
    /// audit (the front builders that take [`PolicyHooks`] set both from them).
    pub policy: Option<PolicyView>,
}

/// How `/mcp` reads the policy in force and reaches the audit log.
#[derive(Clone)]
pub struct PolicyView {
    /// The policy in force now.
    pub policy: PolicySource,
    /// The audit log.
    pub auditor: Option<Arc<Auditor>>,
}

impl PolicyView {
    /// The view of `hooks`: their current policy, their auditor.
    pub fn of(hooks: &Arc<PolicyHooks>) -> PolicyView {
        let h = hooks.clone();
        PolicyView {
            policy: Arc::new(move || h.policy()),
            auditor: hooks.auditor().cloned(),
        }
    }
}

impl Default for StackParts {
    fn default() -> Self {
        StackParts {
            detector: Arc::new(Detector::builtin()),
            hooks: Arc::new(NoHooks),
            vault: None,
            policy: None,
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
        VaultBackend::Redis(r) => Ok(Arc::new(
            RedisVault::builder(&r.url, r.key.clone())
                .prefix(&r.prefix)
                .idle_ttl(config.vault.idle_ttl)
                .max_entries_per_scope(config.vault.max_entries_per_scope)
                .connect_timeout(r.connect_timeout)
                .command_timeout(r.command_timeout)
                .cluster(r.cluster)
                .build()?,
        )),
    }
}

/// The limiter of `limits.max_scopes_per_client`, keys forgotten after `vault.idle_ttl` (as
/// their vault scopes are).
pub fn scope_limiter_for(config: &Config) -> Arc<ScopeLimiter> {
    Arc::new(ScopeLimiter::new(
        config.limits.max_scopes_per_client,
        config.vault.idle_ttl,
    ))
}

/// The stack builder for `config`: wraps each server's upstream in its [`PiiLayer`], with a
/// scope cap of its own ([`scope_limiter_for`]); see [`build_with`] to share one.
pub fn build(
    config: &Config,
    metrics: Arc<Metrics>,
    parts: StackParts,
) -> Result<impl Fn(&str, Upstream) -> ServerService> {
    build_with(config, metrics, parts, scope_limiter_for(config))
}

/// [`build`] with the given scope cap, shared by every server's stack (a scope spans servers).
pub fn build_with(
    config: &Config,
    metrics: Arc<Metrics>,
    parts: StackParts,
    scope_limiter: Arc<ScopeLimiter>,
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
            .max_response_body(limits.max_response_bytes)
            .max_sse_event(limits.max_sse_event_bytes)
            .scope_limit(scope_limiter.clone());
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

/// `/mcp`'s stack: the scope layer (clients, scope header and its cap, as every server's
/// stack has) over the [`Aggregate`].
fn aggregate_service(
    config: &Config,
    aggregate: Aggregate,
    limiter: Arc<ScopeLimiter>,
) -> Result<ServerService> {
    let mut clients = Clients::new();
    for c in &config.clients {
        clients = clients.with_client(&c.name, &hex::encode(c.token_sha256), Some(c.servers.clone()))?;
    }
    let mut scope = ScopeLayer::new()
        .clients(clients)
        .required(config.scope.required)
        .limit(limiter);
    if let Some(h) = &config.scope.header {
        scope = scope.header(h.clone());
    }
    Ok(BoxCloneSyncService::new(scope.layer(aggregate)))
}

impl Front {
    /// The front for `config` with its full stack: built-in detector and the configured flow
    /// policy (the default policy without `[policy]`). No upkeep runs beside it; for the
    /// deployed gateway use [`Gateway::from_config`]. With `[audit]` configured this refuses
    /// (a configuration error) rather than run unaudited: the audit log needs the [`Gateway`].
    pub fn from_config(config: &Config) -> Result<Front> {
        if config.audit.is_some() {
            return Err(Error::config(vec![
                "[audit] is configured: build the gateway with proxy::stack::Gateway::from_config, which opens and maintains the audit log".into(),
            ]));
        }
        let detector = config.detector.clone();
        let hooks = Arc::new(PolicyHooks::new(config.policy.clone(), detector.clone()));
        Front::from_config_with(
            config,
            StackParts {
                detector,
                policy: Some(PolicyView::of(&hooks)),
                hooks,
                vault: None,
            },
        )
    }

    /// The front for `config` with the given detector, hooks and vault.
    pub fn from_config_with(config: &Config, mut parts: StackParts) -> Result<Front> {
        let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
        let metrics = Arc::new(Metrics::new(&names));
        let limiter = scope_limiter_for(config);
        let vault = match parts.vault.take() {
            Some(v) => v,
            None => vault_for(config)?,
        };
        parts.vault = Some(vault.clone());
        let rewriter = Rewriter::new(parts.detector.clone(), vault.clone());
        let view = parts.policy.clone().unwrap_or_else(|| {
            let p = Arc::new(config.policy.clone());
            PolicyView {
                policy: Arc::new(move || p.clone()),
                auditor: None,
            }
        });
        let stack = build_with(config, metrics.clone(), parts, limiter.clone())?;
        let mut front = Front::new(config, metrics, stack)
            .with_scope_limiter(limiter.clone())
            .with_vault(vault.clone());
        if config.aggregate.enabled {
            let members = config
                .servers
                .iter()
                .filter_map(|s| Some((s.name.clone(), front.service(&s.name)?)))
                .collect();
            let aggregate = Aggregate::new(AggregateParts {
                members,
                expose: config.aggregate.expose,
                unprefixed: config.aggregate.unprefixed.clone(),
                rewriter,
                policy: view.policy,
                auditor: view.auditor,
                limits: config.limits.clone(),
            });
            let service = aggregate_service(config, aggregate.clone(), limiter)?;
            front = front.with_aggregate(aggregate, service);
        }
        if let Some(store) = vault.sessions() {
            front = front.share_sessions(store, config.replica_id.as_deref().unwrap_or("gateway"));
        }
        Ok(front)
    }
}

/// The audit file sink as the hooks see it. With `fsync = "always"` every append waits for the
/// disk; on a multi-threaded runtime that wait runs under `block_in_place`, so the worker's
/// other tasks move to another thread instead of stalling behind the fsync. (`interval` and
/// `never` appends are one buffered `write` each, plus at most one fsync per interval on the
/// write path, which is left inline: cheaper than a thread hand-off per record.)
struct BlockingAware {
    sink: Arc<FileSink>,
    fsync_always: bool,
}

impl AuditSink for BlockingAware {
    fn append(&self, record: Record) -> Result<Record> {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if self.fsync_always && multi_thread {
            tokio::task::block_in_place(|| self.sink.append(record))
        } else {
            self.sink.append(record)
        }
    }
    fn generation(&self) -> u64 {
        self.sink.generation()
    }
}

/// Takes an exclusive, non-blocking lock on `<audit path>.lock` (created beside the log), so
/// that a second gateway process configured with the same log (two `stdio` processes sharing
/// one configuration, say) fails at start instead of interleaving records and breaking the
/// chain. The lock goes with the process (no stale lock after a crash). Unix only; elsewhere
/// one writer per log is the operator's duty.
fn lock_audit_log(path: &std::path::Path) -> Result<std::fs::File> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::audit(format!("{} does not name a file", path.display())))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::audit(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    let lock_path = path.with_file_name(format!("{}.lock", name.to_string_lossy()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::audit(format!("cannot open {}: {e}", lock_path.display())))?;
    #[cfg(unix)]
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            return Err(Error::audit(format!(
                "the audit log {} is in use by another gateway process (lock {}); give each process \
                 its own [audit] path",
                path.display(),
                lock_path.display()
            )))
        }
        Err(e) => return Err(Error::audit(format!("cannot lock {}: {e}", lock_path.display()))),
    }
    Ok(file)
}

/// A gateway assembled from a [`Config`]: the [`Front`] with the flow policy and (with
/// `[audit]`) the audit log in its stack, plus what must run beside it: the vault sweep and the
/// periodic audit fsync ([`spawn_maintenance`](Self::spawn_maintenance)), and the final flush
/// ([`flush`](Self::flush)).
///
/// Building it opens the audit log (recovering its chain) and writes the policy record, so a
/// broken log or an unwritable directory fails at start, before any request.
pub struct Gateway {
    front: Front,
    /// The exclusive lock on the audit log, held while the gateway lives.
    _audit_lock: Option<std::fs::File>,
    vault: Arc<dyn Vault>,
    hooks: Arc<PolicyHooks>,
    audit: Option<Arc<FileSink>>,
    sweep_every: Duration,
    sync_every: Option<Duration>,
    fsync_never: bool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("front", &self.front)
            .field("hooks", &self.hooks)
            .field("audit", &self.audit.as_ref().map(|s| s.path().to_path_buf()))
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the gateway `config` describes (built-in rules plus the configured `rules` files).
    pub fn from_config(config: &Config) -> Result<Gateway> {
        let detector = config.detector.clone();
        let vault = vault_for(config)?;
        let mut hooks = PolicyHooks::new(config.policy.clone(), detector.clone());
        let mut audit = None;
        let mut sync_every = None;
        let mut fsync_never = false;
        let mut audit_lock = None;
        if let Some(a) = &config.audit {
            audit_lock = Some(lock_audit_log(&a.path)?);
            let sink = Arc::new(a.open_sink()?);
            let auditor = Arc::new(Auditor::new(
                Arc::new(BlockingAware {
                    sink: sink.clone(),
                    fsync_always: a.config.fsync == FsyncPolicy::Always,
                }),
                a.fingerprinter.clone(),
            ));
            // The policy in force goes first, so every decision after it can be replayed.
            auditor.policy(&config.policy)?;
            hooks = hooks.with_auditor(auditor, vault.clone());
            if a.config.fsync == FsyncPolicy::Interval {
                sync_every = Some(Duration::from_millis(a.config.fsync_interval_ms.max(1)));
            }
            fsync_never = a.config.fsync == FsyncPolicy::Never;
            audit = Some(sink);
        }
        let hooks = Arc::new(hooks);
        let front = Front::from_config_with(
            config,
            StackParts {
                detector,
                policy: Some(PolicyView::of(&hooks)),
                hooks: hooks.clone(),
                vault: Some(vault.clone()),
            },
        )?;
        Ok(Gateway {
            front,
            _audit_lock: audit_lock,
            vault,
            hooks,
            audit,
            sweep_every: (config.vault.idle_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)),
            sync_every,
            fsync_never,
        })
    }

    /// The front (clone it to serve).
    pub fn front(&self) -> &Front {
        &self.front
    }

    /// The vault shared by every server.
    pub fn vault(&self) -> &Arc<dyn Vault> {
        &self.vault
    }

    /// The flow policy and audit hooks (e.g. to [`set_policy`](PolicyHooks::set_policy)).
    pub fn policy_hooks(&self) -> &Arc<PolicyHooks> {
        &self.hooks
    }

    /// The audit log's sink, when `[audit]` is configured.
    pub fn audit_sink(&self) -> Option<&Arc<FileSink>> {
        self.audit.as_ref()
    }

    /// Spawns the background upkeep on the current runtime: drops idle vault scopes every
    /// `vault.idle_ttl / 4` (clamped to 1 s..60 s; the in-memory vault frees them only when
    /// swept) and, with `fsync = "interval"`, syncs the audit log once records are older than
    /// the interval (so a quiet log does not keep unsynced records). Abort the handle to stop.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let vault = self.vault.clone();
        let sink = self.audit.clone().filter(|_| self.sync_every.is_some());
        let sweep_every = self.sweep_every;
        let sync_every = self.sync_every.unwrap_or(Duration::from_secs(3600));
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(sweep_every);
            let mut sync = tokio::time::interval(sync_every);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = sweep.tick() => {
                        let vault = vault.clone();
                        match tokio::task::spawn_blocking(move || vault.sweep()).await {
                            Ok(n) if n > 0 => tracing::debug!(scopes = n, "dropped idle vault scopes"),
                            _ => {}
                        }
                    }
                    _ = sync.tick(), if sink.is_some() => {
                        let Some(sink) = sink.clone() else { continue };
                        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || sink.sync_if_due()).await {
                            tracing::error!(error = %e, "cannot sync the audit log");
                        }
                    }
                }
            }
        })
    }

    /// Syncs the audit log to disk (call after the front has stopped). No-op without `[audit]`
    /// or with `fsync = "never"`.
    pub fn flush(&self) -> Result<()> {
        match &self.audit {
            Some(sink) if !self.fsync_never => sink.sync(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::detect::Kind;
    use crate::vault::ScopeId;

    fn config(extra: &str) -> Config {
        let text =
            format!("[vault]\nidle_ttl = \"1s\"\n[[servers]]\nname = \"crm\"\ncommand = \"true\"\n{extra}");
        Config::from_toml_str(&text, |_| None).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn maintenance_sweeps_idle_vault_scopes() {
        let scope = ScopeId::new("anonymous", "run-1");
        let swept = Gateway::from_config(&config("")).unwrap();
        let unswept = Gateway::from_config(&config("")).unwrap();
        for gw in [&swept, &unswept] {
            gw.vault()
                .tokenize(&scope, &Kind::email(), "ana.lima@example.org", "crm")
                .unwrap();
        }
        let upkeep = swept.spawn_maintenance();
        tokio::time::sleep(Duration::from_millis(2600)).await;
        upkeep.abort();
        // The maintained vault already dropped the idle scope; the other one still holds it.
        assert_eq!(swept.vault().sweep(), 0);
        assert_eq!(unswept.vault().sweep(), 1);
    }

    #[test]
    fn front_from_config_enforces_the_policy_and_refuses_to_run_unaudited() {
        let mut c = config("");
        assert!(Front::from_config(&c).is_ok());
        c.audit = Some(crate::config::AuditSettings {
            path: std::env::temp_dir().join("never-opened.jsonl"),
            config: toml::from_str("path = \"never-opened.jsonl\"").unwrap(),
            fingerprinter: crate::audit::Fingerprinter::new(b"0123456789abcdef").unwrap(),
        });
        let e = Front::from_config(&c).unwrap_err();
        assert!(
            e.is_config() && e.to_string().contains("Gateway::from_config"),
            "{e}"
        );
    }

    #[test]
    fn no_audit_table_no_sink() {
        let gw = Gateway::from_config(&config("")).unwrap();
        assert!(gw.audit_sink().is_none());
        gw.flush().unwrap();
        assert_eq!(*gw.policy_hooks().policy(), crate::policy::Policy::default());
    }
}
