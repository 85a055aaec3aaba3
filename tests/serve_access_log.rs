//! `serve`'s access log as an operator sees it: the per-exchange line is on the binary's stderr
//! for a served call, even when the process is stopped right after the call (the batched log
//! writer must write what is pending on shutdown), and it holds no raw value.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mcp_pii_gateway::proxy::client::McpHttpClient;
use serde_json::json;

/// `line` without ANSI colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn access_line_for_a_served_call_is_on_stderr_after_sigterm() {
    served_call_then_sigterm(&[], "mt").await;
}

/// The same with one single-threaded runtime per CPU: it serves, logs and stops the same way.
#[tokio::test]
async fn per_core_runtime_serves_logs_and_stops_on_sigterm() {
    served_call_then_sigterm(&["--runtime", "per-core"], "pc").await;
}

#[test]
fn per_core_runtime_refuses_the_redis_vault() {
    let exe = env!("CARGO_BIN_EXE_mcp-pii-gateway");
    let dir = std::env::temp_dir().join(format!("mcp-pii-per-core-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[vault]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n[[servers]]\nname = \"up\"\nurl = \"http://127.0.0.1:9/mcp\"\n",
    )
    .unwrap();
    let out = Command::new(exe)
        .args(["serve", "--runtime", "per-core", "--config"])
        .arg(&config)
        .env("MCP_PII_VAULT_KEY", "11".repeat(32))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--runtime per-core") && stderr.contains("redis"),
        "{stderr}"
    );
}

async fn served_call_then_sigterm(args: &[&str], tag: &str) {
    let exe = env!("CARGO_BIN_EXE_mcp-pii-gateway");
    let dir = std::env::temp_dir().join(format!("mcp-pii-access-log-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n[vault]\nbackend = \"memory\"\nidle_ttl = \"1h\"\n[[servers]]\nname = \"demo\"\ncommand = {}\nargs = [\"demo-upstream\"]\n",
            toml::Value::String(exe.to_string())
        ),
    )
    .unwrap();
    let mut child = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MCP_PII_RUNTIME")
        // Far longer than the test: the line must come from the flush at shutdown.
        .env("MCP_PII_LOG_FLUSH_MS", "600000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(plain(&line)).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no 'listening on' line");
        let found = line
            .split("listening on http://")
            .nth(1)
            .map(|rest| rest.split_whitespace().next().unwrap().to_string());
        seen.push(line);
        if let Some(a) = found {
            break a;
        }
    };

    let mut c = McpHttpClient::new(&format!("http://{addr}/servers/demo/mcp")).unwrap();
    c.initialize().await.unwrap();
    let a = c
        .request(
            "tools/call",
            json!({"name": "lookup_customer", "arguments": {"id": 42}}),
        )
        .await
        .unwrap();
    let text = a.response.to_string();
    assert!(text.contains("[EMAIL_1]"), "{text}");
    // Stop at once: the access line may still be pending in the writer.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "serve exited with {status}: {seen:#?}");

    let calls: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("mcp_exchange") && l.contains("tools/call") && l.contains(" exchange "))
        .collect();
    assert_eq!(calls.len(), 1, "one access line for the tools/call: {seen:#?}");
    assert!(calls[0].contains("status=200"), "{}", calls[0]);
    assert!(calls[0].contains("duration_us="), "{}", calls[0]);
    let all = seen.join("\n");
    for raw in ["maria.garcia@example.com", "202-555-0142", "555-0142"] {
        assert!(!all.contains(raw), "raw value {raw:?} on stderr: {all}");
    }
}
