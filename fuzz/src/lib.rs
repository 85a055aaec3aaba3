//! Shared pieces of the fuzz targets: the leak oracle, a client's reading of SSE streams, and a
//! small grammar of JSON-RPC messages sprinkled with (made-up) emails and phone numbers.
//!
//! All data here is invented: `example.org`/`example.com` addresses and 555 numbers.

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::json;
use serde_json::Value;

pub mod grammar;
pub mod text;

/// The built-in detector, compiled once per process.
pub fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(Detector::builtin)
}

/// Prints a generated input when `PII_FUZZ_DEBUG=1` is set (to turn a crash into a readable
/// reproducer).
pub fn debug(what: &str, text: &[u8]) {
    static D: OnceLock<bool> = OnceLock::new();
    if *D.get_or_init(|| std::env::var_os("PII_FUZZ_DEBUG").is_some_and(|v| v == "1")) {
        eprintln!("{what}: {:?}", String::from_utf8_lossy(text));
    }
}

/// Byte ranges of placeholder-shaped text (`[EMAIL_1]`, `[PHONE_12]`) in `s`.
pub fn placeholder_ranges(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit() || b[j] == b'_') {
                j += 1;
            }
            if j < b.len() && b[j] == b']' {
                let inner = &s[i + 1..j];
                if let Some((kind, n)) = inner.rsplit_once('_') {
                    if matches!(kind, "EMAIL" | "PHONE")
                        && !n.is_empty()
                        && !n.starts_with('0')
                        && n.parse::<u64>().is_ok()
                    {
                        out.push((i, j + 1));
                    }
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The first detector match in `s` that is not inside one placeholder: `Some(match text)`.
pub fn pii_outside_placeholders(s: &str) -> Option<String> {
    let d = detector();
    let spans = d.find(s);
    if spans.is_empty() {
        return None;
    }
    let ph = placeholder_ranges(s);
    for sp in spans {
        if !ph.iter().any(|&(a, b)| a <= sp.start && sp.end <= b) {
            return Some(s[sp.start..sp.end].to_owned());
        }
    }
    None
}

/// True for a string the rewriter treats as a base64 blob (mirrors `rewrite::walk::is_base64`).
fn is_base64(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return false;
    }
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    body.iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Where a value sits, for the documented exemptions of the leak rule.
#[derive(Clone, Copy, PartialEq)]
enum At {
    /// A batch (top-level array).
    Batch,
    /// A message (top level, or a batch element).
    Top,
    /// Anything below.
    Inner,
}

/// Asserts the leak rule on a value a client decoded from what the gateway released: no string
/// or member name holds a detector match outside placeholders. Exempt, as documented in
/// `src/rewrite/mod.rs`: well-formed base64 in `blob` (with a string `uri`) and in `data` of
/// `image`/`audio` items.
pub fn assert_no_leak(v: &Value, what: &str) {
    let at = if v.is_array() { At::Batch } else { At::Top };
    let mut stack: Vec<(&Value, At, String)> = vec![(v, at, String::new())];
    while let Some((v, at, path)) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(m) = pii_outside_placeholders(s) {
                    panic!("LEAK in {what} at {path:?}: {m:?} released in string {s:?}");
                }
            }
            Value::Array(a) => {
                let child = if at == At::Batch { At::Top } else { At::Inner };
                for (i, e) in a.iter().enumerate() {
                    stack.push((e, child, format!("{path}/{i}")));
                }
            }
            Value::Object(m) => {
                let skip_blob =
                    m.get("uri").is_some_and(Value::is_string) && m.get("blob").is_some_and(is_base64);
                let skip_data = matches!(m.get("type").and_then(Value::as_str), Some("image" | "audio"))
                    && m.get("data").is_some_and(is_base64);
                for (k, e) in m {
                    if let Some(found) = pii_outside_placeholders(k) {
                        panic!("LEAK in {what} at {path:?}: {found:?} released in member name {k:?}");
                    }
                    if (skip_blob && k == "blob") || (skip_data && k == "data") {
                        continue;
                    }
                    stack.push((e, At::Inner, format!("{path}/{k}")));
                }
            }
            _ => {}
        }
    }
}

/// Parses what the gateway released as JSON (our parser reads as clients read) and asserts the
/// leak rule on it. Released JSON must always be readable.
pub fn assert_released_json(bytes: &[u8], what: &str) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match json::parse(bytes) {
        Ok(p) => assert_no_leak(&p.value, what),
        Err(e) => panic!(
            "{what}: the gateway released JSON it cannot read back ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Reads an SSE stream as a client (WHATWG EventSource) would and asserts the leak rule: every
/// line except `data` lines is checked as raw text, and every dispatched event's data is decoded
/// as JSON and checked.
pub fn assert_released_sse(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut data: Option<String> = None;
    let b = text.as_bytes();
    let mut start = 0;
    // Lines end in LF, CR or CRLF; an unterminated last line is never dispatched.
    while let Some(rel) = b[start..].iter().position(|&c| c == b'\n' || c == b'\r') {
        let i = start + rel;
        let line = &text[start..i];
        start = if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i + 2
        } else {
            i + 1
        };
        if line.is_empty() {
            if let Some(d) = data.take() {
                if !d.trim().is_empty() {
                    assert_released_json(d.as_bytes(), what);
                }
            }
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
            continue;
        }
        if let Some(m) = pii_outside_placeholders(line) {
            panic!("LEAK in {what}: {m:?} released in SSE line {line:?}");
        }
    }
}

/// Splits `data` into chunks at positions drawn from `u` (at most `max` cuts).
pub fn chunks<'d>(u: &mut Unstructured<'_>, data: &'d [u8], max: usize) -> Result<Vec<&'d [u8]>> {
    let mut cuts: Vec<usize> = Vec::new();
    let n = u.int_in_range(0..=max)?;
    for _ in 0..n {
        if data.is_empty() {
            break;
        }
        cuts.push(u.int_in_range(0..=data.len())?);
    }
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(&data[last..c]);
        last = c;
    }
    out.push(&data[last..]);
    Ok(out)
}
