//! Added latency of the gateway: N sequential `tools/call` returning 4 KB results with a few
//! emails and phone numbers, straight to an rmcp Streamable HTTP server and through the
//! gateway, interleaved in one run (same upstream, same client, same connections).
//!
//! `cargo bench --bench latency -- [N] [--json] [--relay-only] [--gateway-runtime=current|multi]
//! [--vault=redis://127.0.0.1:6379] [--first-sight]`
//! (default N = 2000; by default the upstream runs rmcp's session mode and answers each call
//! as an SSE stream (a priming event, then the response); `--json` makes it a stateless server
//! answering `application/json`; `--relay-only` runs the gateway without its PII layers, to
//! split the cost; `--gateway-runtime` runs the gateway on its own runtime and thread(s), as a
//! separate `serve` process would, instead of on the bench's: `current` = one current-thread
//! runtime, `multi` = a 2-worker multi-thread one like `serve`'s). Prints p50/p99 of each path
//! and of the added latency (gateway minus direct, at the same percentile). `--vault=URL` runs
//! the gateway on the Redis vault at URL (a throwaway key; it writes keys under `mcp-pii-bench`);
//! `--first-sight` gives every call values the vault has not seen (the default repeats 16
//! results, as an agent re-reading records does).
//!
//! Everything (client, gateway, upstream) runs in this one process, so the figures depend on
//! how the OS spreads its threads: on a small VM a wake-up across vCPUs costs tens of
//! microseconds. `taskset -c 0 cargo bench --bench latency -- 3000` keeps it on one CPU and
//! measures the gateway's own work (its CPU and its extra loopback hop) without that. The last
//! line printed is the floor under any proxy's added latency on the machine: one plain
//! loopback round trip between two threads (a proxy adds a hop each way).
//!
//! The result text is generated: filler words plus fictional example.com addresses and
//! 555-01xx numbers.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mcp_pii_gateway::config::Config;
use mcp_pii_gateway::proxy::client::McpHttpClient;
use mcp_pii_gateway::proxy::Front;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use serde_json::json;

#[path = "support/report.rs"]
mod report;
use report::report_text as result_text;

#[derive(Clone)]
struct Bench {
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Seed {
    seed: u64,
}

#[tool_router]
impl Bench {
    #[tool(description = "A 4 KB report")]
    async fn report(&self, Parameters(a): Parameters<Seed>) -> String {
        let mut text = result_text(a.seed);
        if a.seed >= 1000 {
            // `--first-sight`: one address no earlier result held.
            text.push_str(&format!(" new contact first{}@example.com", a.seed));
        }
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bench {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(rmcp::model::ServerCapabilities::builder().enable_tools().build())
    }
}

async fn upstream(json: bool) -> String {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!json)
        .with_json_response(json)
        .with_sse_keep_alive(None);
    let service: StreamableHttpService<Bench, LocalSessionManager> = StreamableHttpService::new(
        || {
            Ok(Bench {
                tool_router: Bench::tool_router(),
            })
        },
        Default::default(),
        config,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let mut service = service.clone();
                    async move { tower_service::Service::call(&mut service, req).await }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

/// The floor under any proxy's added latency here: one loopback round trip between two threads
/// (a 64-byte request, a 4 KB answer, blocking sockets, no HTTP), as a proxy adds one hop each
/// way. Returns the sorted round-trip times.
fn loopback_round_trips(n: usize) -> Vec<Duration> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 4096];
        while s.read_exact(&mut buf[..64]).is_ok() {
            if s.write_all(&buf).is_err() {
                return;
            }
        }
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&buf[..64]).unwrap();
        c.read_exact(&mut buf).unwrap();
        times.push(t.elapsed());
    }
    drop(c);
    echo.join().unwrap();
    times.sort();
    times
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The gateway under test: the full stack, or (`relay_only`) the plain relay.
fn front(config: &Config, relay_only: bool) -> Front {
    if relay_only {
        let m = std::sync::Arc::new(mcp_pii_gateway::proxy::metrics::Metrics::new(&["bench"]));
        Front::new(config, m, mcp_pii_gateway::proxy::front::identity)
    } else {
        Front::from_config(config).unwrap()
    }
}

/// Serves the gateway on a runtime of its own (`current` or `multi`) on its own thread;
/// returns its URL.
fn gateway_on_own_runtime(kind: &str, config: Config, relay_only: bool) -> String {
    let rt = match kind {
        "current" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        other => panic!("--gateway-runtime={other}: expected current or multi"),
    }
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let front = front(&config, relay_only);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let gw = format!("http://{}/servers/bench/mcp", listener.local_addr().unwrap());
            tx.send(gw).unwrap();
            front.serve(listener, std::future::pending()).await.unwrap();
        })
    });
    rx.recv().unwrap()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let relay_only = std::env::args().any(|a| a == "--relay-only");
    let json = std::env::args().any(|a| a == "--json");
    let own_runtime = std::env::args().find_map(|a| a.strip_prefix("--gateway-runtime=").map(str::to_string));
    let vault = std::env::args().find_map(|a| a.strip_prefix("--vault=").map(str::to_string));
    let first_sight = std::env::args().any(|a| a == "--first-sight");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let up = upstream(json).await;
        let mut toml = format!(
            "[[servers]]\nname = \"bench\"\nurl = {}\n",
            toml::Value::String(up.clone())
        );
        if let Some(url) = &vault {
            toml.push_str(&format!(
                "[vault]\nbackend = \"redis\"\nurl = {}\nprefix = \"mcp-pii-bench\"\nkey_env = \"BENCH_VAULT_KEY\"\nmax_entries_per_scope = 10000000\n",
                toml::Value::String(url.clone())
            ));
        }
        let key = "5a".repeat(32);
        let config = Config::from_toml_str(&toml, |v| (v == "BENCH_VAULT_KEY").then(|| key.clone())).unwrap();
        let gw = match &own_runtime {
            Some(kind) => gateway_on_own_runtime(kind, config, relay_only),
            None => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let gw = format!("http://{}/servers/bench/mcp", listener.local_addr().unwrap());
                tokio::spawn(front(&config, relay_only).serve(listener, std::future::pending()));
                gw
            }
        };

        let mut direct = McpHttpClient::new(&up).unwrap();
        let mut via = McpHttpClient::new(&gw).unwrap();
        direct.initialize().await.unwrap();
        via.initialize().await.unwrap();
        let call = |seed: u64| json!({"name": "report", "arguments": {"seed": seed}});
        // Warm up connections, allocators and the vault.
        for i in 0..200 {
            direct.request("tools/call", call(i)).await.unwrap();
            via.request("tools/call", call(i)).await.unwrap();
        }
        let sample = via.request("tools/call", call(0)).await.unwrap().response;
        let text = sample
            .pointer("/result/content/0/text")
            .and_then(|t| t.as_str())
            .unwrap_or("");
        let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n as u64 {
            // Alternate which path goes first so neither always gets the warmer cache.
            let order = [i % 2 == 0, i % 2 != 0];
            for via_first in order {
                let (client, out) = if via_first {
                    (&mut via, &mut g)
                } else {
                    (&mut direct, &mut d)
                };
                let t = Instant::now();
                // First sight: seeds past the warm-up's, never repeated (both paths get the
                // same result; only the gateway's vault sees it first).
                let seed = if first_sight { 1000 + i } else { i % 16 };
                let a = client.request("tools/call", call(seed)).await.unwrap();
                out.push(t.elapsed());
                assert!(a.response.get("result").is_some(), "{}", a.response);
            }
        }
        d.sort();
        g.sort();
        let mut mode = if relay_only { "relay only" } else { "full stack" }.to_string();
        mode += if json {
            ", JSON responses"
        } else {
            ", SSE responses"
        };
        if let Some(k) = &own_runtime {
            mode += &format!(", gateway on its own {k} runtime");
        }
        if vault.is_some() {
            mode += ", Redis vault";
        }
        if first_sight {
            mode += ", values seen first";
        }
        println!(
            "latency ({mode}): {n} sequential tools/call, {} byte results, interleaved",
            text.len()
        );
        println!("  result as the client sees it starts: {:.80}", text);
        for (name, v) in [("direct ", &d), ("gateway", &g)] {
            println!(
                "  {name}  p50 {:8.1} us   p99 {:8.1} us",
                us(pct(v, 0.5)),
                us(pct(v, 0.99))
            );
        }
        println!(
            "  added    p50 {:8.1} us   p99 {:8.1} us",
            us(pct(&g, 0.5)) - us(pct(&d, 0.5)),
            us(pct(&g, 0.99)) - us(pct(&d, 0.99))
        );
        let rt = loopback_round_trips(n);
        println!(
            "  floor: one loopback round trip between two threads (no HTTP)   p50 {:8.1} us   p99 {:8.1} us",
            us(pct(&rt, 0.5)),
            us(pct(&rt, 0.99))
        );
    });
}
