//! No raw PII value in logs, error messages or `Debug` output, on success and error paths.
//!
//! One process-wide capture subscriber (TRACE, every target, `log` records included) records
//! everything the library emits while this test detects, tokenizes and restores PII-bearing data
//! and walks its error paths (unknown placeholder, scope full, a restore that would merge keys,
//! bad rule files, bad `scan` input). Every log line, error string, JSON-RPC error and `Debug`
//! rendering is then checked for the raw values. The values are fictional (example.org,
//! libphonenumber example numbers, 555-01xx).
//!
//! This file holds a single test so that nothing else runs under (or races for) the global
//! subscriber.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId, Vault};
use serde_json::json;

/// The raw values fed in; none may appear in anything this test collects.
const SECRETS: &[&str] = &[
    "zelda.quintero@example.org",
    "zelda.quintero",
    "+44 20 7946 0958",
    "7946 0958",
    "(201) 555-0123",
    "555-0123",
    "bartholomew@example.net",
    "xq-customer-77341",
    "quill.new@example.com",
];

/// A writer shared by every event the subscriber formats.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows a raw value ({s:?}): {text}");
    }
}

/// Runs `scan` with `args` on `input`; returns (exit code, stdout, stderr).
fn scan(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
        .arg("scan")
        .args(args)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_raw_value_in_logs_errors_or_debug_output() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .try_init()
        .unwrap();
    // Prove the capture works, so a silent library isn't mistaken for a clean one.
    tracing::info!(target: "capture_check", "capture is live");

    let mut shown: Vec<(String, String)> = Vec::new();
    let mut show = |what: &str, text: String| shown.push((what.to_owned(), text));

    // Detection, with a custom terms rule holding a sensitive literal.
    let detector = Arc::new(
        Detector::builder()
            .rules_toml("[[rule]]\nkind = \"CUSTOMER\"\nterms = [\"xq-customer-77341\"]\n")
            .unwrap()
            .build()
            .unwrap(),
    );
    let text = "Zelda <zelda.quintero@example.org>, tel +44 20 7946 0958, alt (201) 555-0123, \
                account xq-customer-77341";
    let spans = detector.find(text);
    assert_eq!(spans.len(), 4, "{spans:?}");
    show("Detector Debug", format!("{detector:?}"));
    show("spans Debug", format!("{spans:?}"));

    // Tokenize a message carrying PII in values and in an object key.
    let vault = Arc::new(MemoryVault::builder().max_entries_per_scope(6).build());
    let rw = Rewriter::new(detector.clone(), vault.clone());
    let scope = ScopeId::new("anonymous", "run-1");
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": text}],
        "structuredContent": {"zelda.quintero@example.org": {"phone": "(201) 555-0123"}},
        "isError": false}});
    let report = rw.tokenize_message(&mut msg, &scope, "crm").unwrap();
    let tokenized = msg.to_string();
    assert_clean("tokenized message", &tokenized);
    show("TokenizeReport Debug", format!("{report:?}"));
    show("Rewriter Debug", format!("{rw:?}"));
    show("MemoryVault Debug", format!("{vault:?}"));

    // Restore: the plan and its Debug hold values only as secrets.
    let mut call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "send", "arguments": {"to": "[EMAIL_1]", "tel": "[PHONE_1]"}}});
    let plan = rw.plan_restore_message(&call, &scope).unwrap();
    show("RestorePlan Debug", format!("{plan:?}"));
    for u in &plan.uses {
        let entry = vault.resolve(&scope, &u.placeholder).unwrap().unwrap();
        show("Entry Debug", format!("{entry:?} {:?}", entry.value));
    }
    rw.apply_restore_message(&mut call, &plan);
    assert_eq!(call["params"]["arguments"]["to"], "zelda.quintero@example.org");

    // Error: an unknown placeholder, in a string and in a key whose path holds raw PII.
    let bad = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"arguments": {"bartholomew@example.net": {"note": "see [EMAIL_99]"}}}});
    let e = rw.plan_restore_message(&bad, &scope).unwrap_err();
    assert!(e.is_unknown_placeholder());
    assert!(e.to_string().contains("[EMAIL_99]"), "{e}");
    show("unknown placeholder", e.to_string());
    show("unknown placeholder Debug", format!("{e:?}"));
    show("unknown placeholder JSON-RPC", e.to_jsonrpc_error().to_string());

    // Error: restoring keys would merge two members (both restore to the same name).
    let merge = json!({"a": {"[EMAIL_1]": 1, "zelda.quintero@example.org": 2}});
    let e = rw.plan_restore_value(&merge, &scope).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    show("key merge", e.to_string());
    show("key merge Debug", format!("{e:?}"));

    // Error: the scope is full (6 entries were allowed, 5 are used).
    let more = "bartholomew@example.net and (201) 555-0188 and +1 201-555-0199";
    let e = rw.tokenize_text(more, &scope, "crm").unwrap_err();
    assert!(e.is_scope_full(), "{e}");
    show("scope full", e.to_string());
    show("scope full Debug", format!("{e:?}"));
    show("scope full JSON-RPC", e.to_jsonrpc_error().to_string());
    let e = vault
        .tokenize(
            &scope,
            &mcp_pii_gateway::detect::Kind::email(),
            "quill.new@example.com",
            "crm",
        )
        .unwrap_err();
    show("vault scope full", format!("{e} {e:?}"));

    // Error: bad rule files quoting a sensitive literal.
    for toml in [
        "[[rule]]\nkind = \"CUSTOMER\"\nterms = [\"xq-customer-77341\"\n",
        "[[rule]]\nkind = \"CUSTOMER\"\npattern = '(xq-customer-77341'\n",
        "[[rule]]\nkind = \"customer\"\nterms = [\"xq-customer-77341\"]\n",
        "[[rule]]\nkind = \"CUSTOMER\"\nterms = [\"xq-customer-77341\"]\nbogus = \"zelda.quintero@example.org\"\n",
    ] {
        let e = Detector::builder()
            .rules_toml(toml)
            .and_then(|b| b.build())
            .unwrap_err();
        show("rule error", format!("{e} {e:?}"));
    }

    // The scan CLI: bad input and tokenize mode.
    let (code, _, err) = scan(
        &["--jsonl"],
        "{\"text\": \"ok\"}\nnot json zelda.quintero@example.org\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 2"), "{err}");
    show("scan bad JSON", err);
    let (code, _, err) = scan(&["--jsonl"], "{\"txt\": \"zelda.quintero@example.org\"}\n");
    assert_eq!(code, Some(2), "{err}");
    show("scan no text", err);
    let (code, _, err) = scan(&["--jsonl"], "{\"text\": [\"+44 20 7946 0958\"]}\n");
    assert_eq!(code, Some(2), "{err}");
    show("scan text not a string", err);
    let rules = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no_pii_in_logs_rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nkind = \"CUSTOMER\"\nterms = [\"xq-customer-77341\"]\n",
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let (code, out, err) = scan(&["--tokenize", "--rules", rules], text);
    assert_eq!(code, Some(0), "{err}");
    show("scan --tokenize stdout", out);
    show("scan --tokenize stderr", err);
    let (code, out, err) = scan(&["--rules", rules], text);
    assert_eq!(code, Some(0), "{err}");
    show("scan stdout", out);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("capture is live"),
        "the capture subscriber saw nothing: {logs}"
    );
    assert_clean("logs", &logs);
    for (what, text) in &shown {
        assert_clean(what, text);
    }
}
