#![allow(clippy::unwrap_used)]

use super::*;

fn env(v: &str) -> Option<String> {
    match v {
        "CRM_TOKEN" => Some("s3cret-token".into()),
        "MAIL_DIR" => Some("/tmp/mail".into()),
        "MCP_PII_AUDIT_KEY" => Some(KEY.into()),
        "SHORT_KEY" => Some("tooshort".into()),
        _ => None,
    }
}

/// A generated test key (not a secret anywhere).
const KEY: &str = "6d63702d7069692d676174657761792d746573742d6b6579";

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
cross_server = "deny"
[[policy.flows]]
id = "crm-to-mail"
from = "crm"
to = "mail/send_email"
kinds = ["EMAIL"]
"#;

#[test]
fn issue_example_validates() {
    let c = Config::from_toml_str(FULL, env).unwrap();
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.scope.header.as_ref().unwrap().as_str(), "x-agent-run");
    assert_eq!(c.vault.idle_ttl, Duration::from_secs(3600));
    assert_eq!(c.servers.len(), 2);
    match &c.servers[0].transport {
        Transport::Http { url, headers, .. } => {
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
    assert_eq!(c.policy.flows().len(), 1);
    assert_eq!(c.policy_source, PolicySource::Inline);
    assert!(c.audit.is_none());
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
        "servers[2]: typo: unknown field `typo`",
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
fn only_absolute_http_and_https_urls() {
    for url in ["ftp://x/mcp", "/mcp", "x:9000/mcp"] {
        let toml = format!("[[servers]]\nname=\"a\"\nurl=\"{url}\"\n");
        let e = Config::from_toml_str(&toml, env).unwrap_err();
        assert!(
            e.config_problems()[0].contains("http:// or https://"),
            "{url}: {e}"
        );
    }
}

#[test]
fn the_annotated_example_validates() {
    let c = Config::from_toml_str(include_str!("example.toml"), env).unwrap();
    assert_eq!(c.servers.len(), 2);
    assert_eq!(c.limits.session_idle, Duration::from_secs(3600));
    assert_eq!(c.limits.upstream_timeout, Duration::from_secs(300));
    let d = Limits::default();
    assert_eq!(c.limits.max_scopes_per_client, d.max_scopes_per_client);
    assert_eq!(c.limits.max_sessions, d.max_sessions);
    assert_eq!(c.limits.max_connections, d.max_connections);
    assert_eq!(c.limits.request_body_timeout, d.request_body_timeout);
    assert_eq!(c.limits.upstream_response_deadline, d.upstream_response_deadline);
    assert_eq!(c.clients[0].servers, ["crm", "mail"]);
    assert_eq!(c.policy.flows()[0].to_tool.as_deref(), Some("send_email"));
    assert_eq!(c.audit.unwrap().path, Path::new("./audit/gateway.jsonl"));
}

const ONE_SERVER: &str = "[[servers]]\nname = \"crm\"\ncommand = \"true\"\n";

#[test]
fn no_policy_means_the_default_policy_and_no_audit() {
    let c = Config::from_toml_str(ONE_SERVER, env).unwrap();
    assert_eq!(c.policy, Policy::default());
    assert_eq!(c.policy.cross_server(), crate::policy::CrossServer::Deny);
    assert_eq!(c.policy.untracked_pii(), crate::policy::UntrackedPii::Audit);
    assert_eq!(c.policy_source, PolicySource::Default);
    assert!(c.audit.is_none());
}

#[test]
fn audit_settings_resolve_the_path_and_read_the_key() {
    let text = format!("{ONE_SERVER}[audit]\npath = \"logs/audit.jsonl\"\nfsync = \"always\"\n");
    let c = Config::from_toml_str_in(&text, Path::new("/etc/gw"), env).unwrap();
    let a = c.audit.as_ref().unwrap();
    assert_eq!(a.path, Path::new("/etc/gw/logs/audit.jsonl"));
    assert_eq!(a.config.fsync, crate::audit::FsyncPolicy::Always);
    let want = crate::audit::Fingerprinter::from_key_text(KEY).unwrap();
    assert_eq!(a.fingerprinter.fingerprint("x"), want.fingerprint("x"));
    // Neither the key nor its bytes show in Debug output.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(KEY) && !dbg.contains("mcp-pii"), "{dbg}");
    // An absolute path stays as written.
    let text = format!("{ONE_SERVER}[audit]\npath = \"/var/log/gw.jsonl\"\n");
    let c = Config::from_toml_str_in(&text, Path::new("/etc/gw"), env).unwrap();
    assert_eq!(c.audit.unwrap().path, Path::new("/var/log/gw.jsonl"));
}

#[test]
fn audit_without_a_usable_key_is_a_problem() {
    let table: &[(&str, &str)] = &[
        (
            "[audit]\npath = \"a.jsonl\"\nkey_env = \"NOT_SET_KEY\"\n",
            "NOT_SET_KEY is not set",
        ),
        (
            "[audit]\npath = \"a.jsonl\"\nkey_env = \"SHORT_KEY\"\n",
            "at least 16 bytes",
        ),
        ("[audit]\npath = \"a.jsonl\"\nkey_env = \"\"\n", "audit.key_env"),
    ];
    for (audit, want) in table {
        let e = Config::from_toml_str(&format!("{ONE_SERVER}{audit}"), env).unwrap_err();
        let probs = e.config_problems().join("\n");
        assert!(probs.contains(want), "{audit}: {probs}");
        assert!(!probs.contains("tooshort"), "the key leaked: {probs}");
    }
    // The default variable, unset.
    let e =
        Config::from_toml_str(&format!("{ONE_SERVER}[audit]\npath = \"a.jsonl\"\n"), |_| None).unwrap_err();
    assert!(e.config_problems()[0].contains("MCP_PII_AUDIT_KEY is not set"));
}

#[test]
fn policy_and_audit_problems_are_reported_with_the_others() {
    let bad = r#"
listen = "nowhere"
[[servers]]
name = "crm"
command = "true"
[vault]
backend = "redis"
url = "redis://127.0.0.1/"
[policy]
cross_server = "maybe"
[[policy.flows]]
id = "x"
from = "crm"
[audit]
path = "a.jsonl"
fsync = "sometimes"
"#;
    let e = Config::from_toml_str(bad, env).unwrap_err();
    let probs = e.config_problems().join("\n");
    for needle in [
        "listen",
        "MCP_PII_VAULT_KEY is not set",
        "policy.cross_server",
        "policy.flows[0]",
        "[audit]",
    ] {
        assert!(probs.contains(needle), "missing {needle:?} in:\n{probs}");
    }
    let e = Config::from_toml_str(
        &format!("{ONE_SERVER}[audit]\npath = \"a.jsonl\"\nfsync = \"interval\"\nfsync_interval_ms = 0\nrotate_bytes = 10\n"),
        env,
    )
    .unwrap_err();
    let probs = e.config_problems().join("\n");
    assert!(
        probs.contains("audit.fsync_interval_ms") && probs.contains("audit.rotate_bytes"),
        "{probs}"
    );
}

#[test]
fn policy_file_is_relative_to_the_config_file() {
    let dir = std::env::temp_dir().join(format!("config-policy-file-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/flows.toml"),
        "[[flows]]\nid = \"crm-to-mail\"\nfrom = \"crm\"\nto = \"mail\"\nkinds = [\"EMAIL\"]\n",
    )
    .unwrap();
    let cfg = dir.join("gateway.toml");
    std::fs::write(
        &cfg,
        format!("policy_file = \"sub/flows.toml\"\n{ONE_SERVER}[[servers]]\nname = \"mail\"\ncommand = \"true\"\n"),
    )
    .unwrap();
    let c = Config::load(&cfg).unwrap();
    assert_eq!(c.policy.flows()[0].id, "crm-to-mail");
    assert_eq!(c.policy_source, PolicySource::File(dir.join("sub/flows.toml")));
    assert_eq!(
        c.policy,
        Policy::from_file(&cfg).unwrap(),
        "replay --policy gateway.toml agrees"
    );

    // Both forms at once, or a missing file: problems.
    let both = format!("policy_file = \"sub/flows.toml\"\n{ONE_SERVER}[policy]\ncross_server = \"deny\"\n");
    let e = Config::from_toml_str_in(&both, &dir, env).unwrap_err();
    assert!(e.config_problems()[0].contains("not both"), "{e}");
    let missing = format!("policy_file = \"nope.toml\"\n{ONE_SERVER}");
    let e = Config::from_toml_str_in(&missing, &dir, env).unwrap_err();
    assert!(e.config_problems()[0].contains("nope.toml"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn custom_rule_files_are_compiled_at_load_relative_to_the_config_file() {
    let dir = std::env::temp_dir().join(format!("config-rules-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/ids.toml"),
        "[[rule]]\nkind = \"CUSTOMER_ID\"\npattern = 'CUST-[0-9]{6}'\n",
    )
    .unwrap();
    let text = format!("rules = [\"rules/ids.toml\"]\n{ONE_SERVER}");
    let c = Config::from_toml_str_in(&text, &dir, env).unwrap();
    let kinds: Vec<&str> = c.detector.kinds().iter().map(|k| k.as_str()).collect();
    assert!(
        kinds.contains(&"CUSTOMER_ID") && kinds.contains(&"EMAIL"),
        "{kinds:?}"
    );
    let spans = c.detector.find("order for CUST-123456");
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind.as_str(), "CUSTOMER_ID");

    // Without `rules`: the built-in rules only.
    let c = Config::from_toml_str_in(ONE_SERVER, &dir, env).unwrap();
    assert!(c.detector.find("CUST-123456").is_empty());

    // A missing file and a bad rule are problems listed with the others (here a bad listen).
    std::fs::write(
        dir.join("rules/bad.toml"),
        "[[rule]]\nkind = \"lower\"\npattern = 'x'\n\n[[rule]]\nkind = \"GOOD_ID\"\npattern = 'G-[0-9]{4}'\n\n\
         [[rule]]\nkind = \"EMPTY_ONE\"\npattern = 'a*'\n",
    )
    .unwrap();
    let text =
        format!("listen = \"nowhere\"\nrules = [\"rules/none.toml\", \"rules/bad.toml\"]\n{ONE_SERVER}");
    let e = Config::from_toml_str_in(&text, &dir, env).unwrap_err();
    let problems = e.config_problems().join("\n");
    assert!(problems.contains("listen"), "{problems}");
    assert!(problems.contains("none.toml"), "{problems}");
    // Both bad rules of bad.toml, each naming its file, not only the first.
    let bad: Vec<&str> = problems.lines().filter(|l| l.contains("bad.toml")).collect();
    assert_eq!(bad.len(), 2, "{problems}");
    assert!(
        bad.iter().any(|l| l.contains("lower")) && bad.iter().any(|l| l.contains("empty_one")),
        "{problems}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resource_limits_parse_and_bad_ones_are_all_reported() {
    let ok = format!(
        "{ONE_SERVER}[limits]\nmax_scopes_per_client = 10\nmax_sessions = 20\nmax_connections = 30\n\
         request_body_timeout = \"2s\"\nupstream_response_deadline = \"1m\"\n"
    );
    let c = Config::from_toml_str(&ok, env).unwrap();
    assert_eq!(
        (
            c.limits.max_scopes_per_client,
            c.limits.max_sessions,
            c.limits.max_connections
        ),
        (10, 20, 30)
    );
    assert_eq!(c.limits.request_body_timeout, Duration::from_secs(2));
    assert_eq!(c.limits.upstream_response_deadline, Duration::from_secs(60));

    let bad = format!(
        "{ONE_SERVER}[limits]\nmax_scopes_per_client = 0\nmax_sessions = 0\nmax_connections = 0\n\
         request_body_timeout = \"0s\"\nupstream_response_deadline = \"soon\"\n"
    );
    let problems = Config::from_toml_str(&bad, env)
        .unwrap_err()
        .config_problems()
        .to_vec();
    for key in [
        "limits.max_scopes_per_client",
        "limits.max_sessions",
        "limits.max_connections",
        "limits.request_body_timeout",
        "limits.upstream_response_deadline",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(key)), "{key}: {problems:?}");
    }
    assert_eq!(problems.len(), 5, "{problems:?}");
}

#[test]
fn origins_are_parsed_and_canonical() {
    for (input, want) in [
        ("http://localhost:3000", Some("http://localhost:3000")),
        ("HTTP://LocalHost:80/", Some("http://localhost")),
        ("https://app.example:443", Some("https://app.example")),
        ("http://[::1]:8080", Some("http://[::1]:8080")),
        ("null", Some("null")),
        ("*", Some("*")),
        ("http://user@localhost", None),
        ("http://localhost/path", None),
        ("http://localhost?q=1", None),
        ("localhost:3000", None),
        ("not an origin", None),
    ] {
        assert_eq!(normalize_origin(input).as_deref(), want, "{input}");
    }
    let text = format!("allowed_origins = [\"http://LOCALHOST:80\", \"http://a/b\"]\n{ONE_SERVER}");
    let e = Config::from_toml_str(&text, env).unwrap_err();
    assert_eq!(e.config_problems().len(), 1);
    assert!(e.config_problems()[0].starts_with("allowed_origins[1]"));
    let text = format!("allowed_origins = [\"http://LOCALHOST:80\"]\n{ONE_SERVER}");
    let c = Config::from_toml_str(&text, env).unwrap();
    assert_eq!(c.allowed_origins, ["http://localhost"]);
}

#[test]
fn redis_vault_settings_are_validated_without_quoting_the_key() {
    let key = "ab".repeat(32);
    let env = |v: &str| match v {
        "MCP_PII_VAULT_KEY" | "VK" => Some(key.clone()),
        "SHORT" => Some("00112233-secret".to_owned()),
        "PW" => Some("hunter2".to_owned()),
        _ => None,
    };
    let ok = format!(
        "{ONE_SERVER}[vault]\nbackend = \"redis\"\nurl = \"redis://:${{PW}}@127.0.0.1:6379\"\nkey_env = \"VK\"\nprefix = \"gw\"\ncommand_timeout = \"250ms\"\ncluster = true\n"
    );
    let cfg = Config::from_toml_str(&ok, env).unwrap();
    match &cfg.vault.backend {
        VaultBackend::Redis(r) => {
            assert_eq!(r.url, "redis://:hunter2@127.0.0.1:6379");
            assert_eq!(r.prefix, "gw");
            assert_eq!(r.command_timeout, Duration::from_millis(250));
            assert!(r.cluster);
        }
        other => panic!("{other:?}"),
    }
    // A replica id defaults to the host name with Redis, and names the audit chain.
    assert!(cfg.replica_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert!(
        !format!("{cfg:?}").contains("hunter2"),
        "credentials stay out of Debug"
    );

    let bad = format!(
        "replica_id = \"no spaces\"\n{ONE_SERVER}[vault]\nbackend = \"redis\"\nurl = \"http://x\"\nkey_env = \"SHORT\"\nprefix = \"a{{b}}\"\n"
    );
    let probs = Config::from_toml_str(&bad, env)
        .unwrap_err()
        .config_problems()
        .join("\n");
    for needle in [
        "vault.url: must start with redis://",
        "vault.key_env: SHORT",
        "vault.prefix",
        "replica_id: must be",
    ] {
        assert!(probs.contains(needle), "missing {needle:?} in:\n{probs}");
    }
    assert!(!probs.contains("secret"), "the key is never quoted: {probs}");
    let mem = format!("{ONE_SERVER}[vault]\nkey_env = \"VK\"\n");
    let probs = Config::from_toml_str(&mem, env)
        .unwrap_err()
        .config_problems()
        .join("\n");
    assert!(
        probs.contains("vault.key_env: only used with backend = \"redis\""),
        "{probs}"
    );
}

#[test]
fn replica_ids_name_the_audit_chain() {
    use std::path::Path;
    assert_eq!(
        crate::config::replica_path(Path::new("/var/log/audit.jsonl"), "gw-1"),
        Path::new("/var/log/audit.gw-1.jsonl")
    );
    assert_eq!(
        crate::config::replica_path(Path::new("audit"), "b"),
        Path::new("audit.b")
    );
    let env = |v: &str| (v == "MCP_PII_AUDIT_KEY").then(|| "k".repeat(32));
    let cfg = Config::from_toml_str(
        &format!("replica_id = \"gw-2\"\n{ONE_SERVER}[audit]\npath = \"logs/audit.jsonl\"\n"),
        env,
    )
    .unwrap();
    assert!(cfg.audit.unwrap().path.ends_with("logs/audit.gw-2.jsonl"));
    let cfg = Config::from_toml_str(&format!("{ONE_SERVER}[audit]\npath = \"audit.jsonl\"\n"), env).unwrap();
    assert!(
        cfg.audit.unwrap().path.ends_with("audit.jsonl"),
        "one gateway keeps its file name"
    );
}

#[test]
fn flows_must_name_configured_servers_and_known_kinds() {
    let text = format!(
        "{ONE_SERVER}[[servers]]\nname = \"mail\"\ncommand = \"true\"\n[policy]\ncross_server = \"deny\"\n\
         [[policy.flows]]\nid = \"ok\"\nfrom = \"crm\"\nto = \"mail/send_email\"\nkinds = [\"EMAIL\"]\n\
         [[policy.flows]]\nid = \"typo\"\nfrom = \"crn\"\nto = \"mial\"\nkinds = [\"EMIAL\"]\n"
    );
    let probs = Config::from_toml_str(&text, |_| None)
        .unwrap_err()
        .config_problems()
        .join("\n");
    for needle in [
        "flow \"typo\": from names server \"crn\"",
        "flow \"typo\": to names server \"mial\"",
        "flow \"typo\": kind \"EMIAL\"",
    ] {
        assert!(probs.contains(needle), "missing {needle:?} in:\n{probs}");
    }
    assert!(!probs.contains("\"ok\""), "{probs}");
}

#[test]
fn every_bad_member_of_a_section_is_reported() {
    let text = format!(
        "{ONE_SERVER}[limits]\nmax_body_bytes = \"big\"\nmax_sessions = -1\nconnect_timeout = \"5s\"\nbogus = 1\n"
    );
    let probs = Config::from_toml_str(&text, |_| None)
        .unwrap_err()
        .config_problems()
        .join("\n");
    for needle in [
        "[limits]: max_body_bytes:",
        "[limits]: max_sessions:",
        "[limits]: bogus: unknown field",
    ] {
        assert!(probs.contains(needle), "missing {needle:?} in:\n{probs}");
    }
    assert!(
        !probs.lines().any(|l| l.starts_with("[limits]: connect_timeout")),
        "{probs}"
    );
}

/// A fresh directory with a self-signed certificate for localhost (`cert.pem`, `key.pem`), a
/// second key (`other.key`), a non-PEM file (`junk.pem`) and a PEM file with no certificate.
fn tls_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("config-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("other.key"), other.serialize_pem()).unwrap();
    std::fs::write(dir.join("junk.pem"), "not a certificate\n").unwrap();
    std::fs::write(dir.join("keyonly.pem"), other.serialize_pem()).unwrap();
    dir
}

#[test]
fn tls_files_are_loaded_at_startup_relative_to_the_config_file() {
    let dir = tls_dir("ok");
    let toml = r#"
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[[servers]]
name = "secure"
url = "https://localhost:9443/mcp"
ca_file = "cert.pem"
client_cert_file = "cert.pem"
client_key_file = "key.pem"
[[servers]]
name = "plain"
url = "http://127.0.0.1:9001/mcp"
"#;
    let c = Config::from_toml_str_in(toml, &dir, env).unwrap();
    let front = c.tls.as_ref().unwrap();
    assert_eq!(front.cert_file, dir.join("cert.pem"));
    assert_eq!(front.config.alpn_protocols, [b"http/1.1".to_vec()]);
    match &c.servers[0].transport {
        Transport::Http { tls: Some(t), .. } => {
            assert_eq!(t.ca_file.as_deref(), Some(dir.join("cert.pem").as_path()));
            assert!(t.config.client_auth_cert_resolver.has_certs());
        }
        t => panic!("{t:?}"),
    }
    assert!(matches!(
        c.servers[1].transport,
        Transport::Http { tls: None, .. }
    ));
    // Debug shows the files, never key material.
    let dbg = format!("{c:?}");
    assert!(dbg.contains("cert.pem") && !dbg.contains("PRIVATE KEY"), "{dbg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_tls_files_are_all_reported_with_their_paths() {
    let dir = tls_dir("bad");
    let toml = r#"
[tls]
cert_file = "missing.pem"
key_file = "junk.pem"
[[servers]]
name = "a"
url = "https://localhost:9443/mcp"
ca_file = "junk.pem"
client_cert_file = "keyonly.pem"
client_key_file = "cert.pem"
[[servers]]
name = "b"
url = "https://localhost:9443/mcp"
ca_file = "cert.pem"
client_cert_file = "cert.pem"
[[servers]]
name = "c"
url = "http://127.0.0.1:9001/mcp"
ca_file = "cert.pem"
[[servers]]
name = "d"
command = "server"
client_key_file = "key.pem"
[[servers]]
name = "e"
url = "https://localhost:9443/mcp"
ca_file = "cert.pem"
client_cert_file = "cert.pem"
client_key_file = "other.key"
"#;
    let err = Config::from_toml_str_in(toml, &dir, env).unwrap_err();
    let problems = err.config_problems();
    let path = |f: &str| dir.join(f).display().to_string();
    let expect = [
        ("tls.cert_file", path("missing.pem")),
        ("tls.key_file", path("junk.pem")),
        ("servers[0] (a): ca_file", path("junk.pem")),
        ("servers[0] (a): client_cert_file", path("keyonly.pem")),
        ("servers[0] (a): client_key_file", path("cert.pem")),
        (
            "servers[1] (b): client_cert_file and client_key_file go together",
            String::new(),
        ),
        (
            "servers[2] (c): ca_file, client_cert_file and client_key_file need an https",
            String::new(),
        ),
        (
            "servers[3] (d): ca_file, client_cert_file and client_key_file are for https",
            String::new(),
        ),
        ("servers[4] (e): client_key_file", String::new()),
    ];
    for (start, path) in &expect {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(start) && p.contains(path.as_str())),
            "no problem {start:?} naming {path:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    // A file's content is never quoted.
    assert!(
        problems.iter().all(|p| !p.contains("not a certificate")),
        "{problems:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_readme_shows_the_annotated_example() {
    let readme = include_str!("../../README.md");
    let example = include_str!("example.toml");
    assert!(
        readme.contains(example),
        "README.md's annotated gateway.toml must be src/config/example.toml, byte for byte"
    );
}
