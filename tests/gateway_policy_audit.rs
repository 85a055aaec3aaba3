//! Flow policy and audit in the deployed gateway: the real `serve` binary in front of two stdio upstreams
//! (the bundled `demo-upstream`, as `crm` and `mail`), with a flow policy allowing crm→mail for
//! EMAIL only and an audit log in a temp dir. Then the compliance commands on that log:
//! verify, replay (own and stricter policy), search, a detector sweep, and tampering.
//!
//! The people are the demo upstream's generated, fictional records (example.com addresses,
//! 555-01xx numbers): customer 42 is `maria.garcia@example.com`, `+1 202-555-0142`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use mcp_pii_gateway::audit::{Fingerprinter, Record, RecordType, Verdict};
use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::proxy::client::McpHttpClient;
use serde_json::{json, Value};

/// A generated key for this test only (hex of "mcp-pii-gateway e2e test ey!!!!!").
const KEY: &str = "6d63702d7069692d676174657761792065326520746573742065792121212121";
const EMAIL: &str = "maria.garcia@example.com";
const PHONE: &str = "+1 202-555-0142";

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_mcp-pii-gateway")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gw-policy-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A running `serve`: its address and everything it logged.
struct Gateway {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    fn start(config: &Path, key: Option<&str>) -> Gateway {
        let mut cmd = Command::new(exe());
        cmd.args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("MCP_PII_AUDIT_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(k) = key {
            cmd.env("MCP_PII_AUDIT_KEY", k);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(i) = line.find("listening on http://") {
                        let rest = &line[i + "listening on http://".len()..];
                        let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                        let _ = tx.send(addr);
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Gateway { child, addr, log }
    }

    fn url(&self, server: &str) -> String {
        format!("http://{}/servers/{server}/mcp", self.addr)
    }

    /// SIGTERM, then waits: a graceful stop exits 0.
    fn stop(mut self) -> String {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = self.child.wait().unwrap();
        // Let the reader thread drain the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().unwrap().clone();
        assert!(status.success(), "serve exited with {status}:\n{log}");
        log
    }
}

/// A plain HTTP/1.1 GET to the gateway at `addr` (host:port); the response's body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn cli(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(exe());
    cmd.args(args).env_remove("MCP_PII_AUDIT_KEY");
    if let Some(k) = key {
        cmd.env("MCP_PII_AUDIT_KEY", k);
    }
    cmd.output().unwrap()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn outbox_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_config(dir: &Path) -> PathBuf {
    let mut servers = String::new();
    for name in ["crm", "mail"] {
        let outbox = dir.join(format!("{name}-outbox.jsonl"));
        servers.push_str(&format!(
            "[[servers]]\nname = {}\ncommand = {}\nargs = [\"demo-upstream\"]\nenv = {{ MCP_PII_DEMO_OUTBOX = {} }}\n",
            q(name),
            q(exe()),
            q(&outbox.display().to_string()),
        ));
    }
    let text = format!(
        r#"listen = "127.0.0.1:0"
[scope]
header = "x-agent-run"
required = true
{servers}
[policy]
cross_server = "deny"
untracked_pii = "audit"
[[policy.flows]]
id = "crm-to-mail"
from = "crm"
to = "mail/send_email"
kinds = ["EMAIL"]

[audit]
path = "audit/gateway.jsonl"
fsync = "always"
"#
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::write(
        dir.join("strict.toml"),
        "cross_server = \"deny\"\nuntracked_pii = \"audit\"\n",
    )
    .unwrap();
    path
}

/// What the client saw in the run.
struct Seen {
    lookup: Value,
    allowed: Value,
    denied: Value,
}

async fn drive(gw: &Gateway, mail_outbox: &Path) -> Seen {
    let mut crm = McpHttpClient::new(&gw.url("crm"))
        .unwrap()
        .with_header("x-agent-run", "run-1");
    let mut mail = McpHttpClient::new(&gw.url("mail"))
        .unwrap()
        .with_header("x-agent-run", "run-1");
    crm.initialize().await.unwrap();
    mail.initialize().await.unwrap();

    // (a) crm's tool result reaches the client tokenized.
    let lookup = crm
        .request(
            "tools/call",
            json!({"name": "lookup_customer", "arguments": {"id": 42}}),
        )
        .await
        .unwrap()
        .response;

    // (b) its [EMAIL_1] may go to mail/send_email (flow crm-to-mail): mail gets the value.
    let allowed = mail
        .request(
            "tools/call",
            json!({"name": "send_email", "arguments": {"to": "[EMAIL_1]", "subject": "Your order"}}),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(outbox_lines(mail_outbox).len(), 1, "mail got the allowed email");

    // (c) its [PHONE_1] may not: a JSON-RPC error, and mail receives nothing.
    let denied = mail
        .request(
            "tools/call",
            json!({"name": "send_email", "arguments": {"to": "ops", "body": "call [PHONE_1]"}}),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(
        outbox_lines(mail_outbox).len(),
        1,
        "mail received the denied request"
    );
    let _ = crm.close().await;
    let _ = mail.close().await;
    Seen {
        lookup,
        allowed,
        denied,
    }
}

#[test]
fn policy_and_audit_end_to_end_through_serve() {
    let dir = tmp("e2e");
    let config = write_config(&dir);
    let audit = dir.join("audit/gateway.jsonl");
    let mail_outbox = dir.join("mail-outbox.jsonl");

    let gw = Gateway::start(&config, Some(KEY));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = rt.block_on(drive(&gw, &mail_outbox));
    // The denial is its own outcome in the metrics, not an "ok" (its HTTP status is 200).
    let metrics = http_get(&gw.addr, "/metrics");
    assert!(
        metrics.contains(r#"mcp_gateway_requests_total{server="mail",outcome="policy_denied"} 1"#),
        "{metrics}"
    );
    let log = gw.stop();
    assert!(log.contains("flow policy: [policy]"), "{log}");
    assert!(log.contains("audit log: "), "{log}");

    // (a)
    let text = seen.lookup.to_string();
    assert!(text.contains("[EMAIL_1]") && text.contains("[PHONE_1]"), "{text}");
    assert!(!text.contains(EMAIL) && !text.contains("555-0142"), "{text}");
    assert_eq!(seen.lookup["result"]["structuredContent"]["email"], "[EMAIL_1]");

    // (b) the upstream received the real value.
    assert!(seen.allowed.get("error").is_none(), "{}", seen.allowed);
    let got: Value = serde_json::from_str(&outbox_lines(&mail_outbox)[0]).unwrap();
    assert_eq!(got["to"], EMAIL);
    // The mail server's answer names the address: tokenized again, same placeholder.
    assert!(seen.allowed.to_string().contains("[EMAIL_1]"), "{}", seen.allowed);
    assert!(!seen.allowed.to_string().contains(EMAIL));

    // (c) the denial names placeholder, kind, origin, target and rule; never the value.
    let err = &seen.denied["error"];
    assert_eq!(err["code"], -32001, "{}", seen.denied);
    let msg = err["message"].as_str().unwrap();
    for needle in [
        "[PHONE_1]",
        "PHONE",
        "origin crm",
        "mail/send_email",
        "default:cross_server=deny",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in {msg}");
    }
    assert!(!seen.denied.to_string().contains("555-0142"), "{}", seen.denied);
    assert!(!seen.denied.to_string().contains("2025550142"), "{}", seen.denied);

    // The log: a policy record first, then exactly the two decisions, with their rules.
    let recs = records(&audit);
    assert_eq!(recs[0].record_type, RecordType::Policy);
    let decisions: Vec<&Record> = recs
        .iter()
        .filter(|r| r.record_type == RecordType::Decision)
        .collect();
    assert_eq!(decisions.len(), 2, "{recs:#?}");
    let (allow, deny) = (decisions[0], decisions[1]);
    assert_eq!(allow.decision, Some(Verdict::Allow));
    assert_eq!(allow.rule_id.as_deref(), Some("crm-to-mail"));
    assert_eq!(allow.server.as_deref(), Some("mail"));
    assert_eq!(allow.tool.as_deref(), Some("send_email"));
    assert_eq!(allow.restored[0].placeholder, "[EMAIL_1]");
    assert_eq!(allow.restored[0].origins, ["crm"]);
    assert_eq!(deny.decision, Some(Verdict::Deny));
    assert_eq!(deny.rule_id.as_deref(), Some("default:cross_server=deny"));
    assert_eq!(deny.restored[0].placeholder, "[PHONE_1]");
    assert!(recs
        .iter()
        .any(|r| r.record_type == RecordType::Exchange && r.server.as_deref() == Some("crm")));

    let audit_s = audit.to_str().unwrap();
    // (d) verify.
    let v = cli(&["audit", "verify", "--json", audit_s], None);
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    assert_eq!(stdout_json(&v)["records"], recs.len() as u64);

    // Replay under its own policy reproduces every decision.
    let r = cli(&["audit", "replay", "--json", audit_s], None);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stdout));
    let rep = stdout_json(&r);
    assert_eq!(rep["decisions"], 2);
    assert_eq!(rep["reproduced"], 2);
    // The gateway's own config file as the policy: the same.
    let r = cli(
        &[
            "audit",
            "replay",
            "--json",
            "--policy",
            config.to_str().unwrap(),
            audit_s,
        ],
        None,
    );
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stdout));

    // Under the strict policy (no flows): exactly the crm→mail decision changes.
    let strict = dir.join("strict.toml");
    let r = cli(
        &[
            "audit",
            "replay",
            "--json",
            "--policy",
            strict.to_str().unwrap(),
            audit_s,
        ],
        None,
    );
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stdout));
    let rep = stdout_json(&r);
    let diffs = rep["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{rep:#}");
    let d = &diffs[0];
    assert_eq!(d["seq"], allow.seq);
    assert_eq!(d["server"], "mail");
    assert_eq!(d["kinds"], json!(["EMAIL"]));
    assert_eq!(d["origins"], json!(["crm"]));
    assert_eq!(d["old_rule"], "crm-to-mail");
    assert_eq!(d["new_rule"], "default:cross_server=deny");
    assert_eq!(rep["reproduced"], 1);

    // Search by the email, with the key: exactly the records that involve it.
    let fp = Fingerprinter::from_key_text(KEY).unwrap();
    let email_fp = fp.fingerprint(EMAIL);
    let phone_fp = fp.fingerprint(PHONE);
    let want: Vec<u64> = recs
        .iter()
        .filter(|r| {
            r.minted
                .iter()
                .chain(&r.restored)
                .any(|p| p.fingerprint.as_deref() == Some(email_fp.as_str()))
        })
        .map(|r| r.seq)
        .collect();
    // Minted by crm's answer, restored by the allowed send: its decision and its exchange.
    assert_eq!(want.len(), 3, "{recs:#?}");
    assert!(want.contains(&allow.seq));
    let sent = recs
        .iter()
        .find(|r| r.record_type == RecordType::Exchange && r.seq > allow.seq)
        .unwrap();
    assert!(want.contains(&sent.seq));
    assert_eq!(sent.server.as_deref(), Some("mail"));
    assert_eq!(sent.tool.as_deref(), Some("send_email"));
    assert!(sent.minted.is_empty(), "{sent:#?}");
    assert_eq!(sent.restored.len(), 1, "{sent:#?}");
    assert_eq!(sent.restored[0].placeholder, "[EMAIL_1]");
    assert_eq!(sent.restored[0].kind, "EMAIL");
    assert_eq!(sent.restored[0].origins, ["crm"]);
    assert_eq!(sent.restored[0].fingerprint.as_deref(), Some(email_fp.as_str()));
    let s = cli(
        &["audit", "search", "--json", "--value", EMAIL, audit_s],
        Some(KEY),
    );
    assert_eq!(s.status.code(), Some(0), "{}", String::from_utf8_lossy(&s.stderr));
    let rep = stdout_json(&s);
    let hits: Vec<u64> = rep["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(hits, want);
    assert_eq!(rep["key_matches_log"], true);
    let out = String::from_utf8_lossy(&s.stdout);
    assert!(!out.contains("[PHONE_1]") && !out.contains(&phone_fp), "{out}");
    for r in &recs {
        if let Some(scope) = &r.scope {
            assert!(!out.contains(scope.as_str()), "a scope fingerprint was printed");
        }
    }
    // The same search without the key finds nothing it can vouch for: it refuses.
    let s = cli(&["audit", "search", "--value", EMAIL, audit_s], None);
    assert_eq!(s.status.code(), Some(2));

    // (e) No PII anywhere in the audit file (nor in the gateway's own log).
    let text = std::fs::read_to_string(&audit).unwrap();
    let detector = Detector::builtin();
    let spans = detector.find(&text);
    assert!(spans.is_empty(), "the audit file holds PII: {spans:?}");
    assert!(!text.contains(EMAIL) && !text.contains("maria") && !text.contains("555-0142"));
    assert!(!text.contains(KEY));
    let spans = detector.find(&log);
    assert!(spans.is_empty(), "the gateway log holds PII: {spans:?}\n{log}");

    // (f) Tamper: one byte of the denied decision's record → verify exits 1 naming its seq.
    let tampered = dir.join("tampered.jsonl");
    let mut bytes = std::fs::read(&audit).unwrap();
    let line_start: usize = text
        .lines()
        .take((deny.seq - 1) as usize)
        .map(|l| l.len() + 1)
        .sum();
    let line = text.lines().nth((deny.seq - 1) as usize).unwrap();
    let at = line_start + line.find("\"deny\"").unwrap() + 1;
    bytes[at] = b'D';
    std::fs::write(&tampered, &bytes).unwrap();
    let v = cli(&["audit", "verify", "--json", tampered.to_str().unwrap()], None);
    assert_eq!(v.status.code(), Some(1), "{}", String::from_utf8_lossy(&v.stdout));
    assert_eq!(stdout_json(&v)["problem"]["seq"], deny.seq);
    let v = cli(&["audit", "verify", tampered.to_str().unwrap()], None);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(&deny.seq.to_string()),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );

    let _ = std::fs::remove_dir_all(&dir);
}

/// A restart appends to the same log: the chain continues and the policy is recorded again.
#[test]
fn a_restart_continues_the_chain() {
    let dir = tmp("restart");
    let config = write_config(&dir);
    let audit = dir.join("audit/gateway.jsonl");
    for _ in 0..2 {
        Gateway::start(&config, Some(KEY)).stop();
    }
    let recs = records(&audit);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.record_type == RecordType::Policy));
    assert_eq!(recs[1].prev_hash, recs[0].hash);
    let v = cli(&["audit", "verify", audit.to_str().unwrap()], None);
    assert_eq!(v.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn audit_without_a_key_refuses_to_start() {
    let dir = tmp("nokey");
    let config = write_config(&dir);
    let out = Command::new(exe())
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("MCP_PII_AUDIT_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MCP_PII_AUDIT_KEY is not set"), "{err}");
    assert!(!dir.join("audit/gateway.jsonl").exists());
    // A short key is refused too, without echoing it.
    let out = Command::new(exe())
        .args(["serve", "--config"])
        .arg(&config)
        .env("MCP_PII_AUDIT_KEY", "hunter2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("at least 16 bytes") && !err.contains("hunter2"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --config` with the annotated example (listen port changed to a free one).
#[test]
fn the_annotated_example_serves() {
    let dir = tmp("example");
    let text = include_str!("../src/config/example.toml")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace("${CRM_TOKEN}", "example-token");
    let config = dir.join("gateway.toml");
    std::fs::write(&config, text).unwrap();
    let gw = Gateway::start(&config, Some(KEY));
    let log = gw.stop();
    assert!(log.contains("flow policy: [policy]"), "{log}");
    let recs = records(&dir.join("audit/gateway.jsonl"));
    assert_eq!(recs[0].record_type, RecordType::Policy);
    assert!(recs[0].policy.as_deref().unwrap().contains("crm-to-mail"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without `[audit]` the gateway says so at start, and writes no log.
#[test]
fn no_audit_table_means_no_audit_log() {
    let dir = tmp("noaudit");
    let config = write_config(&dir);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = &text[..text.find("[audit]").unwrap()];
    std::fs::write(&config, text).unwrap();
    let gw = Gateway::start(&config, None);
    let log = gw.stop();
    assert!(log.contains("no audit log"), "{log}");
    assert!(!dir.join("audit").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `stdio --server crm` runs the same hooks: the answer is tokenized, the exchange is audited,
/// and the log verifies and holds no PII once stdin closes.
#[test]
fn the_stdio_front_audits_too() {
    use std::io::Write;
    let dir = tmp("stdio");
    let config = write_config(&dir);
    let mut child = Command::new(exe())
        .args(["stdio", "--server", "crm", "--config"])
        .arg(&config)
        .env("MCP_PII_AUDIT_KEY", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let send = |stdin: &mut std::process::ChildStdin, v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    let mut read = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap()
    };
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
            "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    );
    let init = read();
    assert_eq!(init["id"], 1, "{init}");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "lookup_customer", "arguments": {"id": 42}}}),
    );
    let answer = read();
    assert_eq!(
        answer["result"]["structuredContent"]["email"], "[EMAIL_1]",
        "{answer}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());

    let audit = dir.join("audit/gateway.jsonl");
    let recs = records(&audit);
    assert_eq!(recs[0].record_type, RecordType::Policy);
    let minted: Vec<&str> = recs
        .iter()
        .filter(|r| r.record_type == RecordType::Exchange)
        .flat_map(|r| r.minted.iter().map(|p| p.placeholder.as_str()))
        .collect();
    assert_eq!(minted, ["[EMAIL_1]", "[PHONE_1]"]);
    let v = cli(&["audit", "verify", audit.to_str().unwrap()], None);
    assert_eq!(v.status.code(), Some(0));
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(Detector::builtin().find(&text).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second gateway process on the same audit log fails at start instead of breaking the chain.
#[cfg(unix)]
#[test]
fn one_writer_per_audit_log() {
    let dir = tmp("lock");
    let config = write_config(&dir);
    let first = Gateway::start(&config, Some(KEY));
    let out = Command::new(exe())
        .args(["serve", "--config"])
        .arg(&config)
        .env("MCP_PII_AUDIT_KEY", KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another gateway process"), "{err}");
    first.stop();
    // Released with the process: the next start works, and the chain is intact.
    Gateway::start(&config, Some(KEY)).stop();
    let audit = dir.join("audit/gateway.jsonl");
    assert_eq!(records(&audit).len(), 2);
    let v = cli(&["audit", "verify", audit.to_str().unwrap()], None);
    assert_eq!(v.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
