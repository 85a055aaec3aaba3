//! # mcp-pii-gateway
//!
//! A PII-tokenizing gateway for the Model Context Protocol. Emails and phone numbers in
//! everything that flows toward the model become stable placeholders (`[EMAIL_1]`, `[PHONE_2]`);
//! placeholders in everything that flows back out to a server become the real values again;
//! flow policies decide which servers may receive data that came from which server; and every
//! decision lands in a tamper-evident audit log.
//!
//! The main types:
//! - [`detect::Detector`] finds PII spans in text (built-in `EMAIL`, `PHONE`, custom rules).
//! - [`vault::Vault`] maps values to placeholders per scope ([`vault::MemoryVault`] in this
//!   process, [`vault::RedisVault`] shared by replicas).
//! - [`rewrite::Rewriter`] walks JSON values and JSON-RPC messages in either direction.
//! - [`policy::Policy`] decides which server may receive which placeholders (pure evaluation);
//!   [`audit`] records every decision in a hash-chained JSON Lines log and verifies, replays
//!   and searches it.
//! - [`exchange::PiiCore`] is one exchange without a transport: restore toward the server,
//!   tokenize toward the model, with [`exchange::PolicyHooks`] deciding and recording.
//! - [`layer::PiiLayer`] is the tower layer for `http` services (yours, behind one `.layer(..)`,
//!   or the gateway's upstreams), made of [`layer::ScopeLayer`], [`layer::TraceLayer`] and
//!   [`layer::RewriteLayer`], which drives a [`exchange::PiiCore`].
//! - [`jsonrpc`] names the JSON-RPC error codes the gateway answers with.
//! - [`config::Config`] is a validated `gateway.toml`; [`proxy`] is the reverse proxy built from
//!   it (HTTP front, Streamable HTTP and stdio upstreams).
//! - [`codegen`] writes the gateway's `/mcp` catalog as a typed `servers/` code API (TypeScript
//!   or Python) for agents that call tools from code.
//!
//! Arrows point inward: `detect`, `rewrite`, `policy`, `audit` and `exchange` know nothing of
//! HTTP, sockets or tower; `vault` knows Redis (the shared backend) and nothing above it; `layer`
//! and `proxy` use tower; `proxy` and the `serve` command own the sockets.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_pii_gateway::{detect::Detector, rewrite::Rewriter, vault::{MemoryVault, ScopeId}};
//! let rw = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(MemoryVault::builder().build()));
//! let scope = ScopeId::new("anonymous", "run-1");
//! let mut v = serde_json::json!({"text": "mail ana.lima@example.org"});
//! rw.tokenize_value(&mut v, &scope, "crm").unwrap();
//! assert_eq!(v["text"], "mail [EMAIL_1]");
//! let plan = rw.plan_restore_value(&v, &scope).unwrap();
//! rw.apply_restore(&mut v, &plan);
//! assert_eq!(v["text"], "mail ana.lima@example.org");
//! ```

pub mod audit;
pub mod codegen;
pub mod config;
pub mod detect;
pub mod error;
pub mod exchange;
pub mod json;
pub mod jsonrpc;
pub mod layer;
pub mod policy;
pub mod proxy;
pub mod rewrite;
pub mod vault;

pub use error::{Error, Result};
