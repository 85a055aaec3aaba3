//! The audit file: hash chain, tamper detection (edit, delete, swap, truncate, torn line),
//! rotation, restart and crash recovery, concurrency, configuration.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mcp_pii_gateway::audit::{
    verify, verify_lines, AuditConfig, AuditSink, FileSink, FileSinkOptions, FsyncPolicy, MemorySink,
    ProblemKind, Record, RecordType, VerifyReport,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("audit-chain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(fsync: FsyncPolicy, rotate_bytes: u64) -> FileSinkOptions {
    FileSinkOptions {
        fsync,
        fsync_interval: Duration::from_millis(50),
        rotate_bytes,
    }
}

fn record(i: u64) -> Record {
    let mut r = Record::new(RecordType::Exchange);
    r.client = Some("anonymous".into());
    r.server = Some(["crm", "mail", "search"][i as usize % 3].into());
    r.method = Some("tools/call".into());
    r.tool = Some(format!("tool_{i}"));
    r.outcome = Some("ok".into());
    r.duration_ms = Some(i as f64 / 8.0);
    r
}

fn write_log(path: &Path, n: u64, o: FileSinkOptions) -> Vec<Record> {
    let sink = FileSink::open(path, o).unwrap();
    (0..n).map(|i| sink.append(record(i)).unwrap()).collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

fn check(report: &VerifyReport, seq: u64, kind: ProblemKind) {
    let p = report
        .problem
        .as_ref()
        .unwrap_or_else(|| panic!("expected a problem, got {report}"));
    assert_eq!((p.seq, p.kind), (seq, kind), "{report}");
    assert_eq!(
        report.records,
        seq - 1,
        "the verified prefix ends just before: {report}"
    );
}

#[test]
fn intact_log_verifies_and_links() {
    let dir = tmp("intact");
    let path = dir.join("gateway.jsonl");
    let recs = write_log(&path, 10, opts(FsyncPolicy::Always, 0));
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!((r.records, r.last_seq), (10, Some(10)));
    assert_eq!(r.head_hash.as_deref(), Some(recs[9].hash.as_str()));
    assert_eq!(recs[0].prev_hash, mcp_pii_gateway::audit::GENESIS_HASH);
    for w in recs.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    // Every line is a record whose hash matches its content, and the time is RFC 3339 UTC.
    for (l, rec) in lines(&path).iter().zip(&recs) {
        let parsed: Record = serde_json::from_str(l).unwrap();
        assert_eq!(&parsed, rec);
        assert_eq!(parsed.compute_hash(), parsed.hash);
        assert!(parsed.time.ends_with('Z') && humantime::parse_rfc3339(&parsed.time).is_ok());
    }
}

#[test]
fn tampering_is_detected_at_the_right_seq() {
    let dir = tmp("tamper");
    let path = dir.join("gateway.jsonl");
    write_log(&path, 10, opts(FsyncPolicy::Never, 0));
    let orig = lines(&path);
    let bad = dir.join("bad.jsonl");
    let run = |ls: &[String]| {
        write_lines(&bad, ls);
        verify(std::slice::from_ref(&bad)).unwrap()
    };

    // Edit a field.
    let mut l = orig.clone();
    l[4] = l[4].replace("\"outcome\":\"ok\"", "\"outcome\":\"error\"");
    assert_ne!(l[4], orig[4]);
    check(&run(&l), 5, ProblemKind::Edited);

    // Edit a field and recompute that record's hash: the next record's link breaks.
    let mut rec: Record = serde_json::from_str(&orig[4]).unwrap();
    rec.server = Some("elsewhere".into());
    rec.hash = rec.compute_hash();
    let mut l = orig.clone();
    l[4] = rec.to_line();
    check(&run(&l), 6, ProblemKind::BrokenLink);

    // Add a member.
    let mut l = orig.clone();
    l[2] = l[2].replacen('{', "{\"note\":\"x\",", 1);
    check(&run(&l), 3, ProblemKind::Edited);

    // Delete a record.
    let mut l = orig.clone();
    l.remove(3);
    check(&run(&l), 4, ProblemKind::Sequence);

    // Swap two records.
    let mut l = orig.clone();
    l.swap(6, 7);
    check(&run(&l), 7, ProblemKind::Sequence);

    // Renumber after deleting (seq and prev_hash patched): the hash gives it away.
    let mut l = orig.clone();
    l.remove(3);
    let mut r4: Record = serde_json::from_str(&l[3]).unwrap();
    let r3: Record = serde_json::from_str(&l[2]).unwrap();
    r4.seq = 4;
    r4.prev_hash = r3.hash.clone();
    l[3] = serde_json::to_string(&r4).unwrap();
    check(&run(&l), 4, ProblemKind::Edited);

    // Garbage line in the middle.
    let mut l = orig.clone();
    l.insert(5, "not json".into());
    check(&run(&l), 6, ProblemKind::Unparsable);

    // Truncated in the middle of a record (torn tail): the prefix still verifies.
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = orig[..6].iter().map(|l| l.len() + 1).sum::<usize>() + 20;
    std::fs::write(&bad, &text[..cut]).unwrap();
    let r = verify(std::slice::from_ref(&bad)).unwrap();
    check(&r, 7, ProblemKind::TornTail);
    assert_eq!(r.last_seq, Some(6));

    // A torn last line that ends in a newline but is not a record.
    let mut l = orig.clone();
    l.push("{\"seq\":11,\"ti".into());
    check(&run(&l), 11, ProblemKind::TornTail);

    // A complete last record whose newline is missing is still a torn tail.
    std::fs::write(&bad, text.trim_end()).unwrap();
    check(
        &verify(std::slice::from_ref(&bad)).unwrap(),
        10,
        ProblemKind::TornTail,
    );

    // The untouched log still verifies.
    assert!(run(&orig).is_intact());
}

#[test]
fn rotation_keeps_the_chain_across_files() {
    let dir = tmp("rotate");
    let path = dir.join("gateway.jsonl");
    let recs = write_log(&path, 60, opts(FsyncPolicy::Interval, 4096));
    let sink = FileSink::open(&path, opts(FsyncPolicy::Interval, 4096)).unwrap();
    let files = sink.files().unwrap();
    drop(sink);
    assert!(files.len() >= 3, "expected rotation, got {files:?}");
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 4096, "{} is {size} bytes", f.display());
    }
    // Each rotated file is named after its first record and the next file links to its last.
    for w in files.windows(2) {
        let a = lines(&w[0]);
        let b = lines(&w[1]);
        let first_a: Record = serde_json::from_str(&a[0]).unwrap();
        let last_a: Record = serde_json::from_str(a.last().unwrap()).unwrap();
        let first_b: Record = serde_json::from_str(&b[0]).unwrap();
        assert!(w[0].to_string_lossy().ends_with(&format!(".{:012}", first_a.seq)));
        assert_eq!(first_b.prev_hash, last_a.hash);
        assert_eq!(first_b.seq, last_a.seq + 1);
    }
    // Any order on the command line verifies (files are ordered by first seq).
    let mut reversed = files.clone();
    reversed.reverse();
    let r = verify(&reversed).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.records, 60);
    assert_eq!(r.head_hash.as_deref(), Some(recs[59].hash.as_str()));
    // A missing middle file is a gap at its first seq; a missing first file too.
    let first_of_second: Record = serde_json::from_str(&lines(&files[1])[0]).unwrap();
    let without_middle: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, f)| f.clone())
        .collect();
    check(
        &verify(&without_middle).unwrap(),
        first_of_second.seq,
        ProblemKind::Sequence,
    );
    let r = verify(&files[1..]).unwrap();
    check(&r, 1, ProblemKind::Sequence);
    assert!(r.problem.unwrap().message.contains("first file"));
}

#[test]
fn restart_continues_the_chain() {
    let dir = tmp("restart");
    let path = dir.join("gateway.jsonl");
    write_log(&path, 5, opts(FsyncPolicy::Always, 0));
    let more = write_log(&path, 5, opts(FsyncPolicy::Always, 0));
    assert_eq!(more[0].seq, 6);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_intact() && r.records == 10, "{r}");

    // Restart when the active file is empty (crash right after a rotation's rename).
    let rotated = dir.join(format!("gateway.jsonl.{:012}", 1));
    std::fs::rename(&path, &rotated).unwrap();
    let again = write_log(&path, 3, opts(FsyncPolicy::Always, 0));
    assert_eq!(again[0].seq, 11);
    let r = verify(&[path.clone(), rotated]).unwrap();
    assert!(r.is_intact() && r.records == 13, "{r}");
}

#[test]
fn torn_tail_is_reported_then_sealed_on_restart() {
    let dir = tmp("torn");
    let path = dir.join("gateway.jsonl");
    write_log(&path, 5, opts(FsyncPolicy::Always, 0));
    // Crash mid-write: half a record, no newline.
    let half = {
        let l = record(99).to_line();
        l[..l.len() / 2].to_owned()
    };
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, half.as_bytes()).unwrap();
    drop(f);
    check(
        &verify(std::slice::from_ref(&path)).unwrap(),
        6,
        ProblemKind::TornTail,
    );

    // The writer restarts: it terminates the torn line and seals it with a recovery record.
    let recs = write_log(&path, 2, opts(FsyncPolicy::Always, 0));
    assert_eq!(recs[0].seq, 7);
    let ls = lines(&path);
    assert_eq!(ls[5], half, "the torn bytes stay in place as evidence");
    let rec: Record = serde_json::from_str(&ls[6]).unwrap();
    assert_eq!(rec.record_type, RecordType::Recovery);
    assert_eq!(rec.seq, 6);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!((r.records, r.recovered.clone()), (8, vec![6]));

    // The torn bytes cannot be changed afterwards without detection.
    let mut ls = lines(&path);
    ls[5] = ls[5].replace('"', "'");
    write_lines(&path, &ls);
    check(
        &verify(std::slice::from_ref(&path)).unwrap(),
        6,
        ProblemKind::Unparsable,
    );
}

#[test]
fn complete_record_without_newline_is_kept_on_restart() {
    let dir = tmp("nonl");
    let path = dir.join("gateway.jsonl");
    write_log(&path, 3, opts(FsyncPolicy::Always, 0));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.trim_end()).unwrap();
    let recs = write_log(&path, 1, opts(FsyncPolicy::Always, 0));
    assert_eq!(recs[0].seq, 4);
    let r = verify(std::slice::from_ref(&path)).unwrap();
    assert!(r.is_intact() && r.records == 4 && r.recovered.is_empty(), "{r}");
}

#[test]
fn damaged_log_refuses_to_open() {
    let dir = tmp("damaged");
    let path = dir.join("gateway.jsonl");
    write_log(&path, 5, opts(FsyncPolicy::Never, 0));
    let mut ls = lines(&path);
    ls[2] = ls[2].replace("tool_2", "tool_X");
    write_lines(&path, &ls);
    let err = FileSink::open(&path, opts(FsyncPolicy::Never, 0)).unwrap_err();
    assert!(err.to_string().contains("refusing to append"), "{err}");
}

#[test]
fn concurrent_appends_form_one_chain() {
    let dir = tmp("concurrent");
    let path = dir.join("gateway.jsonl");
    let sink = Arc::new(FileSink::open(&path, opts(FsyncPolicy::Interval, 16 * 1024)).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    sink.append(record(t * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let files = sink.files().unwrap();
    let r = verify(&files).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.records, 400);
}

#[test]
fn memory_sink_chains_too() {
    let sink = MemorySink::new();
    for i in 0..5 {
        sink.append(record(i)).unwrap();
    }
    let mut ls = sink.lines();
    assert!(verify_lines(&ls).is_intact());
    ls.swap(1, 2);
    check(&verify_lines(&ls), 2, ProblemKind::Sequence);
}

#[test]
fn audit_config_parses_and_validates() {
    let c: AuditConfig = toml::from_str(
        r#"
path = "audit/gateway.jsonl"
fsync = "interval"
rotate_bytes = 104857600
key_env = "MCP_PII_AUDIT_KEY"
"#,
    )
    .unwrap();
    assert!(c.validate().is_empty());
    assert_eq!(c.sink_options().rotate_bytes, 104_857_600);
    assert_eq!(c.sink_options().fsync_interval, Duration::from_secs(1));
    let bad = AuditConfig {
        path: PathBuf::new(),
        fsync: FsyncPolicy::Interval,
        fsync_interval_ms: 0,
        rotate_bytes: 10,
        key_env: String::new(),
    };
    assert_eq!(bad.validate().len(), 4, "{:?}", bad.validate());
    assert!(toml::from_str::<AuditConfig>("path = \"a\"\nfsync = \"sometimes\"").is_err());
    assert!(toml::from_str::<AuditConfig>("path = \"a\"\ncolour = 1").is_err());
    let dir = tmp("config");
    let sink = c.open_sink(&dir).unwrap();
    sink.append(record(0)).unwrap();
    sink.sync().unwrap();
    assert!(dir.join("audit/gateway.jsonl").exists());
}

#[test]
fn anchors_catch_records_cut_off_the_end() {
    use mcp_pii_gateway::audit::{verify_anchored, Anchor};
    let dir = tmp("anchor");
    let path = dir.join("gateway.jsonl");
    let sink = FileSink::open(&path, opts(FsyncPolicy::Never, 0)).unwrap();
    assert_eq!(sink.head().unwrap(), None);
    for i in 0..10 {
        sink.append(record(i)).unwrap();
    }
    let head = sink.head().unwrap().unwrap();
    drop(sink);
    assert_eq!(head.seq, 10);
    let parsed: Anchor = format!("{}:{}", head.seq, head.hash).parse().unwrap();
    assert_eq!(parsed, head);
    assert!("10:xyz".parse::<Anchor>().is_err() && "ten".parse::<Anchor>().is_err());
    let r = verify_anchored(std::slice::from_ref(&path), std::slice::from_ref(&head)).unwrap();
    assert!(r.is_intact(), "{r}");

    // Cut the last three whole records: the chain alone cannot tell, the anchor can.
    let ls = lines(&path);
    write_lines(&path, &ls[..7]);
    assert!(verify(std::slice::from_ref(&path)).unwrap().is_intact());
    check(
        &verify_anchored(std::slice::from_ref(&path), std::slice::from_ref(&head)).unwrap(),
        8,
        ProblemKind::Truncated,
    );
    // Cut and re-grow to the same length: the anchored record's hash differs.
    let sink = FileSink::open(&path, opts(FsyncPolicy::Never, 0)).unwrap();
    for i in 0..3 {
        sink.append(record(100 + i)).unwrap();
    }
    drop(sink);
    check(
        &verify_anchored(std::slice::from_ref(&path), std::slice::from_ref(&head)).unwrap(),
        10,
        ProblemKind::Truncated,
    );
}

#[test]
fn auditor_enforce_records_then_decides_and_rewrites_policy_after_rotation() {
    use mcp_pii_gateway::audit::{replay, Auditor, Fingerprinter, Verdict};
    use mcp_pii_gateway::detect::Kind;
    use mcp_pii_gateway::policy::{FlowItem, FlowRequest, Policy};
    use mcp_pii_gateway::vault::{ScopeId, Secret};

    let dir = tmp("enforce");
    let path = dir.join("gateway.jsonl");
    let sink = Arc::new(FileSink::open(&path, opts(FsyncPolicy::Never, 4096)).unwrap());
    let auditor = Auditor::new(
        sink.clone(),
        Fingerprinter::new(b"enforce-test-key-0123456789").unwrap(),
    );
    let policy = Policy::from_str("[[flows]]\nid = \"crm-to-mail\"\nfrom = \"crm\"\nto = \"mail\"").unwrap();
    let scope = ScopeId::new("anonymous", "run-9");
    let value = Secret::new("goran.kowal@example.net");
    let items = [FlowItem::new("[EMAIL_1]", Kind::email(), ["crm"])];
    for i in 0..40 {
        let target = if i % 2 == 0 { "mail" } else { "search" };
        let ctx = auditor.context("anonymous", &scope, target, "tools/call", Some("send"));
        let req = FlowRequest::new(target, Some("send"), &items);
        let res = auditor.enforce(&policy, &ctx, &req, &[Some(&value)]);
        if i % 2 == 0 {
            assert_eq!(res.unwrap().rule_id, "crm-to-mail");
        } else {
            let e = res.unwrap_err();
            assert!(e.is_policy_denied() && e.to_string().contains("[EMAIL_1]"));
            assert!(!e.to_string().contains("goran"));
        }
    }
    let files = sink.files().unwrap();
    assert!(files.len() >= 3, "{files:?}");
    // Every file that holds decisions holds the policy record they need: each replays alone.
    for f in &files {
        let rep = replay(std::slice::from_ref(f), None).unwrap();
        assert!(rep.is_clean(), "{}: {rep}", f.display());
        assert!(rep.decisions > 0);
    }
    let all = replay(&files, None).unwrap();
    assert_eq!((all.decisions, all.reproduced), (40, 40));
    // Denials are recorded as such, with the fingerprint of the value that was held back.
    let recs: Vec<Record> = files
        .iter()
        .flat_map(|f| lines(f))
        .map(|l| serde_json::from_str(&l).unwrap())
        .filter(|r: &Record| r.record_type == RecordType::Decision)
        .collect();
    assert_eq!(
        recs.iter().filter(|r| r.decision == Some(Verdict::Deny)).count(),
        20
    );
    let fp = auditor.fingerprinter().fingerprint(value.expose());
    assert!(recs
        .iter()
        .all(|r| r.restored[0].fingerprint.as_deref() == Some(fp.as_str())));
    sink.sync_if_due().unwrap();
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn sample_lines(n: u64) -> Vec<String> {
        let sink = MemorySink::new();
        for i in 0..n {
            sink.append(record(i)).unwrap();
        }
        sink.lines()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Changing any one byte of any record to any other printable byte (or a newline) is
        /// caught, and the first bad seq is that record's.
        #[test]
        fn any_single_byte_change_is_caught_at_its_record(
            n in 1u64..12, line in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(),
            byte in prop_oneof![0x20u8..0x7f, Just(b'\n')],
        ) {
            let mut ls = sample_lines(n);
            let i = line.index(ls.len());
            let mut bytes = ls[i].clone().into_bytes();
            let p = pos.index(bytes.len());
            prop_assume!(bytes[p] != byte);
            bytes[p] = byte;
            // A newline splits the record in two lines, as it would in the file.
            let replaced = String::from_utf8(bytes).unwrap();
            let mut new_lines: Vec<String> = replaced.split('\n').map(str::to_owned).collect();
            let tail = ls.split_off(i + 1);
            ls.pop();
            ls.append(&mut new_lines);
            ls.extend(tail);
            let r = verify_lines(&ls);
            let problem = r.problem.clone();
            prop_assert!(problem.is_some(), "not caught: {}", r);
            prop_assert_eq!(problem.unwrap().seq, i as u64 + 1, "{}", r);
        }

        /// Removing or duplicating any record is caught at its position.
        #[test]
        fn removing_or_duplicating_a_record_is_caught(n in 2u64..12, line in any::<prop::sample::Index>(), dup in any::<bool>()) {
            let mut ls = sample_lines(n);
            let i = line.index(ls.len());
            let expect = if dup {
                let l = ls[i].clone();
                ls.insert(i, l);
                i as u64 + 2
            } else {
                ls.remove(i);
                i as u64 + 1
            };
            let r = verify_lines(&ls);
            if !dup && i + 1 == n as usize {
                // Dropping the last record is invisible to the chain itself (see anchors).
                prop_assert!(r.is_intact());
            } else {
                prop_assert_eq!(r.problem.map(|p| p.seq), Some(expect));
            }
        }
    }
}

#[test]
fn torn_first_line_after_rotation_keeps_file_order() {
    let dir = tmp("torn-first");
    let path = dir.join("gateway.jsonl");
    write_log(&path, 5, opts(FsyncPolicy::Never, 0));
    // Rotate by hand, then crash during the first write into the new file.
    std::fs::rename(&path, dir.join(format!("gateway.jsonl.{:012}", 1))).unwrap();
    std::fs::write(&path, b"{\"seq\":6,\"time\":\"20").unwrap();
    let sink = FileSink::open(&path, opts(FsyncPolicy::Never, 4096)).unwrap();
    for i in 0..60 {
        sink.append(record(i)).unwrap();
    }
    let mut files = sink.files().unwrap();
    drop(sink);
    assert!(files.len() >= 3, "{files:?}");
    files.reverse();
    let r = verify(&files).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!((r.records, r.recovered.clone()), (66, vec![6]));
}
