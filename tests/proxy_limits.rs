//! Hostile clients and upstreams against the real HTTP front: the resource caps of `[limits]`
//! (scopes per client, sessions, connections, request-body and upstream-body deadlines), the
//! Host/Origin checks on duplicates and absolute-form targets, `/metrics` behind the Host check,
//! and the allow-list of upstream response headers. Raw TCP on both sides where the test must
//! send what SDKs never would.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use mcp_pii_gateway::config::Config;
use mcp_pii_gateway::proxy::Front;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;

/// A hyper upstream that answers every POST with `{"result":{"ok":true}}` and its id; each
/// `initialize` gets a new session id `up-N`; DELETE answers 200. Counts the requests it saw.
async fn upstream(seen: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sessions = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let (seen, sessions) = (seen.clone(), sessions.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (seen, sessions) = (seen.clone(), sessions.clone());
                    async move {
                        seen.fetch_add(1, Ordering::SeqCst);
                        let method = req.method().clone();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let mut res = Response::new(Full::new(Bytes::new()));
                        if method == Method::DELETE {
                            return Ok::<_, Infallible>(res);
                        }
                        let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"ok": true}});
                        *res.body_mut() = Full::new(Bytes::from(reply.to_string()));
                        res.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        if msg["method"] == "initialize" {
                            let n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
                            res.headers_mut()
                                .insert("mcp-session-id", format!("up-{n}").parse().unwrap());
                        }
                        Ok(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

/// One scripted write of a raw upstream: wait, then send these bytes.
type Step = (Duration, Vec<u8>);

/// A raw-TCP upstream: reads one request (head and `Content-Length` body) per connection,
/// then plays `script` and closes.
async fn raw_upstream(script: Vec<Step>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let script = script.clone();
            tokio::spawn(async move {
                if read_request(&mut s).await.is_none() {
                    return;
                }
                for (wait, bytes) in script {
                    tokio::time::sleep(wait).await;
                    if s.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

/// Reads one HTTP/1 request (head plus `Content-Length` bytes); `None` on EOF.
async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Gw {
    addr: SocketAddr,
    url: String,
    seen: Arc<AtomicUsize>,
}

/// A gateway (full PII stack) in front of `up`, with `extra` configuration on top.
async fn gateway_for(up: &str, extra: &str) -> Gw {
    let toml = format!("{extra}\n[[servers]]\nname = \"crm\"\nurl = \"{up}\"\n");
    let config = Config::from_toml_str(&toml, |_| None).unwrap();
    let front = Front::from_config(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(front.serve(listener, std::future::pending()));
    Gw {
        addr,
        url: format!("http://{addr}/servers/crm/mcp"),
        seen: Arc::default(),
    }
}

/// A gateway in front of the hyper [`upstream`].
async fn gateway(extra: &str) -> Gw {
    let seen = Arc::new(AtomicUsize::new(0));
    let up = upstream(seen.clone()).await;
    let mut gw = gateway_for(&up, extra).await;
    gw.seen = seen;
    gw
}

async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::new(Full::new(Bytes::from(body.to_string())));
    *req.method_mut() = method;
    *req.uri_mut() = url.parse().unwrap();
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    req.headers_mut()
        .insert("accept", "application/json, text/event-stream".parse().unwrap());
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let res = client.request(req).await.unwrap();
    let (p, b) = res.into_parts();
    let body = b.collect().await.unwrap().to_bytes();
    (p.status, p.headers, String::from_utf8_lossy(&body).to_string())
}

/// Sends raw bytes and reads until the server closes the connection (or 10 s pass).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// A raw POST of `body` with the given request target and extra header lines.
fn raw_post(target: &str, header_lines: &[&str], body: &str) -> Vec<u8> {
    let mut r = format!("POST {target} HTTP/1.1\r\n");
    for h in header_lines {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str(&format!(
        "content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    r.into_bytes()
}

fn status_of(raw_response: &str) -> u16 {
    raw_response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw_response:?}"))
}

fn json_body(raw_response: &str) -> Value {
    let body = raw_response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {raw_response:?}"))
}

#[tokio::test]
async fn a_client_past_max_scopes_per_client_gets_429_and_no_scope() {
    let gw = gateway("[scope]\nheader = \"x-agent-run\"\n[limits]\nmax_scopes_per_client = 10").await;
    for i in 0..10 {
        let run = format!("run-{i}");
        let (status, _, body) = send(Method::POST, &gw.url, &[("x-agent-run", &run)], LIST).await;
        assert_eq!(status, StatusCode::OK, "scope {i}: {body}");
    }
    let before = gw.seen.load(Ordering::SeqCst);
    let (status, h, body) = send(
        Method::POST,
        &gw.url,
        &[("x-agent-run", "run-eleven-secret")],
        LIST,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("max_scopes_per_client"), "{msg}");
    assert!(
        !body.contains("run-eleven-secret"),
        "the scope key is never echoed: {body}"
    );
    assert!(h.get("retry-after").is_some());
    assert_eq!(gw.seen.load(Ordering::SeqCst), before, "nothing was forwarded");
    // A scope the client already holds still works; so does the session/default scope.
    let (status, _, _) = send(Method::POST, &gw.url, &[("x-agent-run", "run-3")], LIST).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(Method::POST, &gw.url, &[], LIST).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn initialize_past_max_sessions_gets_503_until_a_session_ends() {
    let gw = gateway("[limits]\nmax_sessions = 2").await;
    let mut sids = Vec::new();
    for _ in 0..2 {
        let (status, h, body) = send(Method::POST, &gw.url, &[], INIT).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sids.push(h.get("mcp-session-id").unwrap().to_str().unwrap().to_string());
    }
    let before = gw.seen.load(Ordering::SeqCst);
    let (status, _, body) = send(Method::POST, &gw.url, &[], INIT).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], 1);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("max_sessions"),
        "{body}"
    );
    assert_eq!(gw.seen.load(Ordering::SeqCst), before, "nothing was forwarded");
    // Existing sessions and stateless requests go on.
    let (status, _, _) = send(Method::POST, &gw.url, &[("mcp-session-id", &sids[0])], LIST).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(Method::POST, &gw.url, &[], LIST).await;
    assert_eq!(status, StatusCode::OK);
    // A session ends: there is room again.
    let (status, _, _) = send(Method::DELETE, &gw.url, &[("mcp-session-id", &sids[0])], "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(Method::POST, &gw.url, &[], INIT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn connections_past_max_connections_wait_until_one_closes() {
    let gw = gateway("[limits]\nmax_connections = 2").await;
    let keep_alive = |body: &str| {
        format!(
            "POST /servers/crm/mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             accept: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Two connections, each served once and kept open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(keep_alive(LIST).as_bytes()).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // A third one is not served while both are open...
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(keep_alive(LIST).as_bytes()).await.unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf))
            .await
            .is_err(),
        "a third connection must wait"
    );
    // ...and is, once one of them closes.
    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_slow_request_body_gets_408_and_the_connection_closes() {
    let gw = gateway("[limits]\nrequest_body_timeout = \"500ms\"").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(
        b"POST /servers/crm/mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
          content-length: 1000\r\n\r\n{\"jsonrpc\"",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status_of(&text), 408, "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    let v = json_body(&text);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request_body_timeout"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(gw.seen.load(Ordering::SeqCst), 0, "nothing was forwarded");
}

#[tokio::test]
async fn a_dripping_upstream_json_body_ends_with_a_504_within_the_deadline() {
    // Head at once, then the body one byte every 2 s: never silent for long, never done.
    let mut script: Vec<Step> = vec![(
        Duration::ZERO,
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n".to_vec(),
    )];
    for b in br#"{"jsonrpc":"2.0","id":5,"result":{}}"# {
        script.push((Duration::from_secs(2), vec![*b]));
    }
    let up = raw_upstream(script).await;
    let gw = gateway_for(&up, "[limits]\nupstream_response_deadline = \"1s\"").await;
    let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"x"}}"#;
    let started = Instant::now();
    let (status, _, body) =
        tokio::time::timeout(Duration::from_secs(10), send(Method::POST, &gw.url, &[], call))
            .await
            .expect("the gateway must not hang");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], 5);
    assert_eq!(v["error"]["code"], -32002);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream_response_deadline"),
        "{body}"
    );
}

#[tokio::test]
async fn upstream_response_headers_are_an_allow_list() {
    let body = r#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\n\
         content-type: application/json; charset=utf-8; x-who=ana.lima@example.org\r\n\
         x-debug: ana.lima@example.org\r\n\
         link: <mailto:ana.lima@example.org>; rel=\"author\"\r\n\
         www-authenticate: Bearer realm=\"ana.lima@example.org\"\r\n\
         set-cookie: who=ana.lima@example.org\r\n\
         x-phone: +1 202-555-0142\r\n\
         cache-control: no-store, max-age=0\r\n\
         retry-after: 120\r\n\
         mcp-protocol-version: 2025-11-25\r\n\
         mcp-session-id: up-1\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let up = raw_upstream(vec![(Duration::ZERO, head.into_bytes())]).await;
    let gw = gateway_for(&up, "").await;
    let (status, h, text) = send(Method::POST, &gw.url, &[], INIT).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for gone in ["x-debug", "link", "www-authenticate", "set-cookie", "x-phone"] {
        assert!(h.get(gone).is_none(), "{gone} must not reach the client: {h:?}");
    }
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store, max-age=0");
    assert_eq!(h["retry-after"], "120");
    assert_eq!(h["mcp-protocol-version"], "2025-11-25");
    let sid = h["mcp-session-id"].to_str().unwrap();
    assert!(sid.len() == 32 && sid != "up-1", "the gateway's own session id");
    let all = format!("{h:?}");
    // (Not a bare "555": the gateway's random session id may hold it.)
    assert!(!all.contains("example.org") && !all.contains("202-555"), "{all}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["result"]["ok"],
        true
    );
}

#[tokio::test]
async fn duplicate_host_or_origin_and_absolute_form_targets_are_checked() {
    let gw = gateway("").await;
    let port = gw.addr.port();
    let local = format!("host: 127.0.0.1:{port}");
    let abs_local = format!("http://127.0.0.1:{port}/servers/crm/mcp");
    let cases: Vec<(&str, String, Vec<String>, u16)> = vec![
        ("plain", "/servers/crm/mcp".into(), vec![local.clone()], 200),
        (
            "duplicate Host",
            "/servers/crm/mcp".into(),
            vec![local.clone(), "host: evil.example".into()],
            403,
        ),
        (
            "duplicate identical Host",
            "/servers/crm/mcp".into(),
            vec![local.clone(), local.clone()],
            403,
        ),
        (
            "duplicate Origin",
            "/servers/crm/mcp".into(),
            vec![
                local.clone(),
                "origin: http://localhost:3000".into(),
                "origin: http://evil.example".into(),
            ],
            403,
        ),
        (
            "absolute-form to another host",
            "http://evil.example/servers/crm/mcp".into(),
            vec!["host: evil.example".into()],
            403,
        ),
        (
            "absolute-form disagreeing with Host",
            "http://evil.example/servers/crm/mcp".into(),
            vec![local.clone()],
            403,
        ),
        (
            "absolute-form, allowed and agreeing",
            abs_local.clone(),
            vec![local.clone()],
            200,
        ),
        (
            "origin with user info",
            "/servers/crm/mcp".into(),
            vec![local.clone(), "origin: http://user@localhost:3000".into()],
            403,
        ),
        (
            "origin on a look-alike host",
            "/servers/crm/mcp".into(),
            vec![local.clone(), "origin: http://localhost.evil.example".into()],
            403,
        ),
        (
            "origin null",
            "/servers/crm/mcp".into(),
            vec![local.clone(), "origin: null".into()],
            403,
        ),
        (
            "local origin",
            "/servers/crm/mcp".into(),
            vec![local.clone(), "origin: HTTP://LOCALHOST:3000".into()],
            200,
        ),
    ];
    for (name, target, headers, want) in cases {
        let lines: Vec<&str> = headers.iter().map(String::as_str).collect();
        let res = raw(gw.addr, &raw_post(&target, &lines, LIST)).await;
        assert_eq!(status_of(&res), want, "{name}: {res}");
        if want == 403 {
            let v = json_body(&res);
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.starts_with("forbidden"), "{name}: {msg}");
            assert!(!msg.contains("evil.example"), "{name}: no header value in errors");
        }
    }
    assert_eq!(
        gw.seen.load(Ordering::SeqCst),
        3,
        "only the accepted requests went upstream"
    );
}

#[tokio::test]
async fn metrics_go_through_the_host_check() {
    let gw = gateway("").await;
    let get = |host: &str| {
        format!("GET /metrics HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").into_bytes()
    };
    let res = raw(gw.addr, &get("evil.example")).await;
    assert_eq!(status_of(&res), 403, "{res}");
    assert!(!res.contains("mcp_gateway_"), "{res}");
    let res = raw(gw.addr, &get("localhost")).await;
    assert_eq!(status_of(&res), 200, "{res}");
    assert!(res.contains("mcp_gateway_requests_total"), "{res}");
    // Health answers anyone: it says "ok" and nothing else.
    let res = raw(
        gw.addr,
        b"GET /healthz HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&res), 200, "{res}");
}
