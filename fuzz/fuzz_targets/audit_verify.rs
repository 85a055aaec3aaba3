//! The audit log readers: arbitrary bytes as a log file through `audit::verify` (and the
//! in-memory `verify_lines`, `replay_lines`, `search_lines`) never panic; and a log written by
//! the real `FileSink` verifies, and fails to verify once one byte is changed (unless the change
//! leaves every record's JSON value the same, e.g. the case of a `\u` escape's hex digit).
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mcp_pii_gateway::audit::{
    self, Auditor, FileSink, FileSinkOptions, Fingerprinter, FsyncPolicy, PlaceholderRecord, Record,
};
use mcp_pii_gateway::detect::Kind;
use mcp_pii_gateway::policy::{FlowItem, FlowRequest, Policy};
use mcp_pii_gateway::vault::{ScopeId, Secret};
use serde_json::Value;

fn dir() -> &'static tempfile::TempDir {
    static D: OnceLock<tempfile::TempDir> = OnceLock::new();
    D.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
}

fn fp() -> Fingerprinter {
    Fingerprinter::new(b"0123456789abcdef0123456789abcdef").expect("a 32-byte key")
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir().path().join(name);
    std::fs::write(&p, bytes).expect("write a temporary file");
    p
}

/// Never panics on any bytes.
fn raw(data: &[u8]) {
    let p = write("raw.jsonl", data);
    let _ = audit::verify(&[p.clone()]);
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let report = audit::verify_lines(&lines);
    let _ = report.to_string();
    let _ = audit::replay_lines(&lines, None);
    let _ = audit::search_lines(&lines, "ana.lima@example.org", &fp());
}

fn line_values(bytes: &[u8]) -> Vec<Option<Value>> {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| serde_json::from_slice::<Value>(l).ok())
        .collect()
}

/// A log from the real sink, then one byte changed.
fn mutated(u: &mut Unstructured<'_>) -> Result<()> {
    let path = dir().path().join("sink.jsonl");
    for entry in std::fs::read_dir(dir().path())
        .expect("read the temporary directory")
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("sink.jsonl") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let opts = FileSinkOptions {
        fsync: FsyncPolicy::Never,
        fsync_interval: Duration::from_secs(1),
        rotate_bytes: if u.ratio(1, 4)? {
            u.int_in_range(200..=2000)?
        } else {
            0
        },
    };
    {
        let sink = Arc::new(FileSink::open(&path, opts.clone()).expect("open the sink"));
        let auditor = Auditor::new(sink, fp());
        let policy = Policy::default();
        let n = u.int_in_range(1..=4)?;
        for _ in 0..n {
            let client: String = u.arbitrary()?;
            let server: String = u.arbitrary()?;
            let tool: Option<String> = u.arbitrary()?;
            let ctx = auditor.context(
                &client,
                &ScopeId::new(&client, "run"),
                &server,
                "tools/call",
                tool.as_deref(),
            );
            if u.ratio(1, 2)? {
                let items = [FlowItem::new("[EMAIL_1]", Kind::email(), [server.as_str()])];
                let req = FlowRequest::new(&server, tool.as_deref(), &items);
                let value = Secret::new("ana.lima@example.org");
                let _ = auditor.enforce(&policy, &ctx, &req, &[Some(&value)]);
            } else {
                let outcome: String = u.arbitrary()?;
                let minted: Vec<PlaceholderRecord> = Vec::new();
                let ms: u32 = u.arbitrary()?;
                let r = Record::exchange(
                    &ctx,
                    minted,
                    Vec::new(),
                    &outcome,
                    Duration::from_micros(ms.into()),
                    None,
                );
                auditor.exchange(r).expect("append a record");
            }
        }
        if u.ratio(1, 4)? {
            // A torn write (crash mid-record): reopening seals it with a recovery record.
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open the log");
            let torn: Vec<u8> = u.arbitrary()?;
            let torn: Vec<u8> = torn.into_iter().filter(|&b| b != b'\n').collect();
            f.write_all(&torn).expect("write a torn line");
        }
    }
    // Reopen (recovering a torn tail, if any) and add one more record.
    if let Ok(sink) = FileSink::open(&path, opts) {
        let auditor = Auditor::new(Arc::new(sink), fp());
        let ctx = auditor.context(
            "anonymous",
            &ScopeId::new("anonymous", "run"),
            "crm",
            "ping",
            None,
        );
        let r = Record::exchange(&ctx, Vec::new(), Vec::new(), "ok", Duration::from_millis(1), None);
        auditor.exchange(r).expect("append after reopening");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().path())
        .expect("read the temporary directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sink.jsonl"))
        })
        .collect();
    files.sort();
    let report = audit::verify(&files).expect("verify the sink's files");
    assert!(
        report.is_intact(),
        "a log written by FileSink does not verify: {report}"
    );

    // One byte of one file changed.
    let which = u.choose_index(files.len())?;
    let orig = std::fs::read(&files[which]).expect("read a log file");
    if orig.is_empty() {
        return Ok(());
    }
    let at = u.choose_index(orig.len())?;
    let x: u8 = u.int_in_range(1..=255)?;
    let mut bad = orig.clone();
    bad[at] ^= x;
    if line_values(&bad) == line_values(&orig)
        && bad.iter().filter(|&&b| b == b'\n').count() == orig.iter().filter(|&&b| b == b'\n').count()
    {
        return Ok(()); // the same records, spelled differently
    }
    std::fs::write(&files[which], &bad).expect("write the changed file");
    let report = audit::verify(&files).expect("verify the changed files");
    assert!(
        !report.is_intact(),
        "a one-byte change at {at} of {} (^{x:#04x}) still verifies: {report}",
        files[which].display()
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((m, rest)) if m % 2 == 1 => {
            let _ = mutated(&mut Unstructured::new(rest));
        }
        Some((_, rest)) => raw(rest),
        None => {}
    }
});
