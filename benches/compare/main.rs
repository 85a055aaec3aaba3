//! The client of `scripts/bench-compare.sh`: one rmcp Streamable HTTP client measuring several
//! MCP endpoints that front the same upstream, interleaved in one run.
//!
//! ```text
//! cargo bench --bench compare -- --target direct=http://127.0.0.1:3003/mcp \
//!     --target mcp-proxy=http://127.0.0.1:3004/#up/echo \
//!     --target gateway=http://127.0.0.1:3005/servers/up/mcp \
//!     [--calls 2000] [--rounds 5] [--bytes 120] [--sessions 16,64] [--secs 10]
//! ```
//!
//! Each target is `NAME=URL[#TOOL]` (the tool defaults to `echo`); the first is the baseline the
//! ratios are taken against. Latency: one session per target, `--rounds` rounds of `--calls`
//! sequential `tools/call`, the targets taking turns within each round (and the order rotating
//! between rounds). Throughput: for each count in `--sessions`, that many sessions per target,
//! each calling in a closed loop; `--secs` per target, split into two turns so the targets
//! alternate. Prints one table. The tool is an echo whose result is `--bytes` long.
//!
//! `compare forward LISTEN UPSTREAM` runs a TCP forwarder instead: the floor any proxy is
//! measured against (`bench-compare.sh --floor`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};

struct Target {
    name: String,
    url: String,
    tool: String,
}

struct Args {
    targets: Vec<Target>,
    calls: usize,
    rounds: usize,
    bytes: usize,
    sessions: Vec<usize>,
    secs: f64,
}

fn args() -> Args {
    let mut a = Args {
        targets: Vec::new(),
        calls: 2000,
        rounds: 5,
        bytes: 120,
        sessions: vec![16, 64],
        secs: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--target" => {
                let v = v();
                let (name, rest) = v.split_once('=').expect("--target NAME=URL[#TOOL]");
                let (url, tool) = rest.split_once('#').unwrap_or((rest, "echo"));
                a.targets.push(Target {
                    name: name.into(),
                    url: url.into(),
                    tool: tool.into(),
                });
            }
            "--calls" => a.calls = v().parse().unwrap(),
            "--rounds" => a.rounds = v().parse().unwrap(),
            "--bytes" => a.bytes = v().parse().unwrap(),
            "--sessions" => {
                a.sessions = v()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect()
            }
            "--secs" => a.secs = v().parse().unwrap(),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.targets.is_empty(), "no --target");
    a
}

type Client = RunningService<RoleClient, ()>;

async fn connect(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    ().serve(transport)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

fn params(tool: &str, message: &str) -> CallToolRequestParams {
    let mut args = serde_json::Map::new();
    args.insert("message".into(), message.into());
    CallToolRequestParams::new(tool.to_owned()).with_arguments(args)
}

async fn call(c: &Client, p: &CallToolRequestParams) {
    let r = c.call_tool(p.clone()).await.unwrap();
    assert_ne!(r.is_error, Some(true), "tool error: {r:?}");
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Calls per second of `n` sessions calling `tool` in a closed loop for `secs`.
async fn throughput(url: &str, tool: &str, message: &str, n: usize, secs: f64) -> f64 {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(connect(url).await);
    }
    let p = params(tool, message);
    for c in &clients {
        call(c, &p).await;
    }
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let (done, stop, p) = (done.clone(), stop.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call(&c, &p).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = c.cancel().await;
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / elapsed
}

fn main() {
    let mut argv = std::env::args().skip(1).filter(|a| a != "--bench");
    if argv.next().as_deref() == Some("forward") {
        let listen = argv.next().expect("forward LISTEN UPSTREAM");
        let upstream = argv.next().expect("forward LISTEN UPSTREAM");
        // One thread: in these runs it added 35-45 µs less than tokio's multi-thread runtime.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        return rt.block_on(forward(listen, upstream));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(args()));
}

/// A TCP forwarder: every connection to `listen` is copied both ways to a new connection to
/// `upstream`, bytes untouched. The floor of any proxy: what one more process on the path
/// costs on this machine, with nothing parsed.
async fn forward(listen: String, upstream: String) {
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    eprintln!("forwarding {listen} to {upstream}");
    loop {
        let (mut client, _) = listener.accept().await.unwrap();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

async fn run(a: Args) {
    // "Echo: " + message = `bytes`.
    let message: String = "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(a.bytes.saturating_sub(6))
        .collect();
    let n = a.targets.len();

    // Latency: one session each, taking turns.
    let mut clients = Vec::new();
    for t in &a.targets {
        clients.push(connect(&t.url).await);
    }
    let ps: Vec<_> = a.targets.iter().map(|t| params(&t.tool, &message)).collect();
    for (c, p) in clients.iter().zip(&ps) {
        for _ in 0..200 {
            call(c, p).await;
        }
    }
    let mut lat: Vec<Vec<Duration>> = vec![Vec::with_capacity(a.calls * a.rounds); n];
    for round in 0..a.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            for _ in 0..a.calls {
                let t = Instant::now();
                call(&clients[i], &ps[i]).await;
                lat[i].push(t.elapsed());
            }
        }
    }
    for c in clients {
        let _ = c.cancel().await;
    }
    for l in &mut lat {
        l.sort();
    }

    // Throughput: closed loop, two turns per target.
    let mut tput = vec![vec![0.0f64; a.sessions.len()]; n];
    for (j, &s) in a.sessions.iter().enumerate() {
        for turn in 0..2 {
            for k in 0..n {
                let i = (k + turn) % n;
                let t = &a.targets[i];
                tput[i][j] += throughput(&t.url, &t.tool, &message, s, a.secs / 2.0).await / 2.0;
            }
        }
    }

    println!(
        "{} rounds x {} sequential tools/call per target (one session each), {}-byte results; then closed loop, {} s per target",
        a.rounds, a.calls, a.bytes, a.secs
    );
    let mut head = "| target | p50 µs | p99 µs | added p50 | added p99 |".to_string();
    let mut rule = "|---|---:|---:|---:|---:|".to_string();
    for s in &a.sessions {
        head += &format!(" calls/s, {s} sessions | vs {} |", a.targets[0].name);
        rule += "---:|---:|";
    }
    println!("{head}\n{rule}");
    let (b50, b99) = (pct(&lat[0], 0.5), pct(&lat[0], 0.99));
    for (i, t) in a.targets.iter().enumerate() {
        let (p50, p99) = (pct(&lat[i], 0.5), pct(&lat[i], 0.99));
        let mut row = if i == 0 {
            format!("| {} | {p50:.0} | {p99:.0} | – | – |", t.name)
        } else {
            format!(
                "| {} | {p50:.0} | {p99:.0} | {:+.0} µs | {:+.0} µs |",
                t.name,
                p50 - b50,
                p99 - b99
            )
        };
        for (v, base) in tput[i].iter().zip(&tput[0]) {
            row += &format!(" {v:.0} | {:.2}x |", v / base);
        }
        println!("{row}");
    }
}
