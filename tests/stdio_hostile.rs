//! A misbehaving stdio upstream, driven through the real binary (`mcp-pii-gateway stdio`, so
//! the stdio front, the PII stack and the stdio upstream all take part): a Python child that
//! floods its stderr with invalid UTF-8, progress bars and 50 MB without a newline; writes
//! JSON that is not JSON-RPC before its real answer; answers with lines over the size limit.
//! Also the stdio front's own input: oversized and non-UTF-8 request lines.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The hostile server. Tools: `noisy_stderr`, `junk_first`, `big_response` (id first),
/// `big_late_id` (id after 2 MB), `big_request` (an oversized sampling request, then says how
/// it was answered), `hang` (a notification, then never answers), `echo`. Every
/// normal answer says the child's pid and whether its stderr writes all succeeded.
const CHILD: &str = r#"
import json, os, sys
out, err = sys.stdout.buffer, sys.stderr.buffer
stderr_ok = True

def send(b):
    out.write(b + b"\n")
    out.flush()

def text(s):
    return {"content": [{"type": "text", "text": s}]}

def reply(id, result):
    send(json.dumps({"jsonrpc": "2.0", "id": id, "result": result}).encode())

def write_err(b):
    global stderr_ok
    try:
        err.write(b)
        err.flush()
    except BrokenPipeError:
        stderr_ok = False

def status():
    return text("pid=%d stderr_ok=%s" % (os.getpid(), stderr_ok))

PAD = "y" * (2 << 20)
while True:
    raw = sys.stdin.buffer.readline()
    if not raw:
        break
    msg = json.loads(raw)
    m, id = msg.get("method"), msg.get("id")
    if id is None or m is None:
        continue
    if m == "initialize":
        reply(id, {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                   "serverInfo": {"name": "hostile", "version": "1"}})
        continue
    if m != "tools/call":
        reply(id, {})
        continue
    name = msg["params"]["name"]
    if name == "noisy_stderr":
        write_err(b"bad \xff\xfe utf-8 from ana.lima@example.org\n")
        write_err(b"10%\r50%\r100%\r\n")
        chunk = b"x" * (1 << 20)
        for _ in range(50):
            write_err(chunk)
        write_err(b"\nafter the flood, call +1 202-555-0142\n")
        reply(id, status())
    elif name == "junk_first":
        for line in [b'{"not":"jsonrpc","who":"ana.lima@example.org"}', b"[1,2,3]", b"42", b'"x"',
                     b"null", b"[]", b"server ready", b'{"jsonrpc":"2.0"}',
                     b'{"jsonrpc":"2.0","id":%d,"result":{},"error":{"code":1,"message":"m"}}' % id]:
            send(line)
        reply(id, status())
    elif name == "big_response":
        send(json.dumps({"jsonrpc": "2.0", "id": id, "result": text(PAD)}).encode())
    elif name == "big_late_id":
        send(('{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"%s"}]},"id":%s}'
              % (PAD, json.dumps(id))).encode())
    elif name == "big_request":
        # A server-initiated request over the limit: the gateway answers it with an error.
        send(json.dumps({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage",
                         "params": {"messages": [], "pad": PAD}}).encode())
        while True:
            answer = json.loads(sys.stdin.buffer.readline())
            if answer.get("id") == "s1" and "method" not in answer:
                break
        reply(id, text("sampling answer code=%s" % answer.get("error", {}).get("code")))
    elif name == "bignum":
        # Numbers JSON libraries round: the line it got, and its own, byte for byte.
        send(b'{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":%s}],'
             b'"structuredContent":{"n":12345678901234567890123,"f":1.10,"e":1E+300}}}'
             % (json.dumps(id).encode(), json.dumps(raw.decode()).encode()))
    elif name == "hang":
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                         "params": {"level": "info", "data": "hanging"}}).encode())
    else:
        reply(id, status())
"#;

struct Gateway {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    log: Arc<Mutex<Vec<u8>>>,
    dir: PathBuf,
}

impl Gateway {
    /// `mcp-pii-gateway stdio` in front of the hostile child, with 64 KiB size limits and a
    /// 60 s upstream timeout, logging at debug level.
    fn start(tag: &str) -> Gateway {
        let dir = std::env::temp_dir().join(format!("stdio-hostile-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("child.py");
        std::fs::write(&script, CHILD).unwrap();
        let config = dir.join("gateway.toml");
        let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
        std::fs::write(
            &config,
            format!(
                "[limits]\nmax_body_bytes = 65536\nmax_response_bytes = 65536\nmax_sse_event_bytes = 65536\nupstream_timeout = \"60s\"\n\
                 [[servers]]\nname = \"hostile\"\ncommand = \"python3\"\nargs = [{}]\n",
                toml_str(&script.display().to_string())
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
            .args(["stdio", "--server", "hostile", "--config"])
            .arg(&config)
            .env("RUST_LOG", "mcp_pii_gateway=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).split(b'\n') {
                let Ok(l) = l else { return };
                let mut v = serde_json::from_slice(&l).unwrap_or_else(|_| json!({"unparsable": true}));
                // The line as written, for checks on the exact bytes.
                if let Some(o) = v.as_object_mut() {
                    o.insert("__raw".into(), String::from_utf8_lossy(&l).into());
                }
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_w = log.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut b) {
                if n == 0 {
                    return;
                }
                log_w.lock().unwrap().extend_from_slice(&b[..n]);
            }
        });
        let mut gw = Gateway {
            child,
            stdin,
            lines,
            log,
            dir,
        };
        gw.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}));
        let init = gw.answer(&json!(0), Duration::from_secs(20));
        assert!(init.get("result").is_some(), "{init}");
        gw.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        gw
    }

    fn send(&mut self, v: &Value) {
        let mut b = serde_json::to_vec(v).unwrap();
        b.push(b'\n');
        self.send_raw(&b);
    }

    fn send_raw(&mut self, b: &[u8]) {
        self.stdin.write_all(b).unwrap();
        self.stdin.flush().unwrap();
    }

    fn call(&mut self, id: &str, tool: &str) {
        self.send(
            &json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{}}}),
        );
    }

    /// The next message matching `want`, skipping others; panics after `within`.
    fn next(&mut self, within: Duration, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return v,
                Ok(_) => {}
                Err(e) => panic!("no {what} within {within:?} ({e}); gateway log:\n{}", self.log()),
            }
        }
    }

    /// The response (or error) with this id.
    fn answer(&mut self, id: &Value, within: Duration) -> Value {
        self.next(within, &format!("answer to {id}"), |v| {
            &v["id"] == id && v.get("method").is_none()
        })
    }

    fn text_of(v: &Value) -> String {
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn log(&self) -> String {
        plain(&self.log.lock().unwrap())
    }

    /// Peak resident memory of the gateway process, in KiB (Linux).
    fn peak_rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        l.split_whitespace().nth(1)?.parse().ok()
    }

    /// Closes stdin; the gateway ends the session, reaps the child and exits. Returns its log.
    fn finish(self) -> String {
        let Gateway {
            mut child,
            stdin,
            log,
            dir,
            ..
        } = self;
        drop(stdin);
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "gateway exited with {status}");
                break;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("gateway did not exit after its input ended");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&dir);
        // The log reader ends with the process.
        std::thread::sleep(Duration::from_millis(100));
        let text = plain(&log.lock().unwrap());
        text
    }
}

/// The log as text, without terminal colour codes.
fn plain(log: &[u8]) -> String {
    let text = String::from_utf8_lossy(log);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then a final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn pid_of(text: &str) -> String {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
        .to_string()
}

#[test]
fn stderr_floods_are_drained_with_bounded_memory_and_redacted() {
    let mut gw = Gateway::start("stderr");
    let peak_before = gw.peak_rss_kib();
    gw.call("n1", "noisy_stderr");
    let first = Gateway::text_of(&gw.answer(&json!("n1"), Duration::from_secs(60)));
    // The child's stderr writes all succeeded (no EPIPE, no SIGPIPE) ...
    assert!(first.contains("stderr_ok=True"), "{first}");
    // ... and keep succeeding after the invalid UTF-8 and the 50 MB line: the pipe is still read.
    gw.call("n2", "noisy_stderr");
    let second = Gateway::text_of(&gw.answer(&json!("n2"), Duration::from_secs(60)));
    assert!(second.contains("stderr_ok=True"), "{second}");
    // The same process answered both: it was never killed or restarted.
    assert_eq!(pid_of(&first), pid_of(&second));
    // 100 MB went through the gateway's stderr pipe; its peak memory barely moved.
    if let (Some(before), Some(after)) = (peak_before, gw.peak_rss_kib()) {
        assert!(
            after.saturating_sub(before) < 24 << 10,
            "gateway peak RSS grew from {before} KiB to {after} KiB"
        );
    }
    let log = gw.finish();
    // Lines split at \r and \n, decoded lossily, truncated with a note, PII redacted.
    for needle in [
        "utf-8 from [EMAIL]",
        "50%",
        "100%",
        "skipped_bytes=",
        "after the flood, call [PHONE]",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}");
    }
    assert!(!log.contains("ana.lima"), "raw email in the gateway log");
    assert!(!log.contains("555-0142"), "raw phone number in the gateway log");
    // Truncated: no log line holds the whole 50 MB (nor more than the 8 KiB shown).
    assert!(log.lines().all(|l| l.len() < 16 << 10), "an overlong log line");
}

#[test]
fn json_that_is_not_jsonrpc_is_dropped_and_the_real_answer_relayed() {
    let mut gw = Gateway::start("junk");
    gw.call("j1", "junk_first");
    let a = gw.answer(&json!("j1"), Duration::from_secs(20));
    let text = Gateway::text_of(&a);
    assert!(
        text.contains("pid="),
        "the client got {a} instead of the tool's result"
    );
    // Nothing of the junk reached the client, before or after.
    gw.call("e1", "echo");
    let e = gw.answer(&json!("e1"), Duration::from_secs(20));
    assert_eq!(pid_of(&Gateway::text_of(&e)), pid_of(&text));
    let log = gw.finish();
    assert!(
        log.matches("not a JSON-RPC message").count() >= 9,
        "each junk line is reported"
    );
    for reason in [
        "not an object",
        "no \"jsonrpc\"",
        "an empty batch",
        "not JSON",
        "exactly one of",
    ] {
        assert!(log.contains(reason), "log lacks the reason {reason:?}");
    }
    assert!(
        !log.contains("ana.lima") && !log.contains("server ready"),
        "line content in the log"
    );
}

#[test]
fn an_oversized_answer_fails_its_request_at_once() {
    let mut gw = Gateway::start("big");
    let t = Instant::now();
    gw.call("b1", "big_response");
    let a = gw.answer(&json!("b1"), Duration::from_secs(20));
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(a["error"]["code"], -32002, "{a}");
    let msg = a["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("max_response_bytes") && msg.contains("withheld"),
        "{msg}"
    );
    // An oversized request from the child gets an error at once, not silence.
    gw.call("r1", "big_request");
    let r = gw.answer(&json!("r1"), Duration::from_secs(20));
    assert_eq!(Gateway::text_of(&r), "sampling answer code=-32600", "{r}");
    // The child is fine and still the same process.
    gw.call("e1", "echo");
    let e = gw.answer(&json!("e1"), Duration::from_secs(20));
    assert!(Gateway::text_of(&e).contains("pid="), "{e}");
    gw.finish();
}

#[test]
fn an_oversized_answer_without_a_readable_id_fails_every_waiting_request() {
    let mut gw = Gateway::start("late-id");
    gw.call("h1", "hang");
    // The child has the request (its notification came back): it is in flight.
    gw.next(Duration::from_secs(20), "the hang notification", |v| {
        v["method"] == "notifications/message"
    });
    let t = Instant::now();
    gw.call("b1", "big_late_id");
    let mut waiting = vec![json!("b1"), json!("h1")];
    while !waiting.is_empty() {
        let a = gw.next(Duration::from_secs(20), "the errors", |v| {
            v.get("method").is_none() && waiting.contains(&v["id"])
        });
        waiting.retain(|id| id != &a["id"]);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{a} took {:?}",
            t.elapsed()
        );
        assert_eq!(a["error"]["code"], -32002, "{a}");
        assert!(
            a["error"]["message"].as_str().unwrap().contains("size limit"),
            "{a}"
        );
    }
    gw.call("e1", "echo");
    let e = gw.answer(&json!("e1"), Duration::from_secs(20));
    assert!(Gateway::text_of(&e).contains("pid="), "{e}");
    gw.finish();
}

#[test]
fn the_stdio_front_answers_oversized_and_non_utf8_lines_with_their_ids() {
    let mut gw = Gateway::start("front");
    // 1 MB line, over the 64 KiB limit: answered with its id, not buffered, not forwarded.
    let big = json!({"jsonrpc":"2.0","id":"big-1","method":"tools/call",
        "params":{"name":"echo","arguments":{"pad":"z".repeat(1 << 20)}}});
    gw.send(&big);
    let a = gw.answer(&json!("big-1"), Duration::from_secs(20));
    assert_eq!(a["error"]["code"], -32600, "{a}");
    assert!(
        a["error"]["message"].as_str().unwrap().contains("max_body_bytes"),
        "{a}"
    );
    // Invalid UTF-8 inside a string: a parse error with the id, and the relay goes on.
    gw.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"s\":\"\xff\xfe\"}}}\n",
    );
    let a = gw.answer(&json!(7), Duration::from_secs(20));
    assert_eq!(a["error"]["code"], -32700, "{a}");
    assert!(a["error"]["message"].as_str().unwrap().contains("UTF-8"), "{a}");
    // Not JSON and no id: a parse error with id null.
    gw.send_raw(b"\xff\xff\xff\n");
    let a = gw.answer(&Value::Null, Duration::from_secs(20));
    assert_eq!(a["error"]["code"], -32700, "{a}");
    gw.call("e1", "echo");
    let e = gw.answer(&json!("e1"), Duration::from_secs(20));
    assert!(Gateway::text_of(&e).contains("pid="), "{e}");
    gw.finish();
}

#[test]
fn numbers_pass_byte_for_byte_through_the_stdio_front_and_upstream() {
    let mut gw = Gateway::start("bignum");
    gw.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":\"b1\",\"method\":\"tools/call\",\"params\":{\"name\":\"bignum\",\
          \"arguments\":{\"n\":12345678901234567890123,\"f\":1.10}}}\n",
    );
    let a = gw.answer(&json!("b1"), Duration::from_secs(20));
    // What the child read: the client's numbers as the client wrote them.
    let got = Gateway::text_of(&a);
    assert!(
        got.contains(r#""arguments":{"n":12345678901234567890123,"f":1.10}"#),
        "{got}"
    );
    // What the client read: the child's numbers as the child wrote them.
    let raw = a["__raw"].as_str().unwrap();
    assert!(
        raw.contains(r#""structuredContent":{"n":12345678901234567890123,"f":1.10,"e":1E+300}"#),
        "{raw}"
    );
    gw.finish();
}
