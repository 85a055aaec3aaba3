//! Two `serve` replicas on one real Redis, driven by the official MCP Python SDK client
//! (`scripts/interop/replicas.py`): one session alternating between replicas, an outage and
//! its recovery, a replica restart. Needs `scripts/install-test-deps.sh` (redis-server and the
//! Python SDK in `.ci/venv`); skipped locally without them, a failure under `CI=true`.
#![allow(clippy::unwrap_used)]

mod redis_support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn two_replicas_share_one_session_and_the_vault() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the Python SDK is not installed: run scripts/install-test-deps.sh"
        );
        eprintln!("skipping: .ci/venv missing (scripts/install-test-deps.sh)");
        return;
    }
    if !redis_support::available() {
        return;
    }
    let mut redis = redis_support::RedisServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/interop/replicas.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--gateway-bin", env!("CARGO_BIN_EXE_mcp-pii-gateway")])
        .args(["--redis-url", &redis.url()])
        .args(["--redis-port", &redis.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run replicas.py");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut transcript = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        eprintln!("{line}");
        if line == "WAIT redis-restart" {
            redis.restart();
            writeln!(stdin, "go").unwrap();
        }
        transcript.push_str(&line);
        transcript.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "replicas.py failed:\n{transcript}");
    assert!(
        transcript.contains("PASS a placeholder is restored by either replica"),
        "{transcript}"
    );
    assert!(!transcript.contains("FAIL"), "{transcript}");
}
