//! The stdio front: the gateway speaks MCP on stdin/stdout (newline-delimited JSON-RPC) toward
//! a client that spawned it, and relays to one server's stack.
//!
//! Internally it is a Streamable HTTP client of that stack, in process: every line becomes a
//! POST (with the session id once `initialize` returned one, and the `MCP-Protocol-Version`,
//! `Mcp-Method` and `Mcp-Name` headers of the stateless revision when the request's `_meta`
//! carries a protocol version), JSON and SSE answers become lines, and a GET stream carries the
//! server's unsolicited messages. So the tokenize/restore layers work exactly as over HTTP.
//! Requests run concurrently (a tool call can wait for a sampling answer sent on a later line);
//! `initialize`, notifications and responses are relayed in order.
//!
//! Input is read as bytes with bounded memory: a line longer than the limit (`[limits]
//! max_body_bytes`) is discarded as it is read, and answered with a JSON-RPC error carrying the
//! request's `id` when it can be read from the line's first 64 KiB. A line that is not JSON (or
//! not UTF-8) gets a parse error (`-32700`), with its id when one can be read; the relay goes on.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use bytes::Bytes;

use crate::json;
use crate::jsonrpc::{
    error_object, error_response, scan_prefix, INVALID_REQUEST, PARSE_ERROR, UPSTREAM_FAILED,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Mutex};

use super::body::{empty, full, Body};
use super::front::ServerService;
use super::lines::{read_line_bounded, Ends, LineRead};
use super::sse::SseParser;
use super::upstream::ClientName;

const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
/// How much of an oversized or unparsable line is kept to find its `id`.
const ID_PREFIX: usize = 64 << 10;

struct Shared {
    svc: ServerService,
    client: ClientName,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    out: mpsc::UnboundedSender<Vec<u8>>,
}

/// Relays MCP between `input`/`output` and `svc` until `input` ends; then ends the session.
/// `client` names the scope owner (e.g. `stdio`). Lines are limited to the default
/// `[limits] max_body_bytes`; see [`run_limited`].
pub async fn run<R, W>(svc: ServerService, client: &str, input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let max_line = crate::config::Limits::default().max_body_bytes;
    run_limited(svc, client, max_line, input, output).await
}

/// [`run`] with input lines limited to `max_line` bytes (use `[limits] max_body_bytes`, the
/// limit the stack applies to a request). A longer line is discarded without being buffered and
/// answered with a JSON-RPC error (`-32600`) naming the limit, with the request's id when it can
/// be read from the line's start.
pub async fn run_limited<R, W>(
    svc: ServerService,
    client: &str,
    max_line: usize,
    input: R,
    mut output: W,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(mut line) = out_rx.recv().await {
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let sh = Arc::new(Shared {
        svc,
        client: ClientName(Arc::from(client)),
        session: Mutex::new(None),
        version: Mutex::new(None),
        out: out_tx,
    });
    let mut input = BufReader::new(input);
    let mut buf = Vec::with_capacity(8192);
    let mut get_started = false;
    loop {
        buf.clear();
        let l = match read_line_bounded(&mut input, &mut buf, max_line, ID_PREFIX, Ends::Newline).await? {
            LineRead::Eof => break,
            LineRead::TooLong(n) => {
                tracing::warn!(
                    bytes = n,
                    limit = max_line,
                    "stdio client sent a line over the size limit; answered with an error"
                );
                let msg = format!(
                    "request larger than the gateway's size limit ([limits] max_body_bytes = {max_line} bytes); nothing was forwarded"
                );
                reject_line(&sh, &buf, INVALID_REQUEST, &msg);
                continue;
            }
            LineRead::Line => buf.strip_suffix(b"\r").unwrap_or(&buf),
        };
        if l.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Read as the layers will read it (numbers, escapes and all); the line itself is what
        // is relayed.
        let msg: Value = match json::parse(l) {
            Ok(p) => p.value,
            Err(e) => {
                reject_line(&sh, l, PARSE_ERROR, &format!("parse error: {e}"));
                continue;
            }
        };
        let raw = Bytes::copy_from_slice(l);
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        let is_request = !method.is_empty() && msg.get("id").is_some();
        if method == "initialize" || !is_request {
            post(&sh, msg, raw).await;
            if !get_started && sh.session.lock().await.is_some() {
                get_started = true;
                tokio::spawn(get_stream(sh.clone()));
            }
        } else {
            let sh = sh.clone();
            tokio::spawn(async move { post(&sh, msg, raw).await });
        }
    }
    // Input ended: end the session upstream.
    if sh.session.lock().await.is_some() {
        let req = base_request(&sh, Method::DELETE, empty()).await;
        let _ = super::front::call_service(sh.svc.clone(), req).await;
    }
    drop(sh);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(())
}

async fn base_request(sh: &Shared, method: Method, body: Body) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = http::Uri::from_static("/mcp");
    let h = req.headers_mut();
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(s) = sh.session.lock().await.as_ref() {
        h.insert("mcp-session-id", s.clone());
    }
    if let Some(v) = sh.version.lock().await.as_ref() {
        h.insert("mcp-protocol-version", v.clone());
    }
    req.extensions_mut().insert(sh.client.clone());
    req
}

/// `Mcp-Name`/`Mcp-Param` value encoding of the 2026-07-28 revision: printable ASCII without
/// surrounding whitespace verbatim, else `=?base64?...?=`.
fn header_value(s: &str) -> Option<HeaderValue> {
    let plain = s.bytes().all(|b| (0x20..=0x7e).contains(&b)) && s.trim() == s;
    if plain {
        HeaderValue::from_str(s).ok()
    } else {
        HeaderValue::from_str(&format!("=?base64?{}?=", base64(s.as_bytes()))).ok()
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Relays one client message (`msg`, read from the line `raw`, which is what is sent).
async fn post(sh: &Shared, msg: Value, raw: Bytes) {
    let id = msg.get("id").cloned();
    let is_request = msg.get("method").is_some() && id.is_some();
    let mut req = base_request(sh, Method::POST, full(raw)).await;
    if let Some(v) = msg.pointer(&format!(
        "/params/_meta/{}",
        PROTOCOL_VERSION_META.replace('/', "~1")
    )) {
        // Stateless revision: per-request version and mirrored headers.
        let h = req.headers_mut();
        if let Some(v) = v.as_str().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert("mcp-protocol-version", v);
        }
        if let Some(m) = msg.get("method").and_then(Value::as_str).and_then(header_value) {
            h.insert("mcp-method", m);
        }
        let name = msg.pointer("/params/name").or_else(|| msg.pointer("/params/uri"));
        if let Some(n) = name.and_then(Value::as_str).and_then(header_value) {
            h.insert("mcp-name", n);
        }
    }
    let is_init = msg.get("method").and_then(Value::as_str) == Some("initialize");
    let res = match super::front::call_service(sh.svc.clone(), req).await {
        Ok(r) => r,
        Err(_) => {
            if is_request {
                error_line(sh, id.as_ref(), "gateway failed to relay the request");
            }
            return;
        }
    };
    let status = res.status();
    if is_init {
        if let Some(s) = res.headers().get("mcp-session-id") {
            *sh.session.lock().await = Some(s.clone());
        }
    }
    let done = relay_body(sh, res).await;
    if is_init {
        // Later requests carry the negotiated version, as Streamable HTTP clients do.
        if let Some(v) = done
            .as_ref()
            .and_then(|v| v.pointer("/result/protocolVersion"))
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            *sh.version.lock().await = Some(v);
        }
    }
    if is_request && done.is_none() && status != StatusCode::ACCEPTED {
        error_line(sh, id.as_ref(), "upstream answered without a response");
    }
}

/// Answers a line that cannot be relayed with JSON-RPC error `code`: with the request's id when
/// `line`'s start is a request whose id can be read, else with `id: null`.
fn reject_line(sh: &Shared, line: &[u8], code: i64, msg: &str) {
    let scan = scan_prefix(line);
    let id = match scan.id {
        // A response (to a server-initiated request) cannot be answered: `id: null` tells the
        // client something was dropped without claiming it was a request.
        Some(id) if !scan.outcome || scan.method => id,
        _ => Value::Null,
    };
    send_error(sh, id, code, msg);
}

fn error_line(sh: &Shared, id: Option<&Value>, msg: &str) {
    send_error(sh, id.cloned().unwrap_or(Value::Null), UPSTREAM_FAILED, msg);
}

/// Writes a JSON-RPC error response to the client.
fn send_error(sh: &Shared, id: Value, code: i64, msg: &str) {
    let e = error_response(id, error_object(code, msg));
    let _ = sh
        .out
        .send(serde_json::to_vec(&e).expect("a serde_json::Value always serializes"));
}

/// Writes every message of a JSON or SSE body to the output; returns the last response seen.
async fn relay_body(sh: &Shared, res: http::Response<Body>) -> Option<Value> {
    let sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = res.into_body();
    let mut last = None;
    if sse {
        let mut p = SseParser::default();
        while let Some(Ok(f)) = body.frame().await {
            let Ok(data) = f.into_data() else { continue };
            for ev in p.push(&data) {
                if ev.data.is_empty() {
                    continue;
                }
                if let Some((v, line)) = one_line(ev.data.as_bytes()) {
                    if v.get("method").is_none() && v.get("id").is_some() {
                        last = Some(v);
                    }
                    let _ = sh.out.send(line);
                }
            }
        }
    } else if let Ok(c) = body.collect().await {
        let bytes = c.to_bytes();
        if let Some((v, line)) = one_line(&bytes) {
            last = Some(v);
            let _ = sh.out.send(line);
        }
    }
    last
}

/// A message the stack answered, as one output line: compact, with its own tokens (numbers
/// pass byte for byte). `None` (logged) for a body that is not JSON, which the layers never
/// release.
fn one_line(body: &[u8]) -> Option<(Value, Vec<u8>)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match json::parse(body) {
        Ok(p) => {
            let line = p.to_vec();
            Some((p.value, line))
        }
        Err(e) => {
            tracing::warn!("the gateway's answer cannot be read ({e}); not written to stdout");
            None
        }
    }
}

async fn get_stream(sh: Arc<Shared>) {
    loop {
        let req = base_request(&sh, Method::GET, empty()).await;
        let Ok(res) = super::front::call_service(sh.svc.clone(), req).await else {
            return;
        };
        if !res.status().is_success() {
            return; // 405: the server offers no stream; 404: the session ended.
        }
        relay_body(&sh, res).await;
        if sh.out.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[test]
    fn header_encoding() {
        assert_eq!(header_value("echo").unwrap(), "echo");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64("mailto:é".as_bytes()), "bWFpbHRvOsOp");
        assert_eq!(header_value("é").unwrap(), "=?base64?w6k=?=");
    }
}
