//! The per-server service stack: what sits between the front and each upstream.
//!
//! TEMPORARY: the identity stack until the PII layers are merged; then the tokenize/restore
//! layers go here, configured from the same [`Config`].

use std::sync::Arc;

use super::front::{identity, Front, ServerService};
use super::metrics::Metrics;
use super::upstream::Upstream;
use crate::config::Config;
use crate::error::Result;

/// The stack builder for `config`: wraps each server's upstream.
pub fn build(config: &Config, metrics: Arc<Metrics>) -> Result<impl Fn(&str, Upstream) -> ServerService> {
    let _ = (config, metrics);
    Ok(identity)
}

impl Front {
    /// The front for `config` with its full stack (layers, metrics).
    pub fn from_config(config: &Config) -> Result<Front> {
        let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
        let metrics = Arc::new(Metrics::new(&names));
        let stack = build(config, metrics.clone())?;
        Ok(Front::new(config, metrics, stack))
    }
}
