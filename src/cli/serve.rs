//! `mcp-pii-gateway serve`, `stdio`, `demo` and the hidden `demo-upstream`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::log::{BatchedLog, FlushGuard};
use anyhow::Context as _;
use mcp_pii_gateway::config::{Config, VaultBackend};
use mcp_pii_gateway::jsonrpc;
use mcp_pii_gateway::proxy::client::McpHttpClient;
use mcp_pii_gateway::proxy::stack::Gateway;
use mcp_pii_gateway::proxy::{stdio_front, tls};
use serde_json::{json, Value};

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "gateway.toml")]
    pub config: PathBuf,
    /// The async runtime: `multi-thread`, one runtime whose worker threads share every
    /// connection; or `per-core`, one single-threaded runtime per CPU, each accepting on its own
    /// listening socket (SO_REUSEPORT, Unix; Linux spreads new connections over them), so that a
    /// connection and its upstream connections stay on one thread. `per-core` refuses
    /// `[vault] backend = "redis"`, which needs the multi-thread runtime.
    #[arg(long, value_enum, default_value_t = RuntimeKind::MultiThread, env = "MCP_PII_RUNTIME")]
    pub runtime: RuntimeKind,
}

/// The async runtime of `serve` (see [`ServeArgs::runtime`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// One multi-thread runtime.
    MultiThread,
    /// One current-thread runtime per CPU, each with its own SO_REUSEPORT listener.
    PerCore,
}

/// Arguments of `stdio`.
#[derive(clap::Args, Debug)]
pub struct StdioArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "gateway.toml")]
    pub config: PathBuf,
    /// The upstream server to relay to.
    #[arg(long)]
    pub server: String,
}

/// Arguments of `demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Keep serving after the walkthrough (Ctrl-C to stop).
    #[arg(long)]
    pub serve: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

/// Logs go to stderr (stdout may be the MCP channel), batched off the request path (see
/// [`super::log`]). Keep the guard until the end: dropping it writes what is pending.
fn init_tracing(default: &str) -> FlushGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = BatchedLog::stderr().unwrap_or_else(|e| {
        eprintln!("{e}; writing each log line at once");
        BatchedLog::to(Box::new(std::io::stderr()), std::time::Duration::ZERO)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colored(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .try_init();
    guard
}

/// Colors (ANSI escapes) only on a terminal, and not when `NO_COLOR` is set to anything
/// (no-color.org): a file, a pipe to a supervisor or journald gets plain text.
fn colored(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{}: {e}", path.display());
        ExitCode::from(2)
    })
}

/// The gateway for `config`: the front with the flow policy and the audit log in its stack.
/// Says at start which policy is in force and where the audit log goes (or that there is none).
fn gateway(config: &Config) -> anyhow::Result<Gateway> {
    let p = &config.policy;
    tracing::info!(
        policy = %&p.hash()[..12],
        flows = p.flows().len(),
        "flow policy: {} ({}, {})",
        config.policy_source,
        p.cross_server().rule_id(),
        p.untracked_pii().rule_id()
    );
    match &config.audit {
        Some(a) => tracing::info!(
            key_id = %a.fingerprinter.key_id(),
            "audit log: {} (fsync = {:?})",
            a.path.display(),
            a.config.fsync
        ),
        None => {
            tracing::info!("no audit log: [audit] is not configured (decisions are enforced, not recorded)")
        }
    }
    Gateway::from_config(config).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Syncs the audit log after the front stopped; a failure is reported, not hidden.
fn flush(gw: &Gateway) -> anyhow::Result<()> {
    gw.flush()
        .map_err(|e| anyhow::anyhow!("cannot sync the audit log at shutdown: {e}"))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives right after start-up (say, once
/// "listening" is logged) still shuts down gracefully instead of killing the process. Call it
/// inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    let log = init_tracing("info");
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.runtime == RuntimeKind::PerCore {
        if matches!(config.vault.backend, VaultBackend::Redis(_)) {
            drop(log);
            eprintln!(
                "error: --runtime per-core cannot serve [vault] backend = \"redis\": the Redis vault \
                 needs the multi-thread runtime (--runtime multi-thread, the default)"
            );
            return ExitCode::from(2);
        }
        let result = run_per_core(&config, &log);
        drop(log);
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let addr = listener.local_addr()?;
            let scheme = if config.tls.is_some() { "https" } else { "http" };
            for s in &config.servers {
                tracing::info!(server = %s.name, "serving {scheme}://{addr}/servers/{}/mcp", s.name);
            }
            let gw = gateway(&config)?;
            let upkeep = gw.spawn_maintenance();
            // Compile the lazily built detection patterns off the request path, so the first
            // tool results after start are not slowed by it.
            let detector = config.detector.clone();
            tokio::task::spawn_blocking(move || detector.warm_up());
            let stop = shutdown_signal();
            tracing::info!("listening on {scheme}://{addr} (metrics at /metrics, health at /healthz)");
            // Whoever waits for that line gets it before the first request.
            log.flush();
            let tls = config.tls.as_ref().map(|t| tls::acceptor(t.config.clone()));
            // On a worker thread, not this one: the loop spawns each connection's task, and
            // a task spawned from outside the runtime's workers costs a cross-thread wake-up.
            let served = tokio::spawn(gw.front().clone().serve_tls(listener, tls, stop))
                .await
                .context("the accept loop panicked")?;
            upkeep.abort();
            flush(&gw)?;
            served?;
            Ok(())
        })
    });
    // Log lines before the outcome.
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A listening socket bound with SO_REUSEPORT, so that one socket per runtime can share `addr`.
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    sock.set_reuseport(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// `serve --runtime per-core`: one current-thread runtime per CPU, each accepting on its own
/// SO_REUSEPORT socket. This thread's runtime also handles the signals, the maintenance tasks
/// and the session sweep; on a signal every runtime finishes its connections, then the
/// upstreams are stopped once.
fn run_per_core(config: &Config, log: &FlushGuard) -> anyhow::Result<()> {
    if !cfg!(all(unix, not(any(target_os = "solaris", target_os = "illumos")))) {
        anyhow::bail!("--runtime per-core needs SO_REUSEPORT, which this system lacks");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = current_thread_runtime().context("cannot start the async runtime")?;
    rt.block_on(async {
        let first = reuseport_listener(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = first.local_addr()?;
        // The same address, port included when `listen` asked for any free one.
        let mut others = Vec::with_capacity(cores - 1);
        for _ in 1..cores {
            let l = reuseport_listener(addr)
                .with_context(|| format!("cannot listen on {addr} again (SO_REUSEPORT)"))?;
            others.push(l.into_std()?);
        }
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        for s in &config.servers {
            tracing::info!(server = %s.name, "serving {scheme}://{addr}/servers/{}/mcp", s.name);
        }
        let gw = gateway(config)?;
        let upkeep = gw.spawn_maintenance();
        let detector = config.detector.clone();
        tokio::task::spawn_blocking(move || detector.warm_up());
        let tls = config.tls.as_ref().map(|t| tls::acceptor(t.config.clone()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, listener) in others.into_iter().enumerate() {
            let front = gw.front().clone();
            let tls = tls.clone();
            let mut stop = stop_rx.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("mcp-pii-core-{}", i + 1))
                .spawn(move || {
                    let served = current_thread_runtime().and_then(|rt| {
                        rt.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(listener)?;
                            let stop = async move {
                                let _ = stop.wait_for(|s| *s).await;
                            };
                            front.serve_shard(listener, tls, stop, false).await
                        })
                    });
                    let _ = done.send(served);
                })
                .context("cannot start a runtime thread")?;
        }
        drop(done_tx);
        let signal = shutdown_signal();
        tracing::info!(
            runtimes = cores,
            "listening on {scheme}://{addr} (metrics at /metrics, health at /healthz)"
        );
        log.flush();
        let stop = async move {
            signal.await;
            let _ = stop_tx.send(true);
        };
        let mut served = gw.front().clone().serve_shard(first, tls, stop, true).await;
        while let Some(r) = done_rx.recv().await {
            served = served.and(r);
        }
        gw.front().shutdown_upstreams().await;
        tracing::info!("stopped");
        upkeep.abort();
        flush(&gw)?;
        served?;
        Ok(())
    })
}

/// Runs `stdio`.
pub fn run_stdio(args: StdioArgs) -> ExitCode {
    let log = init_tracing("warn");
    let mut config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The stdio client is local (it spawned us): no bearer token; its scope owner is `anonymous`.
    config.clients.clear();
    // Nor a scope header: its one stdio session is its scope. (`scope.required` would reject
    // every message, as no header can come over stdio.)
    config.scope.required = false;
    if config.server(&args.server).is_none() {
        let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "no server named {:?} in {} (have: {})",
            args.server,
            args.config.display(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let gw = gateway(&config)?;
            let upkeep = gw.spawn_maintenance();
            let svc = gw.front().service(&args.server).context("server vanished")?;
            let max_line = config.limits.max_body_bytes;
            let relayed = tokio::select! {
                r = stdio_front::run_limited(svc, "stdio", max_line, tokio::io::stdin(), tokio::io::stdout()) => r,
                _ = shutdown_signal() => Ok(()),
            };
            gw.front().shutdown_upstreams().await;
            upkeep.abort();
            flush(&gw)?;
            relayed?;
            Ok::<_, anyhow::Error>(())
        })
    });
    // Log lines before the outcome.
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `demo`.
pub fn run_demo(args: DemoArgs) -> ExitCode {
    let log = init_tracing("warn");
    let result = runtime().and_then(|rt| rt.block_on(demo(args)));
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tool_text(answer: &Value) -> String {
    if let Some(e) = answer.get("error") {
        return format!("error: {}", e["message"].as_str().unwrap_or("?"));
    }
    answer
        .pointer("/result/content")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|c| c["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let outbox = |name: &str| tmp.join(format!("mcp-pii-gateway-demo-{pid}-{name}.jsonl"));
    let (mail_box, paste_box) = (outbox("mail"), outbox("paste"));
    for b in [&mail_box, &paste_box] {
        let _ = std::fs::remove_file(b);
    }
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let server = |name: &str, outbox: Option<&std::path::Path>| {
        let env = outbox
            .map(|o| {
                format!(
                    "env = {{ MCP_PII_DEMO_OUTBOX = {} }}\n",
                    q(&o.display().to_string().replace('$', "$$"))
                )
            })
            .unwrap_or_default();
        format!(
            "[[servers]]\nname = {}\ncommand = {}\nargs = [\"demo-upstream\"]\n{env}",
            q(name),
            q(&exe.display().to_string())
        )
    };
    let toml = format!(
        "listen = {listen}\n[vault]\nbackend = \"memory\"\nidle_ttl = \"1h\"\n{crm}{mail}{paste}\
         [policy]\ncross_server = \"deny\"\n[[policy.flows]]\nid = \"crm-to-mail\"\nfrom = \"crm\"\n\
         to = \"mail/send_email\"\nkinds = [\"EMAIL\", \"PHONE\"]\n",
        listen = q(&args.listen),
        crm = server("crm", None),
        mail = server("mail", Some(&mail_box)),
        paste = server("paste", Some(&paste_box)),
    );
    let config = Config::from_toml_str(&toml, |_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let gw = gateway(&config)?;
    let front = gw.front().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(front.serve(listener, async {
        let _ = stop_rx.await;
    }));

    println!(
        "mcp-pii-gateway demo: gateway at {url}, in front of three bundled stdio MCP servers\n\
         (crm, mail, paste); the policy's flow crm-to-mail lets CRM emails and phones reach mail only\n"
    );
    let mut c = McpHttpClient::new(&url)?;
    c.initialize().await?;
    let call = json!({"name": "crm__lookup_customer", "arguments": {"id": 42}});
    println!("client  -> tools/call {call}");
    let a = c.request("tools/call", call).await?;
    println!("client  <- {}\n", tool_text(&a.response));

    let field = |name: &str, default: &str| {
        a.response
            .pointer(&format!("/result/structuredContent/{name}"))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let (email, phone) = (field("email", "[EMAIL_1]"), field("phone", "[PHONE_1]"));
    let call = json!({"name": "mail__send_email", "arguments": {"to": email, "subject": "Your order",
        "body": format!("We will call you at {phone} tomorrow.")}});
    println!("client  -> tools/call {call}");
    let sent = c.request("tools/call", call).await?;
    for l in std::fs::read_to_string(&mail_box).unwrap_or_default().lines() {
        println!("mail    got {l}");
    }
    println!("client  <- {}\n", tool_text(&sent.response));

    let call = json!({"name": "paste__send_email", "arguments": {"to": email}});
    println!("client  -> tools/call {call}");
    let refused = c.request("tools/call", call).await?;
    let pasted = std::fs::read_to_string(&paste_box).unwrap_or_default();
    println!(
        "paste   got {}",
        if pasted.is_empty() {
            "nothing"
        } else {
            pasted.trim_end()
        }
    );
    println!("client  <- {}", tool_text(&refused.response));
    let _ = c.close().await;
    for b in [&mail_box, &paste_box] {
        let _ = std::fs::remove_file(b);
    }

    if args.serve {
        println!("\nserving at {url} (Ctrl-C to stop)");
        shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    server.await.context("gateway task failed")??;
    Ok(())
}

/// Runs the hidden `demo-upstream`: a tiny stdio MCP server (plain serde_json) with
/// `lookup_customer` (a generated record with an email and a phone) and `send_email` (appends
/// what it received to `$MCP_PII_DEMO_OUTBOX`, so the demo can show it).
pub fn run_demo_upstream() -> ExitCode {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id").cloned() else {
            continue;
        }; // notifications
        if msg.get("method").is_none() {
            continue; // a response to us: we never ask
        }
        let reply = match demo_handle(&msg) {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => jsonrpc::error_response(id, jsonrpc::error_object(code, &message)),
        };
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Generated, fictional people: example.com addresses and 555-01xx numbers.
const PEOPLE: [(&str, &str); 4] = [
    ("Ana", "Lima"),
    ("Kenji", "Sato"),
    ("Maria", "Garcia"),
    ("Tom", "Becker"),
];

fn demo_handle(msg: &Value) -> Result<Value, (i64, String)> {
    let params = &msg["params"];
    match msg["method"].as_str().unwrap_or("") {
        "initialize" => {
            let asked = params["protocolVersion"].as_str().unwrap_or("2025-11-25");
            let known = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
            let v = if known.contains(&asked) {
                asked
            } else {
                "2025-11-25"
            };
            Ok(json!({"protocolVersion": v, "capabilities": {"tools": {}},
                "serverInfo": {"name": "demo-upstream", "version": env!("CARGO_PKG_VERSION")}}))
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": [
            {"name": "lookup_customer", "description": "Look up a customer record by id",
             "inputSchema": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
            {"name": "send_email", "description": "Send an email",
             "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"},
                 "body": {"type": "string"}}, "required": ["to"]}}
        ]})),
        "tools/call" => {
            let args = &params["arguments"];
            match params["name"].as_str().unwrap_or("") {
                "lookup_customer" => {
                    let id = args["id"].as_u64().unwrap_or(1);
                    let (first, last) = PEOPLE[(id as usize) % PEOPLE.len()];
                    let email = format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase());
                    let phone = format!("+1 202-555-01{:02}", id % 100);
                    Ok(json!({
                        "content": [{"type": "text", "text": format!("Customer {id}: {first} {last}, email {email}, phone {phone}")}],
                        "structuredContent": {"id": id, "name": format!("{first} {last}"), "email": email, "phone": phone}
                    }))
                }
                "send_email" => {
                    let to = args["to"].as_str().unwrap_or("");
                    if let Ok(path) = std::env::var("MCP_PII_DEMO_OUTBOX") {
                        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                            let _ = writeln!(f, "{args}");
                        }
                    }
                    Ok(json!({"content": [{"type": "text", "text": format!("Queued an email to {to}")}]}))
                }
                other => Err((jsonrpc::INVALID_PARAMS, format!("unknown tool {other}"))),
            }
        }
        other => Err((jsonrpc::METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::colored;
    use std::ffi::OsStr;

    #[test]
    fn colors_only_on_a_terminal_without_no_color() {
        assert!(colored(true, None));
        assert!(colored(true, Some(OsStr::new(""))));
        assert!(!colored(true, Some(OsStr::new("1"))));
        assert!(!colored(false, None));
        assert!(!colored(false, Some(OsStr::new(""))));
    }
}
