#![allow(clippy::unwrap_used)]

use super::*;

fn env(v: &str) -> Option<String> {
    match v {
        "CRM_TOKEN" => Some("s3cret-token".into()),
        "MAIL_DIR" => Some("/tmp/mail".into()),
        _ => None,
    }
}

const FULL: &str = r#"
listen = "127.0.0.1:8080"
[scope]
header = "x-agent-run"
required = false
[vault]
backend = "memory"
idle_ttl = "1h"
[[servers]]
name = "crm"
url = "http://127.0.0.1:9001/mcp"
headers = { Authorization = "Bearer ${CRM_TOKEN}" }
[[servers]]
name = "mail"
command = "python3"
args = ["mail_server.py"]
env = { MAIL_DIR = "${MAIL_DIR}" }
[[clients]]
name = "sandbox"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
servers = ["crm", "mail"]
[policy]
anything = "kept raw"
"#;

#[test]
fn issue_example_validates() {
    let c = Config::from_toml_str(FULL, env).unwrap();
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.scope.header.as_ref().unwrap().as_str(), "x-agent-run");
    assert_eq!(c.vault.idle_ttl, Duration::from_secs(3600));
    assert_eq!(c.servers.len(), 2);
    match &c.servers[0].transport {
        Transport::Http { url, headers } => {
            assert_eq!(url.path(), "/mcp");
            assert_eq!(headers[0].1.to_str().unwrap(), "Bearer s3cret-token");
        }
        t => panic!("{t:?}"),
    }
    match &c.servers[1].transport {
        Transport::Stdio { env, .. } => assert_eq!(env[0].1, "/tmp/mail"),
        t => panic!("{t:?}"),
    }
    assert_eq!(c.clients[0].token_sha256[0], 0x9f);
    assert!(c.policy.is_some());
    assert_eq!(c.allowed_hosts, ["localhost", "127.0.0.1", "[::1]"]);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = r#"
listen = "localhost"
colour = "blue"
[scope]
required = true
[vault]
backend = "sqlite"
idle_ttl = "soon"
[[servers]]
name = "CRM"
url = "http://127.0.0.1:9001/mcp"
command = "x"
[[servers]]
name = "mail"
url = "http://127.0.0.1/mcp"
headers = { Authorization = "Bearer ${NOPE}" }
[[servers]]
name = "mail"
command = "true"
typo = 1
[[clients]]
name = "sandbox"
token_sha256 = "abc"
servers = ["crm"]
"#;
    let e = Config::from_toml_str(bad, env).unwrap_err();
    assert!(e.is_config());
    let probs = e.config_problems().join("\n");
    for needle in [
        "listen",
        "colour",
        "scope.required",
        "vault.backend",
        "vault.idle_ttl",
        "servers[0] (CRM): name must match",
        "exactly one of url and command",
        "NOPE is not set",
        "servers[2]: unknown field `typo`",
        "token_sha256 must be 64 hex",
        "unknown server \"crm\"",
    ] {
        assert!(probs.contains(needle), "missing {needle:?} in:\n{probs}");
    }
    assert!(!probs.contains("s3cret"));
}

#[test]
fn env_expansion() {
    let e = |v: &str| (v == "A").then(|| "x".to_string());
    let table: &[(&str, Result<&str, &str>)] = &[
        ("plain", Ok("plain")),
        ("${A}", Ok("x")),
        ("a${A}b${A}", Ok("axbx")),
        ("$$ {A} $5", Ok("$ {A} $5")),
        ("${B}", Err("B is not set")),
        ("${A", Err("unterminated")),
        ("${1A}", Err("invalid variable")),
    ];
    for (input, want) in table {
        match (expand_env(input, &e), want) {
            (Ok(got), Ok(w)) => assert_eq!(&got, w, "{input}"),
            (Err(got), Err(w)) => assert!(got.contains(w), "{input}: {got}"),
            (got, w) => panic!("{input}: {got:?} vs {w:?}"),
        }
    }
}

#[test]
fn non_loopback_listen_allows_any_host_by_default() {
    let c = Config::from_toml_str(
        "listen = \"0.0.0.0:1\"\n[[servers]]\nname=\"a\"\ncommand=\"true\"\n",
        env,
    )
    .unwrap();
    assert_eq!(c.allowed_hosts, ["*"]);
}

#[test]
fn empty_config_needs_servers() {
    let e = Config::from_toml_str("", env).unwrap_err();
    assert!(e.config_problems()[0].contains("no [[servers]]"));
}

#[test]
fn https_is_rejected_clearly() {
    let e = Config::from_toml_str("[[servers]]\nname=\"a\"\nurl=\"https://x/mcp\"\n", env).unwrap_err();
    assert!(e.config_problems()[0].contains("https"));
}

#[test]
fn the_annotated_example_validates() {
    let c = Config::from_toml_str(include_str!("example.toml"), env).unwrap();
    assert_eq!(c.servers.len(), 2);
    assert_eq!(c.limits.session_idle, Duration::from_secs(3600));
    assert_eq!(c.limits.upstream_timeout, Duration::from_secs(300));
    assert_eq!(c.clients[0].servers, ["crm", "mail"]);
}
