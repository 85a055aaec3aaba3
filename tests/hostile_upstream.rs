//! The shipped `serve` binary in front of a deliberately misbehaving upstream written with raw
//! sockets (so it can send what SDKs never would), with the client's side decoded by Python's
//! `json` module, as the official Python SDK's users would decode it.
//!
//! The rule under test: what a client decodes never holds a value the detector finds outside
//! placeholders, and what a server receives is the client's message with exactly the
//! placeholders restored.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_pii_gateway::detect::Detector;
use serde_json::{json, Value};

/// One canned answer: extra header lines and the body, with `{ID}` replaced by the request's
/// id as the client wrote it.
#[derive(Clone)]
struct Reply {
    headers: Vec<(String, String)>,
    content_type: String,
    body: Vec<u8>,
}

fn reply(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        headers: Vec::new(),
        content_type: content_type.into(),
        body: body.into(),
    }
}

/// A raw HTTP/1.1 upstream: answers each POST with the reply registered for its tool name
/// (`params.name`), records every request body it received.
struct Upstream {
    url: String,
    replies: Arc<Mutex<Vec<(String, Reply)>>>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let replies: Arc<Mutex<Vec<(String, Reply)>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let (r, s) = (replies.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || serve_conn(conn, &r, &s));
            }
        });
        Upstream { url, replies, seen }
    }

    fn on(&self, tool: &str, r: Reply) {
        self.replies.lock().unwrap().push((tool.into(), r));
    }

    fn last_seen(&self) -> Vec<u8> {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

fn serve_conn(conn: TcpStream, replies: &Mutex<Vec<(String, Reply)>>, seen: &Mutex<Vec<Vec<u8>>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if first {
                first = false;
                continue;
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        seen.lock().unwrap().push(body.clone());
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let tool = req["params"]["name"].as_str().unwrap_or("").to_owned();
        let id = req.get("id").map(|i| i.to_string()).unwrap_or_default();
        let r = replies
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _)| *t == tool)
            .map(|(_, r)| r.clone());
        let Some(r) = r else {
            // Notifications and unknown tools: 202 with no body.
            conn.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            continue;
        };
        let mut body = String::from_utf8_lossy(&r.body).replace("{ID}", &id).into_bytes();
        // `chunked:TYPE` sends the body with chunked transfer encoding (no length up front).
        let (ctype, framing) = match r.content_type.strip_prefix("chunked:") {
            Some(t) => {
                let mut chunked = Vec::new();
                if !body.is_empty() {
                    chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                    chunked.extend_from_slice(&body);
                    chunked.extend_from_slice(b"\r\n");
                }
                chunked.extend_from_slice(b"0\r\n\r\n");
                body = chunked;
                (t, "transfer-encoding: chunked".to_owned())
            }
            None => (r.content_type.as_str(), format!("content-length: {}", body.len())),
        };
        // A `:status` entry sets the status line; an empty type sends no content-type.
        let status = r
            .headers
            .iter()
            .find(|(k, _)| k == ":status")
            .map_or("200 OK", |(_, v)| v.as_str());
        let mut head = format!("HTTP/1.1 {status}\r\n{framing}\r\n");
        if !ctype.is_empty() {
            head.push_str(&format!("content-type: {ctype}\r\n"));
        }
        for (k, v) in r.headers.iter().filter(|(k, _)| k != ":status") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&body).unwrap();
    }
}

/// `serve` as shipped, on a free port, in front of `upstream`.
struct Gateway {
    child: Child,
    base: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Gateway {
    fn start(upstream: &Upstream, extra: &str) -> Gateway {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hostile-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("gateway.toml");
        std::fs::write(
            &cfg,
            format!(
                "listen = \"127.0.0.1:0\"\n{extra}\n[[servers]]\nname = \"crm\"\nurl = \"{}\"\n",
                upstream.url
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "serve exited before listening"
            );
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the gateway never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Gateway {
            child,
            base,
            _dir: TempDir(dir),
        }
    }

    /// POSTs `body` to the crm server; returns (status, response headers, body bytes).
    fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
        let addr = self.base.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!(
            "POST /servers/crm/mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut body = raw[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, head, body)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// What Python's `json` decodes from `body` (one JSON document, or the `data` of each SSE
/// event), re-encoded with `ensure_ascii=False` so every decoded character is literal.
fn python_decodes(body: &[u8], sse: bool) -> String {
    let script = r#"
import json, sys
raw = sys.stdin.buffer.read()
docs = []
if sys.argv[1] == "sse":
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        data = [l[5:].lstrip(" ") if l.startswith("data:") else None for l in block.split("\n")]
        data = [d for d in data if d is not None]
        if data:
            docs.append(json.loads("\n".join(data)))
else:
    docs.append(json.loads(raw))
out = "\n".join(json.dumps(d, ensure_ascii=False) for d in docs)
sys.stdout.buffer.write(out.encode("utf-8", "surrogatepass"))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, if sse { "sse" } else { "json" }])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for these tests");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Python could not decode {:?}: {}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The decoded text holds no email or phone number outside placeholders.
fn assert_no_pii(decoded: &str) {
    let found: Vec<String> = Detector::builtin()
        .find(decoded)
        .iter()
        .map(|s| decoded[s.start..s.end].to_owned())
        .collect();
    assert!(found.is_empty(), "PII reached the client: {found:?} in {decoded}");
}

fn call(tool: &str, id: u64) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
        .to_string()
        .into_bytes()
}

fn result_text(text_json: &str, extra: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{{ID}},"result":{{"content":[{{"type":"text","text":{text_json}}}]{extra}}}}}"#
    )
}

#[test]
fn bodies_serde_json_refused_are_read_as_clients_read_them() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    // Python's json.dumps defaults: ensure_ascii escapes and a NaN score.
    up.on(
        "ascii",
        reply(
            "application/json",
            result_text(r#""ana@b\u00fccher.example""#, r#","score":NaN"#),
        ),
    );
    // A leading byte order mark.
    up.on(
        "bom",
        reply(
            "application/json",
            [
                b"\xEF\xBB\xBF".as_slice(),
                result_text(r#""mail carla@example.org""#, "").as_bytes(),
            ]
            .concat(),
        ),
    );
    // A lone surrogate (JSON.stringify of a string cut inside an emoji) before an escaped address.
    up.on(
        "surrogate",
        reply(
            "application/json",
            result_text(r#""cut \ud83d then dario\u0040example.org""#, ""),
        ),
    );
    // Escapes inside an address must not corrupt it (jos\u00e9).
    up.on(
        "escaped",
        reply("application/json", result_text(r#""jos\u00e9@example.org""#, "")),
    );
    // Duplicate keys: the last one is what clients keep; the earlier one never reaches them.
    up.on("dup", reply("application/json", r#"{"jsonrpc":"2.0","id":{ID},"result":{"content":[{"type":"text","text":"eva@example.org","text":"nothing"}]}}"#));

    for (i, tool) in ["ascii", "bom", "surrogate", "escaped", "dup"].iter().enumerate() {
        let (status, _, body) = gw.post(&call(tool, i as u64 + 1), &[]);
        assert_eq!(status, 200, "{tool}: {}", String::from_utf8_lossy(&body));
        let decoded = python_decodes(&body, false);
        assert_no_pii(&decoded);
        assert!(!decoded.contains("\"error\""), "{tool}: {decoded}");
        match *tool {
            "ascii" => {
                assert!(decoded.contains("\"text\": \"[EMAIL_1]\""), "{decoded}");
                assert!(decoded.contains("\"score\": NaN"), "{decoded}");
            }
            "bom" => assert!(decoded.contains("mail [EMAIL_2]"), "{decoded}"),
            "surrogate" => assert!(decoded.contains("then [EMAIL_3]"), "{decoded}"),
            "escaped" => assert!(decoded.contains("\"text\": \"[EMAIL_4]\""), "{decoded}"),
            "dup" => assert!(decoded.contains("\"text\": \"nothing\""), "{decoded}"),
            _ => unreachable!(),
        }
    }
    // The escaped address was vaulted whole: its placeholder restores to exactly that address.
    up.on("send", reply("application/json", result_text(r#""sent""#, "")));
    let send = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"send","arguments":{"to":"[EMAIL_4]"}}}"#;
    let (status, _, _) = gw.post(send, &[]);
    assert_eq!(status, 200);
    let got: Value = serde_json::from_slice(&up.last_seen()).unwrap();
    assert_eq!(got["params"]["arguments"]["to"], "josé@example.org");
}

#[test]
fn json_the_gateway_declines_is_withheld_with_a_clear_error() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":{{ID}},"result":{{"content":[{{"type":"text","text":"x"}}],"nest":{}"fred\u0040example.org"{}}}}}"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    up.on("deep", reply("application/json", deep));
    up.on(
        "broken",
        reply(
            "application/json",
            r#"{"jsonrpc":"2.0","id":{ID},"result":{"t":"gil\u0040example.org"}"#,
        ),
    );
    up.on("text", reply("text/plain", "ask hana@example.org"));
    up.on("textesc", reply("text/plain", "ask hana\\u0040example.org"));
    for (tool, want) in [
        ("deep", "nested deeper than the gateway's limit"),
        ("broken", "not valid JSON"),
        ("textesc", "not valid JSON"),
    ] {
        let (status, _, body) = gw.post(&call(tool, 7), &[]);
        assert_eq!(status, 200, "{tool}");
        let decoded = python_decodes(&body, false);
        assert_no_pii(&decoded);
        let v: Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(v["id"], 7, "{tool}: {decoded}");
        assert_eq!(v["error"]["code"], -32002, "{tool}: {decoded}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want) && msg.contains("withheld"), "{tool}: {msg}");
    }
    // Plain text with nothing a decoder could unescape is tokenized as the text it is.
    let (_, _, body) = gw.post(&call("text", 8), &[]);
    assert_eq!(String::from_utf8(body).unwrap(), "ask [EMAIL_1]");
}

#[test]
fn numbers_pass_through_byte_for_byte_both_ways() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    up.on(
        "big",
        reply(
            "application/json",
            result_text(
                r#""to ivo@example.org""#,
                r#","n":12345678901234567890123,"f":1.10,"e":1E+400"#,
            ),
        ),
    );
    let (_, _, body) = gw.post(&call("big", 1), &[]);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(r#""n":12345678901234567890123,"f":1.10,"e":1E+400"#),
        "{text}"
    );
    assert!(text.contains("[EMAIL_1]"), "{text}");
    // Toward the server, with a placeholder restored in the same message.
    let req = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"big","arguments":{"to":"[EMAIL_1]","amount":12345678901234567890123,"rate":0.10}}}"#;
    gw.post(req, &[]);
    let seen = String::from_utf8(up.last_seen()).unwrap();
    assert!(
        seen.contains(r#""to":"ivo@example.org","amount":12345678901234567890123,"rate":0.10"#),
        "{seen}"
    );
}

#[test]
fn only_an_initialize_answer_establishes_a_session_scope() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    // The upstream hands out a session id on an ordinary call, with bob's address.
    let mut r = reply("application/json", result_text(r#""bob@example.org""#, ""));
    r.headers.push(("mcp-session-id".into(), "rogue-1".into()));
    up.on("who", r);
    up.on(
        "other",
        reply("application/json", result_text(r#""ana@example.org""#, "")),
    );
    up.on("send", reply("application/json", result_text(r#""ok""#, "")));
    let (_, _, body) = gw.post(&call("who", 1), &[]);
    assert!(String::from_utf8_lossy(&body).contains("[EMAIL_1]"));
    let (_, _, body) = gw.post(&call("other", 2), &[]);
    assert!(
        String::from_utf8_lossy(&body).contains("[EMAIL_2]"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The placeholder the client was shown for bob goes back to bob.
    let send = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"send","arguments":{"to":"[EMAIL_1]"}}}"#;
    gw.post(send, &[]);
    let got: Value = serde_json::from_slice(&up.last_seen()).unwrap();
    assert_eq!(got["params"]["arguments"]["to"], "bob@example.org");
}

#[test]
fn protocol_members_and_sse_fields_never_carry_pii() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    // A server-initiated request whose id and method hold addresses, a progress notification
    // whose token does, SSE id/event/retry fields that do, then the real response.
    let sse = concat!(
        "event: message\nid: kim@example.org\nretry: call 202-555-0143\n",
        "data: {\"jsonrpc\":\"2.0\",\"id\":\"lee@example.org\",\"method\":\"sampling/createMessage\",\"params\":{}}\n\n",
        "data: {\"jsonrpc\":\"2.0\",\"method\":\"notify mo@example.org\",\"params\":{}}\n\n",
        "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"ned@example.org\",\"progress\":1}}\n\n",
        "event: oli@example.org\n",
        "data: {\"jsonrpc\":\"2.0\",\"id\":{ID},\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n",
        "data: not json pia@example.org\n\n",
    );
    up.on("stream", reply("text/event-stream", sse));
    let (status, _, body) = gw.post(&call("stream", 5), &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body.clone()).unwrap();
    assert_no_pii(&text);
    let decoded = python_decodes(&body, true);
    assert_no_pii(&decoded);
    // The response itself arrives, untouched.
    assert!(
        decoded.contains(r#""id": 5, "result": {"content": [{"type": "text", "text": "done"}]}"#),
        "{decoded}"
    );
    // Neither the withheld request nor the notifications reached the client.
    assert!(
        !decoded.contains("sampling/createMessage") && !decoded.contains("progressToken"),
        "{decoded}"
    );
}

#[test]
fn a_withheld_response_says_the_request_ran() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "[vault]\nmax_entries_per_scope = 1\n");
    up.on(
        "two",
        reply(
            "application/json",
            result_text(r#""uma@example.org and vic@example.org""#, ""),
        ),
    );
    let (status, _, body) = gw.post(&call("two", 4), &[]);
    assert_eq!(status, 200);
    let decoded = python_decodes(&body, false);
    assert_no_pii(&decoded);
    let v: Value = serde_json::from_str(&decoded).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("maximum of 1 vault entries"), "{msg}");
    assert!(
        msg.contains("reached the server") && !msg.contains("nothing was forwarded"),
        "{msg}"
    );
}

#[test]
fn hostile_client_messages_reach_the_server_as_clients_mean_them() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    up.on(
        "who",
        reply("application/json", result_text(r#""wes@example.org""#, "")),
    );
    gw.post(&call("who", 1), &[]);
    // Duplicate keys: the server gets the member every decoder keeps, never the bytes as sent.
    let dup = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"who","arguments":{"to":"[EMAIL_1]","to":"nobody","n":1.50}}}"#;
    gw.post(dup, &[]);
    let seen = String::from_utf8(up.last_seen()).unwrap();
    assert!(seen.contains(r#""arguments":{"to":"nobody","n":1.50}"#), "{seen}");
    // Too deep: refused with a message that says so, nothing forwarded.
    let n = up.seen.lock().unwrap().len();
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"who","arguments":{{"x":{}1{}}}}}}}"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    let (status, _, body) = gw.post(deep.as_bytes(), &[]);
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nested deeper"),
        "{v}"
    );
    assert_eq!(up.seen.lock().unwrap().len(), n);
}

#[test]
fn an_empty_body_without_a_length_passes() {
    // Express answers notifications with 202 and a chunked, empty body.
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    up.on("empty", reply("chunked:application/json", ""));
    let (status, _, body) = gw.post(&call("empty", 1), &[]);
    assert_eq!(status, 200);
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
}

#[test]
fn phone_numbers_sent_as_json_numbers_are_placeholders_and_come_back_as_numbers() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    up.on(
        "contact",
        reply(
            "application/json",
            r#"{"jsonrpc":"2.0","id":{ID},"result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"MobilePhone":4915123456789,"count":4915123456789}}}"#,
        ),
    );
    up.on("sms", reply("application/json", result_text(r#""sent""#, "")));
    let (_, _, body) = gw.post(&call("contact", 1), &[]);
    let decoded = python_decodes(&body, false);
    assert!(decoded.contains(r#""MobilePhone": "[PHONE_1]""#), "{decoded}");
    assert!(decoded.contains(r#""count": 4915123456789"#), "{decoded}");
    let send = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sms","arguments":{"to":"[PHONE_1]"}}}"#;
    gw.post(send, &[]);
    let seen = String::from_utf8(up.last_seen()).unwrap();
    assert!(seen.contains(r#""arguments":{"to":4915123456789}"#), "{seen}");
}

/// Found by the `response_rewrite` fuzz target (fuzz/regressions/response_rewrite/
/// f3-batch-drop-numbers): a batch losing a withheld element kept its other numbers right.
#[test]
fn a_batch_losing_a_withheld_element_keeps_its_other_numbers() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    up.on(
        "batch",
        reply(
            "application/json",
            r#"[{"jsonrpc":"2.0","method":"ana.lima@example.org","params":{"n":NaN}},{"jsonrpc":"2.0","id":{ID},"result":{"total":0,"big":12345678901234567890123}}]"#,
        ),
    );
    let (_, _, body) = gw.post(&call("batch", 7), &[]);
    let decoded = python_decodes(&body, false);
    assert_no_pii(&decoded);
    let v: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{decoded}");
    assert_eq!(v[0]["result"]["total"], 0, "{decoded}");
    assert_eq!(
        v[0]["result"]["big"].as_f64(),
        Some(1.2345678901234568e22),
        "{decoded}"
    );
}

#[test]
fn max_response_bytes_bounds_what_a_server_may_answer() {
    let up = Upstream::start();
    let gw = Gateway::start(&up, "[limits]\nmax_response_bytes = 65536\n");
    let text = |n: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{{ID}},"result":{{"content":[{{"type":"text","text":"ann@example.org {}"}}]}}}}"#,
            "x".repeat(n)
        )
    };
    up.on("small", reply("application/json", text(60_000)));
    up.on("big", reply("application/json", text(70_000)));
    let (status, _, body) = gw.post(&call("small", 1), &[]);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("[EMAIL_1] "));
    let (_, _, body) = gw.post(&call("big", 2), &[]);
    let decoded = String::from_utf8_lossy(&body).into_owned();
    assert_no_pii(&decoded);
    let v: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(v["id"], 2, "{decoded}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("max_response_bytes"), "{msg}");
}

#[test]
fn an_error_status_is_kept_when_its_body_is_withheld() {
    // rmcp answers a session it no longer knows with 404 and a plain body, no content type.
    // The body cannot be released as it is, but the status is the protocol's signal: a
    // client re-initializes on 404, so it must stay 404.
    let up = Upstream::start();
    let gw = Gateway::start(&up, "");
    let mut gone = reply("", "Not Found: Session not found");
    gone.headers.push((":status".into(), "404 Not Found".into()));
    up.on("gone", gone);
    let mut broken = reply("application/json", "Internal error for ivo@example.org {");
    broken
        .headers
        .push((":status".into(), "500 Internal Server Error".into()));
    up.on("broken", broken);
    for (tool, status, code, want) in [
        ("gone", 404, -32003, "session not found"),
        ("broken", 500, -32002, "HTTP 500"),
    ] {
        let (got, _, body) = gw.post(&call(tool, 9), &[]);
        assert_eq!(got, status, "{tool}");
        let decoded = python_decodes(&body, false);
        assert_no_pii(&decoded);
        let v: Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(v["id"], 9, "{tool}: {decoded}");
        assert_eq!(v["error"]["code"], code, "{tool}: {decoded}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{tool}: {msg}");
    }
}
