//! The HTTP front and the HTTP upstream relay, driven over real sockets against a small
//! in-process upstream: routing, Host/Origin checks, limits, session mapping, credential
//! headers, health, metrics, graceful shutdown.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use mcp_pii_gateway::config::Config;
use mcp_pii_gateway::proxy::Front;
use serde_json::{json, Value};

/// What the upstream saw: method, headers (name: value), body.
type Seen = Arc<Mutex<Vec<(Method, Vec<(String, String)>, String)>>>;

/// An upstream that records requests; `initialize` gets session `up-1`; tool `slow` sleeps
/// 500 ms; everything else echoes the id.
async fn upstream(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let text = String::from_utf8_lossy(&body).to_string();
                        let headers = parts
                            .headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect();
                        seen.lock()
                            .unwrap()
                            .push((parts.method.clone(), headers, text.clone()));
                        let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        if msg["params"]["name"] == "stall" {
                            // Headers and half a body, then nothing, ever.
                            let chunks = futures_util::stream::once(async {
                                Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from_static(
                                    b"{\"jsonrpc\":",
                                )))
                            })
                            .chain(futures_util::stream::pending());
                            let mut res = Response::new(http_body_util::Either::Right(
                                http_body_util::StreamBody::new(chunks),
                            ));
                            res.headers_mut()
                                .insert("content-type", "application/json".parse().unwrap());
                            return Ok(res);
                        }
                        let mut res = Response::new(http_body_util::Either::Left(Full::new(Bytes::new())));
                        if parts.method == Method::DELETE {
                            return Ok::<_, Infallible>(res);
                        }
                        if msg["method"] == "tools/call" && msg["params"]["name"] == "slow" {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"ok": true}});
                        *res.body_mut() =
                            http_body_util::Either::Left(Full::new(Bytes::from(reply.to_string())));
                        res.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        if msg["method"] == "initialize" {
                            res.headers_mut()
                                .insert("mcp-session-id", "up-1".parse().unwrap());
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

struct Gw {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    seen: Seen,
}

async fn gateway(extra: &str) -> Gw {
    let seen: Seen = Arc::default();
    let up = upstream(seen.clone()).await;
    let toml = format!(
        "{extra}\n[[servers]]\nname = \"crm\"\nurl = \"{up}\"\nheaders = {{ Authorization = \"Bearer upstream-secret\" }}\n"
    );
    let config = Config::from_toml_str(&toml, |_| None).unwrap();
    let front = Front::from_config(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(front.serve(listener, async {
        let _ = rx.await;
    }));
    Gw {
        base,
        stop: Some(tx),
        task,
        seen,
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
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
    let res = client().request(req).await.unwrap();
    let (p, b) = res.into_parts();
    (
        p.status,
        p.headers,
        String::from_utf8_lossy(&b.collect().await.unwrap().to_bytes()).to_string(),
    )
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

#[tokio::test]
async fn refusals_are_jsonrpc_errors_with_the_right_status() {
    let gw = gateway("[limits]\nmax_body_bytes = 1000").await;
    let url = format!("{}/servers/crm/mcp", gw.base);
    type Row<'a> = (
        &'a str,
        Method,
        String,
        Vec<(&'a str, &'a str)>,
        String,
        StatusCode,
    );
    let table: &[Row] = &[
        (
            "unknown path",
            Method::POST,
            format!("{}/nope", gw.base),
            vec![],
            INIT.into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown server",
            Method::POST,
            format!("{}/servers/x/mcp", gw.base),
            vec![],
            INIT.into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "PUT",
            Method::PUT,
            url.clone(),
            vec![],
            INIT.into(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "evil Host",
            Method::POST,
            url.clone(),
            vec![("host", "evil.example.com")],
            INIT.into(),
            StatusCode::FORBIDDEN,
        ),
        (
            "evil Origin",
            Method::POST,
            url.clone(),
            vec![("origin", "http://evil.example.com")],
            INIT.into(),
            StatusCode::FORBIDDEN,
        ),
        (
            "too large",
            Method::POST,
            url.clone(),
            vec![],
            format!("{{\"x\":\"{}\"}}", "a".repeat(2000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "unknown session",
            Method::POST,
            url.clone(),
            vec![("mcp-session-id", "feed")],
            INIT.into(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (name, method, u, headers, body, want) in table {
        let (status, h, text) = send(method.clone(), u, headers, body).await;
        assert_eq!(status, *want, "{name}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name}: not JSON: {text}"));
        assert_eq!(v["jsonrpc"], "2.0", "{name}");
        assert!(v["error"]["message"].is_string(), "{name}: {text}");
        if *want == StatusCode::METHOD_NOT_ALLOWED {
            assert!(h.get("allow").is_some());
        }
    }
    // A local browser origin is fine by default.
    let (status, _, _) = send(Method::POST, &url, &[("origin", "http://localhost:3000")], INIT).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        gw.seen.lock().unwrap().len() == 1,
        "only the accepted request reached the upstream"
    );
}

#[tokio::test]
async fn sessions_are_mapped_and_credentials_stay_in_the_gateway() {
    let gw = gateway("").await;
    let url = format!("{}/servers/crm/mcp", gw.base);
    let (status, h, _) = send(
        Method::POST,
        &url,
        &[("authorization", "Bearer sandbox-token"), ("cookie", "a=b")],
        INIT,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sid = h.get("mcp-session-id").unwrap().to_str().unwrap().to_string();
    assert_ne!(sid, "up-1", "the upstream's session id must not leak");
    assert_eq!(sid.len(), 32);
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let (status, _, body) = send(
        Method::POST,
        &url,
        &[("mcp-session-id", &sid), ("mcp-protocol-version", "2025-11-25")],
        call,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = send(Method::DELETE, &url, &[("mcp-session-id", &sid)], "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(Method::POST, &url, &[("mcp-session-id", &sid)], call).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted session is gone");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32003, "session not found: {body}");

    let seen = gw.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (_, headers, _) in seen.iter() {
        let auth: Vec<_> = headers.iter().filter(|(k, _)| k == "authorization").collect();
        assert_eq!(auth.len(), 1);
        assert_eq!(
            auth[0].1, "Bearer upstream-secret",
            "the sandbox's token never goes upstream"
        );
        assert!(!headers.iter().any(|(k, _)| k == "cookie"));
    }
    let sess = |i: usize| {
        seen[i]
            .1
            .iter()
            .find(|(k, _)| k == "mcp-session-id")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(sess(0), None);
    assert_eq!(sess(1).as_deref(), Some("up-1"));
    assert_eq!(sess(2).as_deref(), Some("up-1"));
    assert!(seen[1]
        .1
        .iter()
        .any(|(k, v)| k == "mcp-protocol-version" && v == "2025-11-25"));
    assert_eq!(seen[2].0, Method::DELETE);
}

#[tokio::test]
async fn health_metrics_and_graceful_shutdown() {
    let mut gw = gateway("").await;
    let (s, _, body) = send(Method::GET, &format!("{}/healthz", gw.base), &[], "").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
    let url = format!("{}/servers/crm/mcp", gw.base);
    send(Method::POST, &url, &[], INIT).await;
    let (_, _, m) = send(Method::GET, &format!("{}/metrics", gw.base), &[], "").await;
    assert!(
        m.contains("mcp_gateway_requests_total{server=\"crm\",outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mcp_gateway_upstream_latency_seconds_count{server=\"crm\"} 1"),
        "{m}"
    );

    // An in-flight request finishes after shutdown begins.
    let slow = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow"}}"#;
    let url2 = url.clone();
    let inflight = tokio::spawn(async move { send(Method::POST, &url2, &[], slow).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = gw.stop.take().unwrap().send(());
    let (status, _, body) = inflight.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"id\":9"));
    tokio::time::timeout(Duration::from_secs(5), gw.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // And no new connections are accepted.
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = format!("{}/healthz", gw.base).parse().unwrap();
    assert!(client().request(req).await.is_err());
}

#[tokio::test]
async fn past_the_shutdown_grace_open_connections_are_closed() {
    let mut gw = gateway("[limits]\nshutdown_grace = \"300ms\"\nupstream_timeout = \"60s\"").await;
    let url = format!("{}/servers/crm/mcp", gw.base);
    // An upstream body that never ends: the request cannot finish within the grace.
    let stall = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"stall"}}"#;
    let inflight = tokio::spawn(async move {
        let mut req = Request::new(Full::new(Bytes::from(stall)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = url.parse().unwrap();
        let res = client().request(req).await.map_err(|e| e.to_string())?;
        let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(body.to_bytes())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let _ = gw.stop.take().unwrap().send(());
    // The client sees its connection end (not a body that looks complete) once the grace
    // has passed: the gateway closes it, rather than waiting for the connection to end (which
    // the serve loop would give up on only 5 s later).
    let got = tokio::time::timeout(Duration::from_secs(3), inflight)
        .await
        .expect("the gateway closed the connection when the grace had passed")
        .unwrap();
    assert!(got.is_err(), "{got:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(5), gw.task)
        .await
        .expect("serve returns once the grace has passed")
        .unwrap()
        .unwrap();
}

/// A front with one server, `gone`, whose address nothing listens on; and its listener.
async fn front_to_nowhere() -> (Front, tokio::net::TcpListener) {
    let toml = "[[servers]]\nname = \"gone\"\nurl = \"http://127.0.0.1:9/mcp\"\n";
    let config = Config::from_toml_str(toml, |_| None).unwrap();
    let front = Front::from_config(&config).unwrap();
    (front, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
}

#[tokio::test]
async fn unreachable_upstream_is_a_502_with_the_request_id() {
    let (front, listener) = front_to_nowhere().await;
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(front.serve(listener, std::future::pending()));
    let (status, _, body) = send(Method::POST, &format!("{base}/servers/gone/mcp"), &[], INIT).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["error"]["code"], -32002);
}

#[tokio::test]
async fn a_dropped_serve_future_leaves_no_background_task() {
    let (front, listener) = front_to_nowhere().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    // The serve loop starts its background tasks (the idle-session sweep, the timer tick)...
    let serve = tokio::spawn(front.serve(listener, std::future::pending()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(metrics.num_alive_tasks() >= before + 3, "serve and its two tasks");
    // ...and they end with it, even when it is dropped rather than shut down.
    serve.abort();
    let _ = serve.await;
    for _ in 0..100 {
        if metrics.num_alive_tasks() == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), before);
}

#[tokio::test]
async fn a_stalled_upstream_body_times_out_instead_of_hanging() {
    let gw = gateway("[limits]\nupstream_timeout = \"300ms\"").await;
    let url = format!("{}/servers/crm/mcp", gw.base);
    let stall = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"stall"}}"#;
    let mut req = Request::new(Full::new(Bytes::from(stall)));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = url.parse().unwrap();
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(5), async {
        let res = client().request(req).await?;
        let b = res.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(b)
    })
    .await
    .expect("the gateway must not hang");
    // Either the stream is cut (a truncated body never looks complete), or, when a layer buffers
    // the body, the client gets a JSON-RPC error in its place.
    if let Ok(body) = res {
        let v: Value = serde_json::from_slice(&body).expect("a complete body is whole JSON");
        assert!(v.get("error").is_some(), "{v}");
        assert_eq!(v["id"], 3);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // The half-read connection is not reused: the next call gets a whole answer.
    let ok = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"x"}}"#;
    let (status, _, body) = send(Method::POST, &url, &[], ok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"]["ok"],
        true
    );
}

#[tokio::test]
async fn bearer_tokens_and_server_lists_are_enforced() {
    // sha256("t1") and sha256("t2"); fictional tokens.
    let sha = |t: &str| hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
    let extra = format!(
        "[[clients]]\nname = \"sandbox\"\ntoken_sha256 = \"{}\"\nservers = [\"crm\"]\n\
         [[clients]]\nname = \"nobody\"\ntoken_sha256 = \"{}\"\nservers = []\n",
        sha("t1"),
        sha("t2")
    );
    let gw = gateway(&extra).await;
    let url = format!("{}/servers/crm/mcp", gw.base);
    for (name, headers, want) in [
        ("no token", vec![], StatusCode::UNAUTHORIZED),
        (
            "unknown token",
            vec![("authorization", "Bearer nope")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not a bearer",
            vec![("authorization", "Basic dDE6")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "server not allowed",
            vec![("authorization", "Bearer t2")],
            StatusCode::FORBIDDEN,
        ),
        ("allowed", vec![("authorization", "Bearer t1")], StatusCode::OK),
    ] {
        let (status, h, body) = send(Method::POST, &url, &headers, INIT).await;
        assert_eq!(status, want, "{name}: {body}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(h.get("www-authenticate").unwrap(), "Bearer", "{name}");
        }
        if want != StatusCode::OK {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"]["message"].is_string(), "{name}: {body}");
        }
    }
    let seen = gw.seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "refused requests never reach the upstream");
    assert!(
        !seen[0].1.iter().any(|(_, v)| v.contains("t1")),
        "the client's token is not forwarded"
    );
}

/// An upstream that answers every POST with its id, counts the connections it accepted and
/// closes a connection idle for 100 ms (as servers with a keep-alive timeout do, silently).
async fn counting_upstream(accepted: Arc<std::sync::atomic::AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"n": msg["id"]}});
                    let mut res = Response::new(Full::new(Bytes::from(reply.to_string())));
                    res.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(res)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_millis(100))
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn upstream_connections_are_reused_and_dead_ones_replaced() {
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let up = counting_upstream(accepted.clone()).await;
    let toml = format!("[[servers]]\nname = \"crm\"\nurl = \"{up}\"\n");
    let config = Config::from_toml_str(&toml, |_| None).unwrap();
    let front = Front::from_config(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/servers/crm/mcp", listener.local_addr().unwrap());
    tokio::spawn(front.serve(listener, std::future::pending()));
    let call =
        |id: u64| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"x"}}}}"#);
    let count = || accepted.load(std::sync::atomic::Ordering::SeqCst);

    // Sequential calls share one upstream connection.
    for id in 1..=20 {
        let (status, _, body) = send(Method::POST, &url, &[], &call(id)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"]["n"], id);
    }
    assert_eq!(count(), 1, "sequential calls must reuse the pooled connection");

    // The upstream closes the idle connection; the next call opens a new one and succeeds.
    for round in 0..3u64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = 100 + round;
        let (status, _, body) = send(Method::POST, &url, &[], &call(id)).await;
        assert_eq!(status, StatusCode::OK, "after an idle close: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"]["n"], id);
        assert_eq!(count(), 2 + round as usize);
    }

    // Concurrent calls each get a connection, and all of them answer.
    let calls = (0..8u64).map(|i| {
        let url = url.clone();
        let body = call(200 + i);
        async move { send(Method::POST, &url, &[], &body).await }
    });
    for (i, (status, _, body)) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["result"]["n"],
            200 + i as u64
        );
    }
}
