//! JSON-RPC as the gateway writes it: the error codes it answers with, the one builder of
//! error responses, and the few things it reads from a message without parsing it whole.
//!
//! Every failure the gateway produces reaches the client as
//! `{"jsonrpc":"2.0","id":..,"error":{"code":..,"message":..}}`. Messages name placeholders,
//! kinds, JSON paths and servers, never values from the request. The HTTP side (statuses, the
//! response around such a message) is [`crate::layer::response`].
//!
//! | code | constant | meaning |
//! |---|---|---|
//! | -32700 | [`PARSE_ERROR`] | the message is not JSON the gateway can read |
//! | -32600 | [`INVALID_REQUEST`] | not a message the gateway relays, or refused before reading it (Host, Origin, size and session limits) |
//! | -32601 | [`METHOD_NOT_FOUND`] | no such method (the demo server) |
//! | -32602 | [`INVALID_PARAMS`] | an unknown placeholder, or other bad input |
//! | -32603 | [`INTERNAL_ERROR`] | the gateway failed (vault unavailable, audit log, a bug) |
//! | -32001 | [`ACCESS_DENIED`] | a flow policy denied the request, or the client lacks a valid token or may not use the server |
//! | -32002 | [`UPSTREAM_FAILED`] | the server failed, timed out, exited, or sent what the gateway cannot relay |
//! | -32003 | [`SESSION_NOT_FOUND`] | the MCP session is unknown, ended or expired: initialize a new one |
//!
//! ```
//! use mcp_pii_gateway::jsonrpc::{error_object, error_response, UPSTREAM_FAILED};
//! let msg = error_response(serde_json::json!(7), error_object(UPSTREAM_FAILED, "upstream crm exited"));
//! assert_eq!(msg.to_string(), r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32002,"message":"upstream crm exited"}}"#);
//! ```

use serde_json::{json, Map, Value};

/// The message is not JSON the gateway can read.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC message the gateway relays, or a request refused before it was read (Host,
/// Origin, body size, too many sessions or processes, a method other than POST/GET/DELETE).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid parameters: an unknown placeholder, or other bad input.
pub const INVALID_PARAMS: i64 = -32602;
/// The gateway itself failed (the vault or session store is unavailable, the audit log cannot
/// be written, a bug).
pub const INTERNAL_ERROR: i64 = -32603;
/// Access denied: a flow policy denied the request, or the client has no valid bearer token or
/// may not use the server.
pub const ACCESS_DENIED: i64 = -32001;
/// The upstream server failed: it exited, timed out, is unreachable, or sent something the
/// gateway cannot relay.
pub const UPSTREAM_FAILED: i64 = -32002;
/// The MCP session (`Mcp-Session-Id`) is unknown, ended or expired; the client initializes a
/// new one. Sent with HTTP 404 (421 when the session runs on another replica).
pub const SESSION_NOT_FOUND: i64 = -32003;

/// A JSON-RPC error object `{"code":code,"message":message}`.
pub fn error_object(code: i64, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// A JSON-RPC error response `{"jsonrpc":"2.0","id":id,"error":error}`.
pub fn error_response(id: Value, error: Value) -> Value {
    let mut m = Map::with_capacity(3);
    m.insert("jsonrpc".into(), Value::String("2.0".into()));
    m.insert("id".into(), id);
    m.insert("error".into(), error);
    Value::Object(m)
}

/// The `id` of a single JSON-RPC request in `body`, if it parses and has one.
pub fn request_id(body: &[u8]) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<IdOnly>(body).ok().and_then(|m| m.id)
}

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
