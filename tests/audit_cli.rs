//! `mcp-pii-gateway audit verify|replay|search`, run as a binary: exit codes and output.
#![allow(clippy::unwrap_used)]

mod audit_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use audit_support::{run, Run, KEY_HEX, STRICT};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-pii-gateway");

fn the_run(name: &str) -> Run {
    let dir = std::env::temp_dir().join(format!("audit-cli-{name}-{}", std::process::id()));
    run(&dir, 40, 8 * 1024)
}

fn audit(args: &[&str], files: &[PathBuf]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("audit")
        .args(args)
        .args(files)
        .env("MCP_PII_AUDIT_KEY", KEY_HEX);
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

#[test]
fn verify_exit_codes() {
    let r = the_run("verify");
    let o = audit(&["verify"], &r.files);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).starts_with("intact:"), "{}", text(&o.stdout));

    // Edit record 7 of a copy.
    let bad = r.dir.join("edited.jsonl");
    let all: String = r
        .files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut lines: Vec<String> = all.lines().map(str::to_owned).collect();
    lines[6] = lines[6].replace("\"tools/call\"", "\"tools/list\"");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = audit(&["verify"], std::slice::from_ref(&bad));
    assert_eq!(code(&o), 1);
    let out = text(&o.stdout);
    assert!(out.contains("first bad record at seq 7"), "{out}");

    // Torn tail, JSON output.
    std::fs::write(&bad, &all.as_bytes()[..all.len() - 10]).unwrap();
    let o = audit(&["verify", "--json"], std::slice::from_ref(&bad));
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problem"]["kind"], "torn_tail");
    assert_eq!(v["problem"]["seq"], r.records);

    // Usage and I/O errors exit 2, and so does a file that is not an audit log at all.
    let other = r.dir.join("notes.jsonl");
    std::fs::write(&other, "{\"seq\": 1, \"note\": \"hello\"}\nplain text\n").unwrap();
    for cmd in [&["verify"][..], &["replay"], &["search", "--value", "x"]] {
        let o = audit(cmd, std::slice::from_ref(&other));
        assert_eq!(code(&o), 2, "{cmd:?}");
        assert!(
            text(&o.stderr).contains("not an audit log"),
            "{}",
            text(&o.stderr)
        );
    }
    assert_eq!(code(&audit(&["verify"], &[])), 2);
    assert_eq!(code(&audit(&["verify"], &[r.dir.join("missing.jsonl")])), 2);
}

#[test]
fn replay_exit_codes_and_json() {
    let r = the_run("replay");
    let o = audit(&["replay"], &r.files);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!("{} reproduced, 0 differ", r.decisions.len())));

    let strict = r.dir.join("strict.toml");
    std::fs::write(&strict, STRICT).unwrap();
    let strict_arg = strict.to_str().unwrap();
    let o = audit(&["replay", "--policy", strict_arg], &r.files);
    assert_eq!(code(&o), 1);
    let out = text(&o.stdout);
    assert!(
        out.contains("differ") && out.contains("seq ") && out.contains("->"),
        "{out}"
    );

    let o = audit(&["replay", "--policy", strict_arg, "--json"], &r.files);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let diffs = v["differences"].as_array().unwrap();
    assert!(!diffs.is_empty());
    for d in diffs {
        for key in [
            "seq",
            "kinds",
            "origins",
            "server",
            "old_rule",
            "new_rule",
            "old_decision",
            "new_decision",
        ] {
            assert!(d.get(key).is_some(), "difference lacks {key}: {d}");
        }
    }

    // The same policy given as a gateway.toml with a [policy] table: nothing differs.
    let gw = r.dir.join("gateway.toml");
    let table = audit_support::POLICY.replace("[[flows]]", "[[policy.flows]]");
    std::fs::write(&gw, format!("[policy]\n{table}")).unwrap();
    assert_eq!(
        code(&audit(&["replay", "--policy", gw.to_str().unwrap()], &r.files)),
        0
    );

    // A bad policy file is a configuration error: exit 2, every problem listed.
    let bad = r.dir.join("bad.toml");
    std::fs::write(&bad, "cross_server = \"sometimes\"\n[[flows]]\nid = \"x\"\n").unwrap();
    let o = audit(&["replay", "--policy", bad.to_str().unwrap()], &r.files);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("policy.cross_server") && err.contains("flows[0].from"),
        "{err}"
    );
}

fn search_cmd(files: &[PathBuf], extra: &[&str], key: Option<&str>, stdin: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("audit").arg("search").args(files).args(extra);
    match key {
        Some(k) => c.env("MCP_PII_AUDIT_KEY", k),
        None => c.env_remove("MCP_PII_AUDIT_KEY"),
    };
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn hit_seqs(out: &[u8]) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_slice(out).unwrap();
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn search_lists_exactly_one_values_records() {
    let r = the_run("search");
    let (value, want) = r
        .involving
        .iter()
        .max_by_key(|(_, s)| s.len())
        .map(|(v, s)| (v.clone(), s.iter().copied().collect::<Vec<u64>>()))
        .unwrap();
    let o = search_cmd(&r.files, &["--value", &value, "--json"], Some(KEY_HEX), None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(hit_seqs(&o.stdout), want);
    let out = text(&o.stdout);
    assert!(!out.contains(&value), "search output must not echo the value");
    for p in &r.people {
        for other in [&p.email, &p.phone] {
            assert!(!out.contains(other.as_str()));
        }
    }

    // From stdin, human output.
    let o = search_cmd(
        &r.files,
        &["--value-stdin"],
        Some(KEY_HEX),
        Some(&format!("{value}\n")),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with(&format!("{} record(s) involve the value", want.len())),
        "{out}"
    );
    assert!(!out.contains(&value));

    // Without the key: exit 2. With a wrong key: nothing, and a warning.
    let o = search_cmd(&r.files, &["--value", &value], None, None);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("MCP_PII_AUDIT_KEY"));
    let o = search_cmd(
        &r.files,
        &["--value", &value],
        Some("some other key, long enough"),
        None,
    );
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("different fingerprint key"));
    // Neither --value nor --value-stdin: usage error.
    assert_eq!(code(&search_cmd(&r.files, &[], Some(KEY_HEX), None)), 2);
}

#[test]
fn files_may_be_given_in_any_order() {
    let r = the_run("order");
    assert!(r.files.len() >= 2);
    let mut rev = r.files.clone();
    rev.reverse();
    assert_eq!(code(&audit(&["verify"], &rev)), 0);
    assert_eq!(code(&audit(&["replay"], &rev)), 0);
    let _ = Path::new(&r.dir);
}

#[test]
fn verify_anchor_catches_a_cut_tail() {
    // One file (no rotation), so the active file holds many records.
    let r = run(
        &std::env::temp_dir().join(format!("audit-cli-anchor-{}", std::process::id())),
        40,
        0,
    );
    let o = audit(&["verify"], &r.files);
    let out = text(&o.stdout);
    let head = out
        .split("head ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(head.starts_with(&format!("{}:", r.records)), "{out}");
    assert_eq!(code(&audit(&["verify", "--anchor", &head], &r.files)), 0);
    // Drop the last two records of the active file (the newest).
    let active = r.files.last().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(active)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines.len() > 2);
    std::fs::write(active, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    assert_eq!(
        code(&audit(&["verify"], &r.files)),
        0,
        "the chain alone cannot see it"
    );
    let o = audit(&["verify", "--anchor", &head], &r.files);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stdout).contains(&format!("seq {}", r.records - 1)),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(code(&audit(&["verify", "--anchor", "nonsense"], &r.files)), 2);
}

/// Two replicas' chains side by side (`gateway.jsonl` and `gateway.b.jsonl`, each rotated):
/// verify checks each on its own, replay and search take them together.
#[test]
fn several_replica_chains_verify_replay_and_search_together() {
    let a = the_run("chains-a");
    let b = the_run("chains-b-src");
    let dir = a.dir.join("audit");
    let mut files = a.files.clone();
    for f in &b.files {
        let name = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("gateway.jsonl", "gateway.b.jsonl");
        let to = dir.join(name);
        std::fs::copy(f, &to).unwrap();
        files.push(to);
    }
    assert!(files.len() > 3, "both chains rotated: {files:?}");
    let o = audit(&["verify"], &files);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", text(&o.stderr));
    assert_eq!(
        out.lines().filter(|l| l.contains(": intact:")).count(),
        2,
        "{out}"
    );
    assert!(out.contains("gateway.b.jsonl"), "{out}");

    let o = audit(&["replay", "--json"], &files);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["decisions"].as_u64().unwrap(),
        (a.decisions.len() + b.decisions.len()) as u64
    );

    let (value, want) = a
        .involving
        .iter()
        .next()
        .map(|(v, s)| (v.clone(), s.len()))
        .unwrap();
    let in_b = b.involving.get(&value).map_or(0, |s| s.len());
    let o = search_cmd(&files, &["--value", &value, "--json"], Some(KEY_HEX), None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), want + in_b);
    let times: Vec<&str> = hits.iter().map(|h| h["time"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "merged by time: {times:?}"
    );

    // One chain edited: that chain fails, the other still verifies; exit 1.
    let victim = files
        .iter()
        .find(|f| f.to_string_lossy().contains("gateway.b.jsonl"))
        .unwrap();
    let edited = std::fs::read_to_string(victim)
        .unwrap()
        .replacen("\"tools/call\"", "\"tools/list\"", 1);
    std::fs::write(victim, edited).unwrap();
    let o = audit(&["verify"], &files);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("gateway.b.jsonl") && l.contains("NOT intact")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| !l.contains("gateway.b.jsonl") && l.contains(": intact:")),
        "{out}"
    );
}
