//! The layer stack driven through `Service` with `service_fn` + `oneshot`: JSON and SSE bodies,
//! batches, notifications, errors, limits, scopes and auth, mirror headers, and the logs.
//!
//! Test data is generated: `example.org` addresses and 555-01xx numbers.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use mcp_pii_gateway::layer::{
    body::{boxed, full, Body},
    scope::sha256_hex,
    Clients, PiiLayer,
};
use serde_json::{json, Value};
use tower::{util::BoxCloneService, ServiceBuilder, ServiceExt};

const EMAIL: &str = "ana.lima@example.org";
const EMAIL2: &str = "joao.silva@example.net";

/// What the inner service saw.
#[derive(Default, Clone)]
struct Seen {
    calls: Arc<Mutex<Vec<(http::HeaderMap, Bytes)>>>,
}

impl Seen {
    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
    fn last_body(&self) -> Bytes {
        self.calls.lock().unwrap().last().unwrap().1.clone()
    }
    fn last_json(&self) -> Value {
        serde_json::from_slice(&self.last_body()).unwrap()
    }
    fn last_header(&self, name: &str) -> Option<String> {
        self.calls
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .0
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

type Svc = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

/// A fake MCP server: `tools/call contact` answers PII; other requests echo their params in a
/// result; `raw` returns the response given in the request's `params.reply` as its body with
/// `params.status` and `params.ctype`.
fn stack(layer: PiiLayer) -> (Svc, Seen) {
    let seen = Seen::default();
    let s2 = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |req: Request<Body>| {
            let seen = s2.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect().await.unwrap().to_bytes();
                seen.calls
                    .lock()
                    .unwrap()
                    .push((parts.headers.clone(), bytes.clone()));
                if bytes.is_empty() {
                    let mut r = Response::new(full(""));
                    *r.status_mut() = StatusCode::ACCEPTED;
                    return Ok::<_, Infallible>(r);
                }
                let msg: Value = serde_json::from_slice(&bytes).unwrap();
                let id = msg.get("id").cloned().unwrap_or(Value::Null);
                let reply = match msg["method"].as_str() {
                    Some("tools/call") if msg["params"]["name"] == "contact" => json!({
                        "jsonrpc": "2.0", "id": id,
                        "result": {"content": [{"type": "text", "text": format!("Ana: {EMAIL}")}]}
                    }),
                    Some("raw") => {
                        let mut r = Response::new(full(msg["params"]["reply"].as_str().unwrap().to_owned()));
                        *r.status_mut() =
                            StatusCode::from_u16(msg["params"]["status"].as_u64().unwrap_or(200) as u16)
                                .unwrap();
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            msg["params"]["ctype"]
                                .as_str()
                                .unwrap_or("application/json")
                                .parse()
                                .unwrap(),
                        );
                        return Ok(r);
                    }
                    _ if msg.get("method").is_none() || id.is_null() => {
                        let mut r = Response::new(full(""));
                        *r.status_mut() = StatusCode::ACCEPTED;
                        return Ok(r);
                    }
                    _ => json!({"jsonrpc": "2.0", "id": id, "result": {"echo": msg["params"].clone()}}),
                };
                let mut r = Response::new(full(serde_json::to_vec(&reply).unwrap()));
                r.headers_mut()
                    .insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
                Ok(r)
            }
        });
    (BoxCloneService::new(svc), seen)
}

fn post() -> http::request::Builder {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

fn req(body: Value) -> Request<Body> {
    let b = serde_json::to_vec(&body).unwrap();
    post().body(full(b)).unwrap()
}

fn req_h(body: Value, headers: &[(&str, &str)]) -> Request<Body> {
    let b = serde_json::to_vec(&body).unwrap();
    let mut r = post();
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(full(b)).unwrap()
}

async fn call(svc: &Svc, r: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let res = svc.clone().oneshot(r).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap()
}

fn contact(id: i64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"contact","arguments":{}}})
}

fn send(id: i64, to: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"send","arguments":{"to":to}}})
}

fn no_raw(b: &[u8]) {
    let s = String::from_utf8_lossy(b);
    assert!(!s.contains(EMAIL) && !s.contains(EMAIL2), "raw PII leaked: {s}");
}

#[tokio::test]
async fn json_response_is_tokenized_and_content_length_fixed() {
    let (svc, _) = stack(PiiLayer::new("crm"));
    let (status, headers, body) = call(&svc, req(contact(1))).await;
    assert_eq!(status, 200);
    no_raw(&body);
    let v = json_of(&body);
    assert_eq!(v["result"]["content"][0]["text"], "Ana: [EMAIL_1]");
    assert_eq!(v["id"], 1);
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
}

#[tokio::test]
async fn placeholder_is_restored_toward_the_server_same_scope() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    call(&svc, req(contact(1))).await;
    let (status, _, body) = call(&svc, req(send(2, "[EMAIL_1]"))).await;
    assert_eq!(status, 200);
    // The server saw the real value; the client sees its echo tokenized again.
    assert_eq!(seen.last_json()["params"]["arguments"]["to"], EMAIL);
    assert_eq!(
        seen.last_header("content-length").unwrap(),
        seen.last_body().len().to_string()
    );
    no_raw(&body);
    assert_eq!(json_of(&body)["result"]["echo"]["arguments"]["to"], "[EMAIL_1]");
}

#[tokio::test]
async fn unchanged_request_bytes_pass_through_exactly() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    let raw = "{ \"jsonrpc\" : \"2.0\",\n \"id\":7, \"method\":\"ping\", \"params\": {\"x\": 1.50} }";
    let r = post().body(full(raw)).unwrap();
    call(&svc, r).await;
    assert_eq!(seen.last_body(), raw.as_bytes());
}

#[tokio::test]
async fn unknown_placeholder_is_rejected_and_nothing_forwarded() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    let (status, _, body) = call(&svc, req(send(9, "[EMAIL_4]"))).await;
    assert_eq!(seen.count(), 0, "the inner service must not be called");
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(v["id"], 9);
    assert_eq!(v["error"]["code"], -32602);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("[EMAIL_4]"), "{msg}");
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    call(&svc, req(contact(1))).await;
    let before = seen.count();
    let batch = json!([
        send(2, "[EMAIL_1]"),
        {"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"[EMAIL_1]"}},
        send(3, "[EMAIL_2]"),
    ]);
    let (status, _, body) = call(&svc, req(batch)).await;
    assert_eq!(status, 200);
    assert_eq!(seen.count(), before, "nothing of the batch may be forwarded");
    let v = json_of(&body);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2, "one error per request, none for the notification");
    assert_eq!(arr[0]["id"], 2);
    assert_eq!(arr[1]["id"], 3);

    // A fully known batch is restored element by element.
    let ok = json!([send(4, "[EMAIL_1]"), {"jsonrpc":"2.0","method":"notifications/x","params":{"m":"[EMAIL_1]"}}]);
    call(&svc, req(ok)).await;
    let fwd = seen.last_json();
    assert_eq!(fwd[0]["params"]["arguments"]["to"], EMAIL);
    assert_eq!(fwd[1]["params"]["m"], EMAIL);
}

#[tokio::test]
async fn notification_with_unknown_placeholder_is_dropped() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    let n = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"[PHONE_3]"}});
    let (status, _, body) = call(&svc, req(n)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.is_empty());
    assert_eq!(seen.count(), 0);
}

#[tokio::test]
async fn request_body_limit() {
    let (svc, seen) = stack(PiiLayer::new("crm").max_request_body(64));
    let big = json!({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"x".repeat(100)}});
    // With Content-Length.
    let (status, _, body) = call(&svc, req(big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(&body)["error"]["code"], -32600);
    // Streamed without Content-Length, in small chunks.
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunks: Vec<Result<http_body::Frame<Bytes>, Infallible>> = bytes
        .chunks(10)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let r = post()
        .body(boxed(StreamBody::new(futures_util::stream::iter(chunks))))
        .unwrap();
    let (status, _, _) = call(&svc, r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(seen.count(), 0);
}

#[tokio::test]
async fn invalid_json_is_a_parse_error() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    let (status, _, body) = call(&svc, post().body(full("{\"jsonrpc\":")).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["error"]["code"], -32700);
    assert_eq!(seen.count(), 0);
}

#[tokio::test]
async fn scope_header_separates_scopes_and_can_be_required() {
    let h = HeaderName::from_static("x-agent-run");
    let (svc, seen) = stack(PiiLayer::new("crm").scope_header(h).require_scope_header(true));
    let (status, _, body) = call(&svc, req(contact(1))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json_of(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("scope header"));
    assert_eq!(seen.count(), 0);

    let (_, _, body) = call(&svc, req_h(contact(1), &[("x-agent-run", "run-1")])).await;
    assert_eq!(json_of(&body)["result"]["content"][0]["text"], "Ana: [EMAIL_1]");
    // Same scope: restored.
    call(&svc, req_h(send(2, "[EMAIL_1]"), &[("x-agent-run", "run-1")])).await;
    assert_eq!(seen.last_json()["params"]["arguments"]["to"], EMAIL);
    let n = seen.count();
    // Another scope: unknown.
    let (_, _, body) = call(&svc, req_h(send(3, "[EMAIL_1]"), &[("x-agent-run", "run-2")])).await;
    assert_eq!(json_of(&body)["error"]["code"], -32602);
    assert_eq!(seen.count(), n);
}

#[tokio::test]
async fn session_id_scopes_and_initialize_answer_lands_in_the_new_session() {
    // A server that assigns session "s-1" in its answer to initialize and mentions an address.
    let svc = ServiceBuilder::new().layer(PiiLayer::new("crm")).service_fn(|req: Request<Body>| async move {
        let sid = req.headers().get("mcp-session-id").cloned();
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        let msg: Value = serde_json::from_slice(&bytes).unwrap();
        let mut r = if msg["method"] == "initialize" {
            let mut r = Response::new(full(
                serde_json::to_vec(&json!({"jsonrpc":"2.0","id":msg["id"],"result":{"instructions":format!("support: {EMAIL}")}}))
                    .unwrap(),
            ));
            r.headers_mut().insert("mcp-session-id", "s-1".parse().unwrap());
            r
        } else {
            assert_eq!(sid.unwrap(), "s-1");
            Response::new(full(serde_json::to_vec(&json!({"jsonrpc":"2.0","id":msg["id"],"result":{"got":msg["params"]}})).unwrap()))
        };
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        Ok::<_, Infallible>(r)
    });
    let svc = BoxCloneService::new(svc);
    let (_, _, body) = call(
        &svc,
        req(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{}})),
    )
    .await;
    assert_eq!(json_of(&body)["result"]["instructions"], "support: [EMAIL_1]");
    let (_, _, body) = call(
        &svc,
        req_h(
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":{"to":"[EMAIL_1]"}}),
            &[("mcp-session-id", "s-1")],
        ),
    )
    .await;
    // Restored toward the server (which echoes it), tokenized again toward the client.
    assert_eq!(json_of(&body)["result"]["got"]["to"], "[EMAIL_1]");
}

#[tokio::test]
async fn bearer_tokens_and_server_allow_lists() {
    let clients = Clients::new()
        .with_client("sandbox", &sha256_hex(b"tok-sandbox"), Some(vec!["crm".into()]))
        .unwrap()
        .with_client("other", &sha256_hex(b"tok-other"), Some(vec!["mail".into()]))
        .unwrap();
    let (svc, seen) = stack(PiiLayer::new("crm").clients(clients));
    let (status, headers, body) = call(&svc, req(contact(1))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert!(json_of(&body)["error"].is_object());
    let (status, _, _) = call(&svc, req_h(contact(1), &[("authorization", "Bearer wrong")])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&svc, req_h(contact(1), &[("authorization", "Bearer tok-other")])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(seen.count(), 0);
    let (status, _, body) = call(
        &svc,
        req_h(contact(1), &[("authorization", "Bearer tok-sandbox")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["result"]["content"][0]["text"], "Ana: [EMAIL_1]");
    // The authorization header itself is forwarded untouched (it may be the server's own auth).
    assert_eq!(seen.last_header("authorization").unwrap(), "Bearer tok-sandbox");
}

#[tokio::test]
async fn mirror_headers_are_restored_with_the_body() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    call(&svc, req(contact(1))).await;
    let read = json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"mailto:[EMAIL_1]"}});
    call(
        &svc,
        req_h(
            read,
            &[
                ("mcp-method", "resources/read"),
                ("mcp-name", "mailto:[EMAIL_1]"),
                ("mcp-param-to", "[EMAIL_1]"),
            ],
        ),
    )
    .await;
    let fwd = seen.last_json();
    assert_eq!(fwd["params"]["uri"], format!("mailto:{EMAIL}"));
    assert_eq!(seen.last_header("mcp-name").unwrap(), format!("mailto:{EMAIL}"));
    assert_eq!(seen.last_header("mcp-param-to").unwrap(), EMAIL);
    assert_eq!(seen.last_header("mcp-method").unwrap(), "resources/read");

    // An unknown placeholder in a mirror header rejects the request too.
    let n = seen.count();
    let (_, _, body) = call(&svc, req_h(contact(6), &[("mcp-name", "[EMAIL_9]")])).await;
    assert_eq!(json_of(&body)["error"]["code"], -32602);
    assert_eq!(seen.count(), n);
}

fn raw(reply: &str, status: u16, ctype: &str) -> Request<Body> {
    req(
        json!({"jsonrpc":"2.0","id":11,"method":"raw","params":{"reply":reply,"status":status,"ctype":ctype}}),
    )
}

#[tokio::test]
async fn error_statuses_text_and_oversized_responses_never_leak() {
    let (svc, _) = stack(PiiLayer::new("crm").max_response_body(256));
    // An error status with a JSON-RPC error body: tokenized.
    let err =
        json!({"jsonrpc":"2.0","id":11,"error":{"code":-32000,"message":format!("no mailbox {EMAIL}")}})
            .to_string();
    let (status, _, body) = call(&svc, raw(&err, 400, "application/json")).await;
    assert_eq!(status, 400);
    no_raw(&body);
    assert_eq!(json_of(&body)["error"]["message"], "no mailbox [EMAIL_1]");
    // Plain text: tokenized as text.
    let (_, _, body) = call(&svc, raw(&format!("oops {EMAIL2}"), 502, "text/plain")).await;
    assert_eq!(&body[..], b"oops [EMAIL_2]");
    // Too large: withheld, the client gets an error for its request.
    let big =
        json!({"jsonrpc":"2.0","id":11,"result":{"t":format!("{EMAIL} {}", "x".repeat(300))}}).to_string();
    let (status, _, body) = call(&svc, raw(&big, 200, "application/json")).await;
    no_raw(&body);
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(v["id"], 11);
    assert_eq!(v["error"]["code"], -32002);
}

/// An SSE stream as the inner service's body, split at the given byte positions.
fn sse_stack(events: Vec<u8>, cuts: Vec<usize>) -> Svc {
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::new("crm"))
        .service_fn(move |_req: Request<Body>| {
            let events = events.clone();
            let cuts = cuts.clone();
            async move {
                let mut chunks = Vec::new();
                let mut last = 0;
                for c in cuts.iter().copied().chain([events.len()]) {
                    chunks.push(Ok::<_, Infallible>(http_body::Frame::data(
                        Bytes::copy_from_slice(&events[last..c]),
                    )));
                    last = c;
                }
                let mut r = Response::new(boxed(StreamBody::new(futures_util::stream::iter(chunks))));
                r.headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                Ok::<_, Infallible>(r)
            }
        });
    BoxCloneService::new(svc)
}

fn sse_events() -> Vec<u8> {
    let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":format!("mailing {EMAIL}")}});
    let elicit = json!({"jsonrpc":"2.0","id":0,"method":"elicitation/create","params":{"message":format!("confirm {EMAIL2}?"),"requestedSchema":{}}});
    let result = json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":format!("sent to {EMAIL}")}]}});
    format!(
        "id: p-0\r\nretry: 3000\r\ndata:\r\n\r\n: keep-alive\n\nevent: message\nid: e-1\ndata: {note}\n\n\
         event: message\nid: e-2\ndata: {elicit}\n\nid: e-3\ndata: {result}\n\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn sse_events_are_tokenized_at_every_split() {
    let events = sse_events();
    let mut seen_outputs = std::collections::HashSet::new();
    for cut in (0..events.len()).step_by(7).chain([1, 2, events.len() - 1]) {
        for cut2 in [cut + 1, cut + 13, events.len()] {
            let cuts: Vec<usize> = [cut, cut2].into_iter().filter(|&c| c <= events.len()).collect();
            let svc = sse_stack(events.clone(), cuts);
            let (status, headers, body) = call(&svc, req(contact(1))).await;
            assert_eq!(status, 200);
            assert_eq!(headers["content-type"], "text/event-stream");
            no_raw(&body);
            seen_outputs.insert(body);
        }
    }
    assert_eq!(seen_outputs.len(), 1, "output must not depend on chunking");
    let out = String::from_utf8(seen_outputs.into_iter().next().unwrap().to_vec()).unwrap();
    // Framing preserved: priming event byte for byte, comment, ids, event types.
    assert!(
        out.starts_with("id: p-0\r\nretry: 3000\r\ndata:\r\n\r\n: keep-alive\n\n"),
        "{out}"
    );
    assert!(out.contains("event: message\nid: e-1\ndata: {"), "{out}");
    assert!(out.contains("id: e-3\n"), "{out}");
    let datas: Vec<Value> = out
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(datas.len(), 3);
    assert_eq!(datas[0]["params"]["data"], "mailing [EMAIL_1]");
    assert_eq!(datas[1]["params"]["message"], "confirm [EMAIL_2]?");
    assert_eq!(datas[1]["id"], 0);
    assert_eq!(datas[2]["result"]["content"][0]["text"], "sent to [EMAIL_1]");
}

#[tokio::test]
async fn sse_events_are_released_as_they_arrive() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, Infallible>>(4);
    let rx = Arc::new(Mutex::new(Some(rx)));
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::new("crm"))
        .service_fn(move |_req: Request<Body>| {
            let rx = rx.lock().unwrap().take().unwrap();
            async move {
                let stream = tokio_stream_from(rx);
                let mut r = Response::new(boxed(StreamBody::new(stream)));
                r.headers_mut().insert(
                    "content-type",
                    "text/event-stream; charset=utf-8".parse().unwrap(),
                );
                Ok::<_, Infallible>(r)
            }
        });
    let res = svc.oneshot(req(contact(1))).await.unwrap();
    let mut body = res.into_body();
    let first = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1,"message":format!("to {EMAIL}")}});
    tx.send(Ok(http_body::Frame::data(Bytes::from(format!(
        "data: {first}\n"
    )))))
    .await
    .unwrap();
    tx.send(Ok(http_body::Frame::data(Bytes::from_static(b"\n"))))
        .await
        .unwrap();
    // The first event comes out while the stream is still open.
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.contains("to [EMAIL_1]"), "{text}");
    no_raw(text.as_bytes());
    drop(tx);
    assert!(body.frame().await.is_none());
}

fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn empty_accepted_answers_pass_through() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    let n = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let (status, _, body) = call(&svc, req(n)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.is_empty());
    assert_eq!(seen.count(), 1);
    // GET stream request without a body is forwarded without one.
    let r = Request::get("/mcp")
        .header("accept", "text/event-stream")
        .body(full(""))
        .unwrap();
    call(&svc, r).await;
    assert!(seen.last_body().is_empty());
    assert!(seen.last_header("content-length").is_none());
}

/// Captures everything logged during exchanges with PII (tokenize, restore, rejection, SSE)
/// and checks that no raw value appears, while the exchange lines do. The subscriber is the
/// process-wide default (a thread-local one races with the other tests over callsite
/// interest), so the other tests' logs are checked too.
#[test]
fn logs_never_hold_values() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let b2 = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || b2.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (svc, _) = stack(PiiLayer::new("crm").max_response_body(200));
        call(&svc, req(contact(1))).await;
        call(&svc, req(send(2, "[EMAIL_1]"))).await;
        call(&svc, req(send(3, "[EMAIL_7]"))).await;
        let big = json!({"jsonrpc":"2.0","id":11,"result":{"t":format!("{EMAIL} {}", "x".repeat(300))}})
            .to_string();
        call(&svc, raw(&big, 200, "application/json")).await;
        let sse = sse_stack(sse_events(), vec![5, 50]);
        call(&sse, req(contact(1))).await;
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("mcp_exchange"),
        "no exchange span was logged:\n{logs}"
    );
    assert!(logs.contains("exchange"), "{logs}");
    assert!(logs.contains("tools/call"), "{logs}");
    assert!(logs.contains("rejected"), "{logs}");
    assert!(
        !logs.contains(EMAIL) && !logs.contains(EMAIL2),
        "a value reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains("ana.lima") && !logs.contains("example.org"),
        "{logs}"
    );
}

#[tokio::test]
async fn client_answers_to_server_requests_are_restored_or_replaced_by_errors() {
    let (svc, seen) = stack(PiiLayer::new("crm"));
    call(&svc, req(contact(1))).await;
    // A known placeholder in an elicitation answer reaches the server as the value.
    let answer = json!({"jsonrpc":"2.0","id":0,"result":{"action":"accept","content":{"email":"[EMAIL_1]"}}});
    let (status, _, _) = call(&svc, req(answer)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(seen.last_json()["result"]["content"]["email"], EMAIL);
    // An unknown one: the server gets an error for that id instead, so it does not hang.
    let answer =
        json!({"jsonrpc":"2.0","id":"srv-4","result":{"action":"accept","content":{"email":"[EMAIL_5]"}}});
    let (status, _, _) = call(&svc, req(answer)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let fwd = seen.last_json();
    assert_eq!(fwd["id"], "srv-4");
    assert_eq!(fwd["error"]["code"], -32602);
    assert!(fwd.get("result").is_none());
}

#[tokio::test]
async fn compressed_answers_are_never_released() {
    // The layer asks for no compression...
    let (svc, seen) = stack(PiiLayer::new("crm"));
    call(&svc, req_h(contact(1), &[("accept-encoding", "gzip, br")])).await;
    assert!(seen.last_header("accept-encoding").is_none());
    // ...and withholds a compressed answer it cannot inspect.
    let svc =
        ServiceBuilder::new()
            .layer(PiiLayer::new("crm"))
            .service_fn(|_req: Request<Body>| async move {
                let mut r = Response::new(full(format!("data: {EMAIL}\n\n")));
                r.headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                r.headers_mut()
                    .insert("content-encoding", "gzip".parse().unwrap());
                Ok::<_, Infallible>(r)
            });
    let (status, _, body) = call(&BoxCloneService::new(svc), req(contact(3))).await;
    no_raw(&body);
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(v["id"], 3);
    assert_eq!(v["error"]["code"], -32002);
}

#[tokio::test]
async fn get_stream_events_are_tokenized_in_the_session_scope() {
    let note = json!({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":format!("mailto:{EMAIL}")}});
    let events = format!(": stream open\n\nid: 1\ndata: {note}\n\n").into_bytes();
    let seen = Seen::default();
    let s2 = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::new("crm"))
        .service_fn(move |req: Request<Body>| {
            let events = events.clone();
            let seen = s2.clone();
            async move {
                if req.method() == http::Method::GET {
                    let mut r = Response::new(full(events));
                    r.headers_mut()
                        .insert("content-type", "text/event-stream".parse().unwrap());
                    return Ok::<_, Infallible>(r);
                }
                let (parts, body) = req.into_parts();
                let bytes = body.collect().await.unwrap().to_bytes();
                seen.calls.lock().unwrap().push((parts.headers, bytes));
                let mut r = Response::new(full(""));
                *r.status_mut() = StatusCode::ACCEPTED;
                Ok(r)
            }
        });
    let svc = BoxCloneService::new(svc);
    let get = Request::get("/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", "sess-9")
        .body(full(""))
        .unwrap();
    let (status, _, body) = call(&svc, get).await;
    assert_eq!(status, 200);
    no_raw(&body);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.starts_with(": stream open\n\nid: 1\ndata: "), "{text}");
    assert!(text.contains("\"uri\":\"mailto:[EMAIL_1]\""), "{text}");
    // The placeholder belongs to the session: a POST of the same session restores it.
    let sub = json!({"jsonrpc":"2.0","method":"notifications/x","params":{"uri":"mailto:[EMAIL_1]"}});
    call(&svc, req_h(sub.clone(), &[("mcp-session-id", "sess-9")])).await;
    assert_eq!(seen.last_json()["params"]["uri"], format!("mailto:{EMAIL}"));
    // Another session does not know it: the notification is dropped.
    let n = seen.count();
    call(&svc, req_h(sub, &[("mcp-session-id", "sess-10")])).await;
    assert_eq!(seen.count(), n);
}

#[tokio::test]
async fn input_required_round_trip() {
    // One core shared by the two stacks (same vault): the answer and the retried request.
    let layer = PiiLayer::new("crm");
    let seen = Seen::default();
    let s2 = seen.clone();
    let svc = ServiceBuilder::new().layer(layer).service_fn(move |req: Request<Body>| {
        let seen = s2.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            seen.calls.lock().unwrap().push((parts.headers, bytes.clone()));
            let msg: Value = serde_json::from_slice(&bytes).unwrap();
            let reply = if msg["params"].get("inputResponses").is_none() {
                json!({"jsonrpc":"2.0","id":msg["id"],"result":{
                    "resultType":"input_required",
                    "inputRequests":{"ask":{"method":"elicitation/create","params":{
                        "message":format!("Send the report to {EMAIL}?"),"mode":"form","requestedSchema":{"type":"object"}}}},
                    "requestState":"v1.c2VhbGVk"}})
            } else {
                json!({"jsonrpc":"2.0","id":msg["id"],"result":{"resultType":"complete","content":[{"type":"text","text":"done"}]}})
            };
            let mut r = Response::new(full(serde_json::to_vec(&reply).unwrap()));
            r.headers_mut().insert("content-type", "application/json".parse().unwrap());
            Ok::<_, Infallible>(r)
        }
    });
    let svc = BoxCloneService::new(svc);
    let (_, _, body) = call(&svc, req(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_report","arguments":{}}}))).await;
    no_raw(&body);
    let v = json_of(&body);
    assert_eq!(
        v["result"]["inputRequests"]["ask"]["params"]["message"],
        "Send the report to [EMAIL_1]?"
    );
    assert_eq!(v["result"]["requestState"], "v1.c2VhbGVk");
    let retry = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send_report","arguments":{},
        "inputResponses":{"ask":{"action":"accept","content":{"email":"[EMAIL_1]"}}},"requestState":"v1.c2VhbGVk"}});
    let (_, _, body) = call(&svc, req(retry)).await;
    assert_eq!(json_of(&body)["result"]["content"][0]["text"], "done");
    let fwd = seen.last_json();
    assert_eq!(fwd["params"]["inputResponses"]["ask"]["content"]["email"], EMAIL);
    assert_eq!(fwd["params"]["requestState"], "v1.c2VhbGVk");
}

/// A flow-policy-like hook: a placeholder may only go back to a server it came from.
struct OwnOriginsOnly {
    tokenized: std::sync::atomic::AtomicUsize,
}

impl mcp_pii_gateway::exchange::Hooks for OwnOriginsOnly {
    fn check_restore(
        &self,
        ctx: &mcp_pii_gateway::exchange::ExchangeCtx,
        request: Option<&mcp_pii_gateway::exchange::RequestInfo>,
        _msg: &Value,
        plan: &mcp_pii_gateway::rewrite::RestorePlan,
    ) -> mcp_pii_gateway::Result<()> {
        for u in &plan.uses {
            if !u.origins.contains(&ctx.server) {
                let tool = request.and_then(|r| r.tool.as_deref()).unwrap_or("-");
                return Err(mcp_pii_gateway::Error::policy_denied(format!(
                    "{} may not go to {} (tool {tool})",
                    u.placeholder, ctx.server
                )));
            }
        }
        Ok(())
    }
    fn tokenized(
        &self,
        _ctx: &mcp_pii_gateway::exchange::ExchangeCtx,
        _answers: Option<&mcp_pii_gateway::exchange::RequestInfo>,
        report: &mcp_pii_gateway::rewrite::TokenizeReport,
    ) -> mcp_pii_gateway::Result<()> {
        self.tokenized
            .fetch_add(report.placeholders.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn hooks_can_deny_flows_between_servers() {
    let hooks = Arc::new(OwnOriginsOnly {
        tokenized: Default::default(),
    });
    let crm_layer = PiiLayer::new("crm").hooks(hooks.clone());
    let core = crm_layer.core().clone();
    let (crm, crm_seen) = stack(crm_layer);
    let (mail, mail_seen) = stack(PiiLayer::with_core(core, "mail"));
    call(&crm, req(contact(1))).await;
    assert_eq!(hooks.tokenized.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Back to its origin: allowed.
    call(&crm, req(send(2, "[EMAIL_1]"))).await;
    assert_eq!(crm_seen.last_json()["params"]["arguments"]["to"], EMAIL);
    // To another server: denied, nothing forwarded.
    let (status, _, body) = call(&mail, req(send(3, "[EMAIL_1]"))).await;
    assert_eq!(status, 200);
    assert_eq!(mail_seen.count(), 0);
    let v = json_of(&body);
    assert_eq!(v["id"], 3);
    assert_eq!(v["error"]["code"], -32001);
    assert!(v["error"]["message"].as_str().unwrap().contains("tool send"));
    no_raw(&body);
}

/// SSE event ids reach the client tokenized; a resuming client's `Last-Event-ID` is restored
/// (or dropped when it cannot be).
#[tokio::test]
async fn sse_event_ids_are_tokenized_and_restored_on_resume() {
    let headers: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let h2 = headers.clone();
    let svc = ServiceBuilder::new()
        .layer(PiiLayer::new("crm"))
        .service_fn(move |req: Request<Body>| {
            let h2 = h2.clone();
            async move {
                h2.lock().unwrap().push(
                    req.headers()
                        .get("last-event-id")
                        .map(|v| v.to_str().unwrap().to_owned()),
                );
                let body = format!("id: {EMAIL}/7\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}}\n\n");
                let mut r = Response::new(full(body));
                r.headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                Ok::<_, Infallible>(r)
            }
        });
    let svc = BoxCloneService::new(svc);
    let get = |last: Option<&str>| {
        let mut b = Request::builder()
            .method("GET")
            .uri("/mcp")
            .header("accept", "text/event-stream");
        if let Some(l) = last {
            b = b.header("last-event-id", l);
        }
        b.body(full("")).unwrap()
    };
    let res = svc.clone().oneshot(get(None)).await.unwrap();
    let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.starts_with("id: [EMAIL_1]/7\n"), "{text}");
    svc.clone().oneshot(get(Some("[EMAIL_1]/7"))).await.unwrap();
    svc.clone().oneshot(get(Some("[EMAIL_9]/7"))).await.unwrap();
    let seen = headers.lock().unwrap().clone();
    assert_eq!(seen, [None, Some(format!("{EMAIL}/7")), None]);
}
