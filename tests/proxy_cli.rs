//! The CLI: configuration errors list every problem and exit 2; the demo shows what a client
//! sees and what the upstream receives.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
}

#[test]
fn config_errors_list_every_problem_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("proxy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "listen = \"nowhere\"\nshiny = 1\n[[servers]]\nname = \"A B\"\nurl = \"http://x/${NOT_SET_ANYWHERE_42}\"\n",
    )
    .unwrap();
    for sub in [vec!["serve"], vec!["stdio", "--server", "a"]] {
        let out = bin().args(&sub).arg("--config").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for needle in [
            "4 problem",
            "listen",
            "shiny",
            "[a-z0-9_-]+",
            "NOT_SET_ANYWHERE_42 is not set",
        ] {
            assert!(err.contains(needle), "{sub:?}: missing {needle:?} in {err}");
        }
    }
    let out = bin()
        .args(["serve", "--config", "/nonexistent/gateway.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_shows_placeholders_to_the_client_and_values_to_the_server() {
    let out = bin().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client_lines: String = text.lines().filter(|l| l.starts_with("client  <-")).collect();
    let server_lines: String = text.lines().filter(|l| l.starts_with("mail    got")).collect();
    assert!(
        client_lines.contains("[EMAIL_1]") && client_lines.contains("[PHONE_1]"),
        "{text}"
    );
    assert!(!client_lines.contains("@example.com"), "{text}");
    assert!(
        server_lines.contains("@example.com") && server_lines.contains("202-555-01"),
        "{text}"
    );
    // The server no flow names gets nothing, and the client is told which rule refused it.
    assert!(text.contains("paste   got nothing"), "{text}");
    assert!(
        text.contains("may not be sent to paste/send_email (rule default:cross_server=deny)"),
        "{text}"
    );
}

#[test]
fn log_lines_to_a_pipe_are_plain_text() {
    // stderr is a pipe here, as under a process supervisor: no ANSI escapes in the log.
    let out = bin().arg("demo").env("RUST_LOG", "info").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(" INFO "), "no log line to check: {err}");
    assert!(!err.contains('\x1b'), "ANSI escapes in a piped log: {err:?}");
}
