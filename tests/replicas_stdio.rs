//! A stdio upstream's children run on the replica that started them: with a Redis vault, a
//! request for such a session that reaches another replica gets 421 and an error naming the
//! replica, and the session goes on where it runs.
#![allow(clippy::unwrap_used)]

mod redis_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mcp_pii_gateway::proxy::client::McpHttpClient;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-pii-gateway");

struct Serve(Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(redis_url: &str, replica: &str, dir: &std::path::Path) -> Serve {
    let cfg = dir.join(format!("{replica}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\nreplica_id = \"{replica}\"\n[vault]\nbackend = \"redis\"\nurl = \"{redis_url}\"\n\
             [[servers]]\nname = \"demo\"\ncommand = {}\nargs = [\"demo-upstream\"]\n",
            toml::Value::String(BIN.into())
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("MCP_PII_VAULT_KEY", "cd".repeat(32))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on http://".len()..];
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("serve started");
    Serve(child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_session_on_another_replica_is_misdirected_with_a_clear_error() {
    if !redis_support::available() {
        return;
    }
    let redis = redis_support::RedisServer::start();
    let dir = std::env::temp_dir().join(format!("replicas-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = serve(&redis.url(), "gw-a", &dir);
    let b = serve(&redis.url(), "gw-b", &dir);
    let url = |s: &Serve| format!("http://{}/servers/demo/mcp", s.1);
    let mut on_a = McpHttpClient::new(&url(&a)).unwrap();
    on_a.initialize().await.unwrap();
    let sid = on_a.session_id().expect("a session").to_owned();
    let mut on_b = McpHttpClient::new(&url(&b))
        .unwrap()
        .with_header("mcp-session-id", &sid);
    let answer = on_b.request("tools/list", json!({})).await.unwrap();
    assert_eq!(answer.status.as_u16(), 421, "{}", answer.response);
    let msg = answer.response["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("\"gw-a\"") && msg.contains("sticky"), "{msg}");
    // Where it runs, it goes on; an unknown session is still plain "not found" on B.
    let listed = on_a.request("tools/list", json!({})).await.unwrap();
    assert!(
        listed.response["result"]["tools"].is_array(),
        "{}",
        listed.response
    );
    let mut unknown = McpHttpClient::new(&url(&b))
        .unwrap()
        .with_header("mcp-session-id", "0123abcd");
    assert_eq!(
        unknown
            .request("tools/list", json!({}))
            .await
            .unwrap()
            .status
            .as_u16(),
        404
    );
}
