//! Prometheus metrics in text exposition format, hand-rolled: a few atomic counters and one
//! latency histogram per server.
//!
//! ```
//! use mcp_pii_gateway::proxy::metrics::{Metrics, Outcome};
//! use std::time::Duration;
//! let m = Metrics::new(&["crm"]);
//! m.request("crm", Outcome::Ok);
//! m.upstream_latency("crm", Duration::from_micros(700));
//! m.add_minted(2);
//! let text = m.render();
//! assert!(text.contains("mcp_gateway_requests_total{server=\"crm\",outcome=\"ok\"} 1"));
//! assert!(text.contains("mcp_gateway_upstream_latency_seconds_bucket{server=\"crm\",le=\"0.001\"} 1"));
//! assert!(text.contains("mcp_gateway_placeholders_minted_total 2"));
//! ```

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How a request ended, by HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 1xx–3xx.
    Ok,
    /// 4xx: the client's request was refused.
    ClientError,
    /// 502/503/504: the upstream failed.
    UpstreamError,
    /// Other 5xx: the gateway failed.
    GatewayError,
    /// Refused by the flow policy (a JSON-RPC error; nothing forwarded).
    PolicyDenied,
    /// Refused for an unknown placeholder (a JSON-RPC error; nothing forwarded).
    UnknownPlaceholder,
    /// Refused for another reason by the PII layer (a JSON-RPC error; nothing forwarded).
    Rejected,
    /// The server's answer was withheld and replaced by errors.
    Withheld,
}

impl Outcome {
    const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::UpstreamError,
        Outcome::GatewayError,
        Outcome::PolicyDenied,
        Outcome::UnknownPlaceholder,
        Outcome::Rejected,
        Outcome::Withheld,
    ];
    /// The outcome of a response: what the PII layer says it refused, else its status.
    pub fn of_response<B>(res: &http::Response<B>) -> Outcome {
        use crate::layer::rewrite::Refused;
        match res.extensions().get::<Refused>() {
            Some(Refused::PolicyDenied) => Outcome::PolicyDenied,
            Some(Refused::UnknownPlaceholder) => Outcome::UnknownPlaceholder,
            Some(Refused::Rejected) => Outcome::Rejected,
            Some(Refused::Withheld) => Outcome::Withheld,
            None => Outcome::of(res.status()),
        }
    }
    /// The outcome of an HTTP status.
    pub fn of(status: http::StatusCode) -> Outcome {
        match status.as_u16() {
            0..=399 => Outcome::Ok,
            400..=499 => Outcome::ClientError,
            502..=504 => Outcome::UpstreamError,
            _ => Outcome::GatewayError,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::GatewayError => "gateway_error",
            Outcome::PolicyDenied => "policy_denied",
            Outcome::UnknownPlaceholder => "unknown_placeholder",
            Outcome::Rejected => "rejected",
            Outcome::Withheld => "withheld",
        }
    }
}

const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

struct Server {
    name: String,
    requests: [AtomicU64; 8],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The gateway's metrics.
pub struct Metrics {
    servers: Vec<Server>,
    minted: AtomicU64,
    restored: AtomicU64,
    rejected: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for these server names.
    pub fn new(servers: &[&str]) -> Metrics {
        Metrics {
            servers: servers
                .iter()
                .map(|n| Server {
                    name: n.to_string(),
                    requests: Default::default(),
                    buckets: Default::default(),
                    count: AtomicU64::new(0),
                    sum_micros: AtomicU64::new(0),
                })
                .collect(),
            minted: AtomicU64::new(0),
            restored: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }
    fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }
    /// Counts one request to `server` that ended with `outcome`.
    pub fn request(&self, server: &str, outcome: Outcome) {
        if let Some(s) = self.server(server) {
            let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
            s.requests[i].fetch_add(1, Relaxed);
        }
    }
    /// Records the time `server` took to answer (response head).
    pub fn upstream_latency(&self, server: &str, d: Duration) {
        if let Some(s) = self.server(server) {
            let secs = d.as_secs_f64();
            for (b, le) in s.buckets.iter().zip(BUCKETS) {
                if secs <= le {
                    b.fetch_add(1, Relaxed);
                }
            }
            s.count.fetch_add(1, Relaxed);
            s.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
        }
    }
    /// Adds `n` newly minted placeholders.
    pub fn add_minted(&self, n: u64) {
        self.minted.fetch_add(n, Relaxed);
    }
    /// Adds `n` restored placeholders.
    pub fn add_restored(&self, n: u64) {
        self.restored.fetch_add(n, Relaxed);
    }
    /// Counts a request refused at the front (Host, Origin, auth, size, routing).
    pub fn add_rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = self.render_into(&mut o);
        o
    }
    fn render_into(&self, o: &mut String) -> std::fmt::Result {
        writeln!(
            o,
            "# HELP mcp_gateway_placeholders_minted_total Placeholders newly issued."
        )?;
        writeln!(o, "# TYPE mcp_gateway_placeholders_minted_total counter")?;
        writeln!(
            o,
            "mcp_gateway_placeholders_minted_total {}",
            self.minted.load(Relaxed)
        )?;
        writeln!(
            o,
            "# HELP mcp_gateway_placeholders_restored_total Placeholders restored to values."
        )?;
        writeln!(o, "# TYPE mcp_gateway_placeholders_restored_total counter")?;
        writeln!(
            o,
            "mcp_gateway_placeholders_restored_total {}",
            self.restored.load(Relaxed)
        )?;
        writeln!(
            o,
            "# HELP mcp_gateway_front_rejected_total Requests refused before routing."
        )?;
        writeln!(o, "# TYPE mcp_gateway_front_rejected_total counter")?;
        writeln!(
            o,
            "mcp_gateway_front_rejected_total {}",
            self.rejected.load(Relaxed)
        )?;
        writeln!(
            o,
            "# HELP mcp_gateway_requests_total Requests by server and outcome."
        )?;
        writeln!(o, "# TYPE mcp_gateway_requests_total counter")?;
        for s in &self.servers {
            for (i, out) in Outcome::ALL.iter().enumerate() {
                writeln!(
                    o,
                    "mcp_gateway_requests_total{{server=\"{}\",outcome=\"{}\"}} {}",
                    s.name,
                    out.label(),
                    s.requests[i].load(Relaxed)
                )?;
            }
        }
        writeln!(
            o,
            "# HELP mcp_gateway_upstream_latency_seconds Time to the upstream's response head."
        )?;
        writeln!(o, "# TYPE mcp_gateway_upstream_latency_seconds histogram")?;
        for s in &self.servers {
            for (b, le) in s.buckets.iter().zip(BUCKETS) {
                writeln!(
                    o,
                    "mcp_gateway_upstream_latency_seconds_bucket{{server=\"{}\",le=\"{le}\"}} {}",
                    s.name,
                    b.load(Relaxed)
                )?;
            }
            let count = s.count.load(Relaxed);
            writeln!(
                o,
                "mcp_gateway_upstream_latency_seconds_bucket{{server=\"{}\",le=\"+Inf\"}} {count}",
                s.name
            )?;
            writeln!(
                o,
                "mcp_gateway_upstream_latency_seconds_sum{{server=\"{}\"}} {}",
                s.name,
                s.sum_micros.load(Relaxed) as f64 / 1e6
            )?;
            writeln!(
                o,
                "mcp_gateway_upstream_latency_seconds_count{{server=\"{}\"}} {count}",
                s.name
            )?;
        }
        Ok(())
    }
}
