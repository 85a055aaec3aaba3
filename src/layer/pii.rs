//! [`PiiLayer`]: the whole stack in one `.layer(...)`.
//!
//! `PiiLayer` = [`ScopeLayer`] (client and scope) → [`TraceLayer`] (one span and one log line
//! per exchange) → [`RewriteLayer`] (restore toward the server, tokenize toward the model).
//!
//! ```
//! use mcp_pii_gateway::layer::{body::Body, PiiLayer};
//! use tower::ServiceBuilder;
//! let svc = ServiceBuilder::new()
//!     .layer(PiiLayer::new("crm").scope_header(http::HeaderName::from_static("x-agent-run")))
//!     .service_fn(|req: http::Request<Body>| async move {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
//!     });
//! # let _ = svc;
//! ```

use std::sync::Arc;

use http::HeaderName;
use tower_layer::Layer;

use super::rewrite::{Rewrite, RewriteLayer};
use super::scope::{Clients, Scope, ScopeLayer};
use super::trace::{Trace, TraceLayer};
use crate::detect::Detector;
use crate::exchange::{Hooks, PiiCore};
use crate::rewrite::Rewriter;
use crate::vault::Vault;

/// Scope, trace and rewrite for one upstream server, composed.
#[derive(Debug, Clone)]
pub struct PiiLayer {
    scope: ScopeLayer,
    trace: TraceLayer,
    rewrite: RewriteLayer,
    server: Arc<str>,
}

impl PiiLayer {
    /// For the server named `server`: the built-in detector, a fresh in-memory vault, no
    /// hooks, no clients (everyone is `anonymous`), no scope header, the default size limits.
    pub fn new(server: &str) -> PiiLayer {
        PiiLayer::with_core(PiiCore::builtin(), server)
    }
    /// For the server named `server`, with `core` (share one core, and so one vault, between
    /// the layers of several servers).
    pub fn with_core(core: PiiCore, server: &str) -> PiiLayer {
        PiiLayer {
            scope: ScopeLayer::new().server(server),
            trace: TraceLayer::new(server),
            rewrite: RewriteLayer::new(core, server),
            server: Arc::from(server),
        }
    }
    fn map_core(mut self, f: impl FnOnce(PiiCore) -> PiiCore) -> Self {
        let old = &self.rewrite;
        let core = f(old.core().clone());
        let mut fresh = RewriteLayer::new(core, &self.server);
        // Keep the limits already set.
        fresh = fresh.copy_limits_from(old);
        self.rewrite = fresh;
        self
    }
    /// The vault. Default: a fresh [`MemoryVault`](crate::vault::MemoryVault).
    pub fn vault(self, vault: Arc<dyn Vault>) -> Self {
        self.map_core(|c| {
            let hooks = c.hooks().clone();
            PiiCore::new(Rewriter::new(c.rewriter().detector().clone(), vault)).with_hooks(hooks)
        })
    }
    /// The detector. Default: [`Detector::builtin`].
    pub fn detector(self, detector: Arc<Detector>) -> Self {
        self.map_core(|c| {
            let hooks = c.hooks().clone();
            PiiCore::new(Rewriter::new(detector, c.rewriter().vault().clone())).with_hooks(hooks)
        })
    }
    /// Policy and audit hooks. Default: none.
    pub fn hooks(self, hooks: Arc<dyn Hooks>) -> Self {
        self.map_core(|c| c.with_hooks(hooks))
    }
    /// The clients table (bearer tokens). Default: empty, every caller is `anonymous`.
    pub fn clients(mut self, clients: Clients) -> Self {
        self.scope = self.scope.clients(clients);
        self
    }
    /// The scope header (e.g. `x-agent-run`). Default: none (session id, else default scope).
    pub fn scope_header(mut self, name: HeaderName) -> Self {
        self.scope = self.scope.header(name);
        self
    }
    /// Caps the distinct scope-header keys each client holds (429 past it); share one
    /// limiter between the layers of every server. Default: no cap.
    pub fn scope_limit(mut self, limiter: Arc<super::scope::ScopeLimiter>) -> Self {
        self.scope = self.scope.limit(limiter);
        self
    }
    /// Rejects requests without the scope header (400). Default: `false`.
    pub fn require_scope_header(mut self, required: bool) -> Self {
        self.scope = self.scope.required(required);
        self
    }
    /// Largest request body, in bytes (413 beyond). Default: 4 MiB.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.rewrite = self.rewrite.max_request_body(bytes);
        self
    }
    /// Largest buffered response body from the server, in bytes. Default: 16 MiB.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.rewrite = self.rewrite.max_response_body(bytes);
        self
    }
    /// Largest SSE event from the server, in bytes. Default: 4 MiB.
    pub fn max_sse_event(mut self, bytes: usize) -> Self {
        self.rewrite = self.rewrite.max_sse_event(bytes);
        self
    }
    /// The core (rewriter and hooks).
    pub fn core(&self) -> &PiiCore {
        self.rewrite.core()
    }
}

impl<S> Layer<S> for PiiLayer {
    type Service = Scope<Trace<Rewrite<S>>>;
    fn layer(&self, inner: S) -> Self::Service {
        self.scope.layer(self.trace.layer(self.rewrite.layer(inner)))
    }
}
