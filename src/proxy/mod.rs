//! The gateway's network side: the HTTP front ([`front`]), the stdio front ([`stdio_front`]) and
//! the upstream transports ([`upstream`]), all speaking Streamable HTTP at the
//! `Service<http::Request<Body>>` boundary so the tower layers sit between them unchanged.
//!
//! ```no_run
//! # async fn run() -> mcp_pii_gateway::Result<()> {
//! use mcp_pii_gateway::config::Config;
//! use mcp_pii_gateway::proxy::Front;
//! let config = Config::load("gateway.toml".as_ref())?;
//! let front = Front::from_config(&config)?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! front.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod body;
pub mod client;
pub mod front;
pub(crate) mod lines;
pub mod metrics;
pub(crate) mod own_wakes;
pub mod sse;
pub mod stack;
pub mod stdio_front;
pub mod tls;
pub mod upstream;

pub use body::Body;
pub use front::Front;
pub use upstream::{ClientName, Upstream};
