//! JSON-RPC error responses made by the gateway itself.
//!
//! Every failure the gateway produces becomes `{"jsonrpc":"2.0","id":..,"error":{..}}` with an
//! HTTP status that says whose fault it was. Messages never hold values from the request.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use super::body::{full, Body};
use crate::error::{Error, Origin};

/// JSON-RPC error code: the session is unknown or expired (re-initialize).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// JSON-RPC error code for gateway-level rejections (Host, Origin, auth, limits).
pub const GATEWAY_REJECTED: i64 = -32600;

/// A JSON-RPC error response body.
pub fn error_body(id: Option<&Value>, code: i64, message: &str) -> Vec<u8> {
    let v = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": {"code": code, "message": message}});
    serde_json::to_vec(&v).expect("a json! value always serializes")
}

/// An HTTP response carrying a JSON-RPC error.
pub fn error_response(status: StatusCode, id: Option<&Value>, code: i64, message: &str) -> Response<Body> {
    let mut r = Response::new(full(error_body(id, code, message)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The HTTP status for a gateway [`Error`].
pub fn status_for(e: &Error) -> StatusCode {
    if e.is_policy_denied() {
        return StatusCode::FORBIDDEN;
    }
    match e.origin() {
        Origin::Client => StatusCode::BAD_REQUEST,
        Origin::Upstream => StatusCode::BAD_GATEWAY,
        Origin::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response for a gateway [`Error`] answering request `id`.
pub fn from_error(e: &Error, id: Option<&Value>) -> Response<Body> {
    error_response(status_for(e), id, e.jsonrpc_code(), &e.to_string())
}

/// The `id` of a single JSON-RPC request in `body`, if it parses and has one.
pub fn request_id(body: &[u8]) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<IdOnly>(body).ok().and_then(|m| m.id)
}

/// JSON-RPC error code for upstream failures (the server exited, timed out, or sent something
/// the gateway cannot relay).
pub const UPSTREAM_FAILED: i64 = -32002;

/// What the first bytes of a JSON-RPC message say about its top level, for a message too large
/// to parse whole: only its prefix was kept.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PrefixScan {
    /// The top-level `id` (a string or a number) when exactly one complete `"id"` member appears
    /// in the prefix; `None` when there is none, it is cut off, or it is ambiguous.
    pub id: Option<Value>,
    /// A top-level `"method"` member appears: a request or a notification.
    pub method: bool,
    /// A top-level `"result"` or `"error"` member appears: a response.
    pub outcome: bool,
}

/// Scans `prefix`, the start of one JSON-RPC object (possibly cut anywhere), for its top-level
/// `id`, `method`, `result` and `error` members without parsing the rest. Members nested in
/// other values are skipped (strings and escapes honoured); a prefix that is not an object, or
/// is malformed, yields what was read before the problem. Linear in `prefix.len()`.
pub fn scan_prefix(prefix: &[u8]) -> PrefixScan {
    let b = prefix;
    let mut out = PrefixScan::default();
    let mut ids = 0usize;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return out;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            break; // `}`, the end of the prefix, or not JSON
        }
        let Some(key_end) = string_end(b, i) else { break };
        let key = &b[i..key_end];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            break;
        }
        i = skip_ws(b, i + 1);
        let key = key_name(key);
        match key.as_deref() {
            Some("method") => out.method = true,
            Some("result" | "error") => out.outcome = true,
            _ => {}
        }
        let Some(value_end) = value_end(b, i) else { break };
        if key.as_deref() == Some("id") {
            ids += 1;
            out.id = serde_json::from_slice::<Value>(&b[i..value_end])
                .ok()
                .filter(|v| v.is_string() || v.is_number());
        }
        i = skip_ws(b, value_end);
        if b.get(i) != Some(&b',') {
            break;
        }
        i += 1;
    }
    if ids > 1 {
        // Duplicate keys: which one a parser keeps is not ours to guess.
        out.id = None;
    }
    out
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the string whose opening quote is at `i`, if it ends within `b`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    None
}

/// The index after the value starting at `i`, if it ends within `b` (a scalar must be followed
/// by a delimiter, or it might be cut short).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let n = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))?;
            (n > 0).then_some(i + n)
        }
    }
}

/// A member name (the string with its quotes), decoded only when it holds escapes.
fn key_name(raw: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(std::borrow::Cow::Borrowed);
    }
    serde_json::from_slice::<String>(raw)
        .ok()
        .map(std::borrow::Cow::Owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(s: &str) -> Option<Value> {
        scan_prefix(s.as_bytes()).id
    }

    #[test]
    fn prefix_scan_finds_the_top_level_id() {
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":7,"result":{"x":"aaaa"#),
            Some(json!(7))
        );
        assert_eq!(
            id(r#" { "id" : "a\"b" , "method":"x","params":{"#),
            Some(json!("a\"b"))
        );
        assert_eq!(id(r#"{"\u0069d":-3,"method":"m"}"#), Some(json!(-3)));
        // Nested ids, ids inside strings and cut-off values are not the message's.
        assert_eq!(id(r#"{"params":{"id":1},"x":"\"id\":2","id":3}"#), Some(json!(3)));
        assert_eq!(id(r#"{"result":{"id":1,"content":[{"id":2}],"more":"#), None);
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":12"#), None);
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":"ab"#), None);
        // Not an id JSON-RPC allows, duplicates, not an object, garbage.
        assert_eq!(id(r#"{"id":null,"error":{}}"#), None);
        assert_eq!(id(r#"{"id":{"n":1},"result":1}"#), None);
        assert_eq!(id(r#"{"id":1,"id":2,"result":"#), None);
        assert_eq!(id(r#"[{"id":1,"result":{}}]"#), None);
        assert_eq!(id("\u{0}\u{ff}garbage"), None);
        assert_eq!(id(""), None);
        assert_eq!(id(r#"{"a":tru"#), None);
        assert_eq!(
            scan_prefix(b"{\"s\":\"\xff\xfe\",\"id\":5,\"x\":").id,
            Some(json!(5))
        );
    }

    #[test]
    fn prefix_scan_tells_requests_from_responses() {
        let s = scan_prefix(br#"{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"#);
        assert!(s.method && !s.outcome);
        let s = scan_prefix(br#"{"jsonrpc":"2.0","id":1,"result":"xxxxxxx"#);
        assert!(!s.method && s.outcome);
        let s = scan_prefix(br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"#);
        assert!(s.method && s.id.is_none());
        let s = scan_prefix(br#"{"jsonrpc":"2.0","result":{"method":"x"}"#);
        assert!(!s.method && s.outcome);
    }
}
