//! `mcp-pii-gateway scan`, run as a process.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-pii-gateway");

fn scan(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("scan")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Write from a thread so a large input can't deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn spans(line: &str) -> Vec<(usize, usize, String)> {
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "{line}");
    v["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_u64().unwrap() as usize,
                s["end"].as_u64().unwrap() as usize,
                s["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn default_mode_prints_kind_offsets_and_position_never_the_value() {
    let text = "hi ana@example.org\nzweite Zeile: é bo@example.net.\n";
    let o = scan(&[], text.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out,
        "EMAIL\t3..18\tline 1, column 4\nEMAIL\t36..50\tline 2, column 17\n"
    );
    assert_eq!(&text[36..50], "bo@example.net");
    assert!(!out.contains("example"));
}

#[test]
fn default_mode_no_match_prints_nothing() {
    let o = scan(&[], b"nothing to see");
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn jsonl_one_line_per_input_line_with_utf8_byte_offsets() {
    let texts = [
        "mail ana@example.org",
        "",
        "日本語のテキスト ana@example.org と bo@example.net",
        "emoji 😀😀 cy@example.org",
        "none here",
    ];
    let mut input = String::new();
    for (i, t) in texts.iter().enumerate() {
        input.push_str(&serde_json::json!({"id": i, "text": t}).to_string());
        // Mixed line endings; the last line has none.
        input.push_str(match i {
            1 => "\r\n",
            4 => "",
            _ => "\n",
        });
    }
    let o = scan(&["--jsonl"], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), texts.len());
    let found: Vec<Vec<&str>> = lines
        .iter()
        .zip(texts)
        .map(|(l, t)| {
            spans(l)
                .into_iter()
                .map(|(s, e, k)| {
                    assert_eq!(k, "EMAIL");
                    &t[s..e]
                })
                .collect()
        })
        .collect();
    assert_eq!(
        found,
        [
            vec!["ana@example.org"],
            vec![],
            vec!["ana@example.org", "bo@example.net"],
            vec!["cy@example.org"],
            vec![]
        ]
    );
    assert_eq!(lines[0], r#"{"spans":[{"start":5,"end":20,"kind":"EMAIL"}]}"#);
}

#[test]
fn jsonl_escapes_are_decoded_before_detection() {
    let o = scan(&["--jsonl"], br#"{"text":"x ana\u0040example.org"}"#);
    assert!(o.status.success());
    assert_eq!(spans(stdout(&o).trim()), [(2, 17, "EMAIL".to_owned())]);
}

#[test]
fn tokenize_whole_text_shares_one_scope() {
    let o = scan(
        &["--tokenize"],
        b"to ana@example.org\ncc bo@example.net, ana@example.org\nliteral [EMAIL_1]\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "to [EMAIL_1]\ncc [EMAIL_2], [EMAIL_1]\nliteral [EMAIL_3]\n"
    );
}

#[test]
fn tokenize_jsonl_prints_text_only_with_stable_placeholders() {
    let input = concat!(
        r#"{"text":"to ana@example.org","secret":"bo@example.net"}"#,
        "\n",
        r#"{"text":"again ana@example.org \"quoted\" [EMAIL_1]"}"#,
        "\n"
    );
    let o = scan(&["--jsonl", "--tokenize"], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"text": "to [EMAIL_1]"}),
            serde_json::json!({"text": "again [EMAIL_1] \"quoted\" [EMAIL_2]"})
        ]
    );
    assert!(
        !out.contains("bo@example.net"),
        "unscanned members are not copied"
    );
}

#[test]
fn bad_lines_exit_2_name_the_line_and_never_echo_it() {
    let good = r#"{"text":"ok ana@example.org"}"#;
    let cases: [(&str, &str); 7] = [
        (r#"{"text": "leak@example.org""#, "not valid JSON"),
        (r#"not json leak@example.org"#, "not valid JSON"),
        (r#"["leak@example.org"]"#, "found an array"),
        (r#""leak@example.org""#, "found a string"),
        (r#"{"body":"leak@example.org"}"#, "no \"text\" field"),
        (
            r#"{"text":["leak@example.org"]}"#,
            "\"text\" must be a string, found an array",
        ),
        ("   ", "empty line"),
    ];
    for (bad, why) in cases {
        let input = format!("{good}\n{good}\n{bad}\n{good}\n");
        let o = scan(&["--jsonl"], input.as_bytes());
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let err = stderr(&o);
        assert!(err.contains("line 3: "), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(!err.contains("leak"), "{err}");
        let out = stdout(&o);
        assert_eq!(
            out.lines().count(),
            2,
            "lines before the bad one are answered: {out}"
        );
        assert!(!out.contains("leak"));
    }
}

#[test]
fn invalid_utf8_is_bad_input() {
    let o = scan(&[], b"line one\nbad \xff here");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("line 2: stdin is not valid UTF-8"),
        "{}",
        stderr(&o)
    );
    let o = scan(&["--jsonl"], b"{\"text\":\"bad \xff\"}\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 1: not valid JSON"), "{}", stderr(&o));
}

#[test]
fn large_jsonl_input() {
    const LINES: usize = 50_000;
    let mut input = String::new();
    for i in 0..LINES {
        input.push_str(&format!(
            "{{\"text\":\"record {i} belongs to user{i}@example.org and some filler text {}\"}}\n",
            "x".repeat(i % 200)
        ));
    }
    let o = scan(&["--jsonl"], input.as_bytes());
    assert!(o.status.success());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), LINES);
    for (i, l) in lines.iter().enumerate().step_by(997) {
        let s = spans(l);
        let start = format!("record {i} belongs to ").len();
        assert_eq!(
            s,
            [(
                start,
                start + format!("user{i}@example.org").len(),
                "EMAIL".to_owned()
            )]
        );
    }
}

#[test]
fn jsonl_streams_answers_before_stdin_closes() {
    let mut child = Command::new(BIN)
        .args(["scan", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        for _ in 0..2 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            tx.send(line).unwrap();
        }
    });
    let mut answers = Vec::new();
    for t in ["first ana@example.org", "second"] {
        writeln!(stdin, "{}", serde_json::json!({"text": t})).unwrap();
        stdin.flush().unwrap();
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => answers.push(line),
            Err(_) => {
                child.kill().unwrap();
                panic!("no answer while stdin stayed open: output is not streamed");
            }
        }
    }
    drop(stdin);
    reader.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        answers,
        [
            "{\"spans\":[{\"start\":6,\"end\":21,\"kind\":\"EMAIL\"}]}\n",
            "{\"spans\":[]}\n"
        ]
    );
}

#[test]
fn closed_stdout_ends_quietly() {
    // Like `scan --jsonl < big | head -1`.
    let mut child = Command::new(BIN)
        .args(["scan", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..200_000 {
            if writeln!(stdin, "{{\"text\":\"line {i} user{i}@example.org\"}}").is_err() {
                break;
            }
        }
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader (and with it the pipe) is dropped here.
    assert!(first.starts_with("{\"spans\":[{"), "{first}");
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn custom_rules_file() {
    let dir = std::env::temp_dir().join(format!("mcp-pii-scan-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nkind = \"CUSTOMER_ID\"\npattern = '\\bCUST-[0-9]{6}\\b'\n\n[[rule]]\nkind = \"PROJECT\"\nterms = [\"Bluebird\"]\n",
    )
    .unwrap();
    let rules_arg = rules.to_str().unwrap();
    let input = "{\"text\":\"CUST-000123 on Bluebird, mail ana@example.org\"}\n";
    let o = scan(&["--jsonl", "--rules", rules_arg], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let kinds: Vec<String> = spans(stdout(&o).trim()).into_iter().map(|(_, _, k)| k).collect();
    assert_eq!(kinds, ["CUSTOMER_ID", "PROJECT", "EMAIL"]);
    let o = scan(&["--jsonl", "--tokenize", "--rules", rules_arg], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"text\":\"[CUSTOMER_ID_1] on [PROJECT_1], mail [EMAIL_1]\"}\n"
    );
    // A bad rule file: exit 2 before reading input.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nkind = \"lower\"\nterms = [\"x\"]\n").unwrap();
    let o = scan(&["--rules", bad.to_str().unwrap()], b"text");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid kind"), "{}", stderr(&o));
    let o = scan(&["--rules", dir.join("missing.toml").to_str().unwrap()], b"text");
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
