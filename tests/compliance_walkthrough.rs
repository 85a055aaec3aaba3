//! `examples/compliance-walkthrough.sh` runs (serve, a curl-driven session, the audit
//! commands) and prints what the README's compliance walkthrough shows, hashes and times aside.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Hashes, hash prefixes and timestamps differ per run.
fn normalize(text: &str) -> String {
    let hex = regex::Regex::new(r"\b[0-9a-f]{12,64}\b").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let text = hex.replace_all(text, "<hex>");
    time.replace_all(&text, "<time>").trim().to_owned()
}

#[test]
fn the_walkthrough_prints_what_the_readme_shows() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "curl is needed");
        eprintln!("skipping: curl is not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("examples/compliance-walkthrough.sh"))
        .env("GATEWAY_BIN", env!("CARGO_BIN_EXE_mcp-pii-gateway"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("## Compliance walkthrough").nth(1).unwrap();
    let block = section
        .split("```console\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    assert_eq!(normalize(&stdout), normalize(block));
}
