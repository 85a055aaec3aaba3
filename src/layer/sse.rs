//! Server-sent events, rewritten event by event as they arrive.
//!
//! [`SseRewriter`] is an incremental parser (WHATWG framing: LF, CR or CRLF line ends, a CR
//! at a chunk's end waits for the next chunk) that cuts the byte stream into event blocks,
//! passes every block that holds no PII through byte for byte, and rebuilds the others:
//! `data` lines become one `data:` line with the tokenized JSON-RPC message, while `id:`,
//! `event:`, `retry:` lines and comments stay where they were (comments and unknown fields are
//! tokenized as text: clients ignore them, but the bytes still reach the sandbox).
//!
//! Each block is limited in size; past the limit the stream fails closed: the rewriter emits
//! error responses for the exchange's unanswered requests and ends.
//!
//! ```
//! use mcp_pii_gateway::{exchange::{ExchangeCtx, PiiCore}, layer::sse::SseRewriter};
//! use mcp_pii_gateway::vault::ScopeId;
//! let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "crm");
//! let mut sse = SseRewriter::new(PiiCore::builtin(), ctx.into(), 1 << 20);
//! let mut out = Vec::new();
//! sse.push(b"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n", &mut out);
//! assert!(out.is_empty()); // the block is not finished yet
//! sse.push(b"\n", &mut out);
//! assert_eq!(out, b"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\n");
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::json;

use crate::exchange::{response_id, unanswered_errors, ExchangeCtx, PiiCore, ToModel};
use crate::jsonrpc::{error_object, UPSTREAM_FAILED};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Counts of what a stream carried, for the exchange's log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SseStats {
    /// Event blocks seen.
    pub events: u64,
    /// Blocks rebuilt because they held PII.
    pub rewritten: u64,
    /// Placeholders written (distinct per message, summed).
    pub placeholders: u64,
    /// Messages withheld (replaced by an error or dropped).
    pub withheld: u64,
}

/// Incremental SSE rewriter. Feed it chunks with [`push`](Self::push); call
/// [`finish`](Self::finish) at the end of the stream.
#[derive(Debug)]
pub struct SseRewriter {
    core: PiiCore,
    ctx: Arc<ExchangeCtx>,
    max_event: usize,
    /// The unfinished block: raw bytes since the last block boundary.
    buf: Vec<u8>,
    /// Where the current (unfinished) line starts in `buf`.
    line_start: usize,
    /// Where to resume scanning for a line end.
    scan: usize,
    /// Still at the very start of the stream (a BOM may follow).
    at_start: bool,
    /// The stream failed closed; everything after is discarded.
    failed: bool,
    answered: Vec<Value>,
    /// An event was withheld whole (unreadable, or dropped): the requests it may have
    /// answered get errors when the stream ends.
    unreadable: bool,
    stats: SseStats,
}

impl SseRewriter {
    /// A rewriter for one stream of exchange `ctx`; blocks larger than `max_event` bytes fail
    /// the stream closed.
    pub fn new(core: PiiCore, ctx: Arc<ExchangeCtx>, max_event: usize) -> SseRewriter {
        SseRewriter {
            core,
            ctx,
            max_event,
            buf: Vec::new(),
            line_start: 0,
            scan: 0,
            at_start: true,
            failed: false,
            answered: Vec::new(),
            unreadable: false,
            stats: SseStats::default(),
        }
    }

    /// What the stream carried so far.
    pub fn stats(&self) -> SseStats {
        self.stats
    }

    /// True once the stream failed closed (nothing more will be emitted).
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Feeds `chunk`; appends whatever is ready to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        self.buf.extend_from_slice(chunk);
        if self.at_start {
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return;
            }
            self.at_start = false;
            if self.buf.starts_with(BOM) {
                out.extend_from_slice(BOM);
                self.buf.drain(..BOM.len());
            }
        }
        self.scan_blocks(false, out);
        if !self.failed && self.buf.len() > self.max_event {
            self.fail(
                out,
                "an event in the server's stream exceeds the gateway's size limit",
            );
        }
    }

    /// Ends the stream: a trailing CR completes its line, and an unfinished block is discarded
    /// as the SSE specification says (a client would discard it too).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        self.scan_blocks(true, out);
        if self.unreadable {
            // An unreadable event may have been a response: the requests still unanswered
            // get an error rather than waiting on a stream that has ended.
            let err = error_object(
                UPSTREAM_FAILED,
                "an event in the server's stream could not be read and was withheld",
            );
            if let Some(msg) = unanswered_errors(&self.ctx, &self.answered, &err) {
                out.extend_from_slice(b"event: message\ndata: ");
                out.extend_from_slice(serialize(&msg).as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
        self.buf.clear();
        self.line_start = 0;
        self.scan = 0;
    }

    fn scan_blocks(&mut self, eof: bool, out: &mut Vec<u8>) {
        // Complete blocks are handled in place and drained once at the end: `done` bytes of
        // `buf` are finished; `line_start` and `scan` stay offsets into `buf` until then.
        let mut done = 0;
        loop {
            let Some(rel) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scan..]) else {
                self.scan = self.buf.len();
                break;
            };
            let i = self.scan + rel;
            let eol = if self.buf[i] == b'\r' {
                match self.buf.get(i + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None if eof => 1,
                    None => {
                        // A CR at the end of the data so far: an LF may follow.
                        self.scan = i;
                        break;
                    }
                }
            } else {
                1
            };
            let empty_line = i == self.line_start;
            self.line_start = i + eol;
            self.scan = self.line_start;
            if empty_line {
                let end = self.line_start;
                if end - done > self.max_event {
                    self.fail(
                        out,
                        "an event in the server's stream exceeds the gateway's size limit",
                    );
                    return;
                }
                let buf = std::mem::take(&mut self.buf);
                self.block(&buf[done..end], out);
                if self.failed {
                    // `fail` emptied the buffer for good.
                    return;
                }
                self.buf = buf;
                done = end;
            }
        }
        if done > 0 {
            self.buf.drain(..done);
            self.line_start -= done;
            self.scan -= done;
        }
    }

    /// One complete block, including its terminating empty line.
    fn block(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        self.stats.events += 1;
        let text = match std::str::from_utf8(raw) {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(raw),
        };
        let lines = split_lines(&text);
        let mut data: Option<Cow<'_, str>> = None;
        let mut has_other_text = false;
        for line in &lines {
            let (field, value) = field_value(line);
            match field {
                "data" => match &mut data {
                    Some(d) => {
                        let d = d.to_mut();
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(Cow::Borrowed(value)),
                },
                "" => {}
                // `id`, `event` and `retry` values reach the client too: scanned like any text.
                _ => has_other_text = true,
            }
            if line.starts_with(':') {
                has_other_text = true;
            }
        }

        // What goes in place of the data lines: Keep (unchanged), Replace(new data) or Drop.
        let mut new_data: Option<Option<String>> = None;
        if let Some(d) = data.as_deref() {
            if !d.trim().is_empty() {
                new_data = self.rewrite_data(d);
            }
        }
        // Comments and unknown fields: tokenize their text.
        let mut new_lines: Vec<Option<Cow<'_, str>>> = Vec::new();
        let mut other_changed = false;
        if has_other_text {
            for line in &lines {
                let (field, _) = field_value(line);
                if line.is_empty() || field == "data" {
                    new_lines.push(None);
                    continue;
                }
                if field == "retry" {
                    // Only digits are a valid reconnection time; clients ignore anything else.
                    let (_, v) = field_value(line);
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                        other_changed = true;
                        new_lines.push(Some(Cow::Borrowed("")));
                    } else {
                        new_lines.push(None);
                    }
                    continue;
                }
                match self.core.tokenize_text(line, &self.ctx) {
                    Ok(Some(t)) => {
                        other_changed = true;
                        new_lines.push(Some(Cow::Owned(t)));
                    }
                    Ok(None) => new_lines.push(None),
                    Err(_) => {
                        // Fail closed: drop the line.
                        other_changed = true;
                        new_lines.push(Some(Cow::Borrowed("")));
                    }
                }
            }
        }
        if new_data.is_none() && !other_changed {
            out.extend_from_slice(raw);
            return;
        }
        self.stats.rewritten += 1;
        // Rebuild the block, LF line ends.
        let start = out.len();
        let mut data_written = false;
        for (k, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (field, _) = field_value(line);
            match field {
                "data" => match &new_data {
                    None => push_line(out, line),
                    Some(None) => {}
                    Some(Some(d)) => {
                        if !data_written {
                            for part in d.split('\n') {
                                out.extend_from_slice(b"data: ");
                                out.extend_from_slice(part.as_bytes());
                                out.push(b'\n');
                            }
                            data_written = true;
                        }
                    }
                },
                // A dropped message takes its event type with it.
                "event" if matches!(new_data, Some(None)) => {}
                _ => match new_lines.get(k) {
                    Some(Some(t)) if t.is_empty() => {}
                    Some(Some(t)) => push_line(out, t),
                    _ => push_line(out, line),
                },
            }
        }
        if out.len() > start {
            out.push(b'\n');
        }
    }

    /// The new data for a block's data: `None` keep, `Some(None)` drop, `Some(Some(d))` replace.
    fn rewrite_data(&mut self, data: &str) -> Option<Option<String>> {
        let mut parsed = match json::parse(data.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                // Never fall back to the raw text: what a client would decode from it is
                // unknown. The request it may have answered gets an error when the stream ends.
                tracing::warn!(
                    server = %self.ctx.server,
                    "an event in the server's stream cannot be read ({e}); it was withheld"
                );
                self.stats.withheld += 1;
                self.unreadable = true;
                return Some(None);
            }
        };
        let msg = &mut parsed.value;
        let ids: Vec<Value> = match &*msg {
            Value::Array(items) => items.iter().filter_map(response_id).collect(),
            other => response_id(other).into_iter().collect(),
        };
        let outcome = self.core.to_model(msg, &self.ctx);
        self.answered.extend(ids);
        match outcome {
            ToModel::Unchanged if parsed.is_exact() => None,
            ToModel::Unchanged => Some(Some(into_string(parsed.to_vec()))),
            ToModel::Tokenized { placeholders, .. } => {
                self.stats.placeholders += placeholders as u64;
                Some(Some(into_string(parsed.to_vec())))
            }
            ToModel::Replaced => {
                self.stats.withheld += 1;
                // Changed shape: the source tokens no longer line up (see `Parsed::to_vec`).
                Some(Some(serialize(&parsed.value)))
            }
            ToModel::Dropped => {
                self.stats.withheld += 1;
                self.unreadable = true;
                Some(None)
            }
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, why: &str) {
        tracing::warn!(server = %self.ctx.server, "{why}; the stream was ended");
        self.failed = true;
        self.buf = Vec::new();
        let err = error_object(UPSTREAM_FAILED, &format!("{why}; the gateway ended the stream"));
        if let Some(msg) = unanswered_errors(&self.ctx, &self.answered, &err) {
            out.extend_from_slice(b"event: message\ndata: ");
            out.extend_from_slice(serialize(&msg).as_bytes());
            out.extend_from_slice(b"\n\n");
        }
    }
}

fn serialize(v: &Value) -> String {
    into_string(json::to_vec_sized(v, 256))
}

/// The JSON writers emit UTF-8 only (they copy `str`s, UTF-8 source tokens and ASCII).
fn into_string(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

/// Splits a block into its lines (LF, CR or CRLF ends), without the ends.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let b = text.as_bytes();
    let mut start = 0;
    while let Some(rel) = memchr::memchr2(b'\n', b'\r', &b[start..]) {
        let i = start + rel;
        lines.push(&text[start..i]);
        start = if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i + 2
        } else {
            i + 1
        };
    }
    if start < b.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// A line's field name and value (one leading space stripped); comments have field `""`.
fn field_value(line: &str) -> (&str, &str) {
    if line.starts_with(':') {
        return ("", "");
    }
    match line.split_once(':') {
        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
        None => (line, ""),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::ScopeId;

    fn rw() -> SseRewriter {
        let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "crm");
        SseRewriter::new(PiiCore::builtin(), Arc::new(ctx), 64)
    }

    /// Feeds `input` split at every position given, returns the output.
    fn feed(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut r = rw();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts {
            r.push(&input[last..c], &mut out);
            last = c;
        }
        r.push(&input[last..], &mut out);
        r.finish(&mut out);
        out
    }

    #[test]
    fn framing_passes_through_at_every_split() {
        // No data that needs rewriting: output equals input for every split point.
        let input: &[u8] = b": keep-alive\r\nid: 7\r\nretry: 3000\r\n\r\nevent: x\rdata:\r\rid: 8\n\n";
        for cut in 0..=input.len() {
            assert_eq!(feed(input, &[cut]), input, "cut at {cut}");
        }
        for a in 0..input.len() {
            for b in a..input.len() {
                assert_eq!(feed(input, &[a, b]), input, "cuts at {a},{b}");
            }
        }
    }

    #[test]
    fn incomplete_final_block_is_discarded() {
        assert_eq!(feed(b"id: 1\n\nid: 2\ndata: x", &[]), b"id: 1\n\n");
    }

    #[test]
    fn bom_is_kept() {
        let input = b"\xEF\xBB\xBFid: 1\n\n";
        for cut in 0..input.len() {
            assert_eq!(feed(input, &[cut]), input);
        }
    }

    #[test]
    fn oversized_block_fails_closed_with_errors_for_unanswered_requests() {
        let ctx = ExchangeCtx::new(ScopeId::new("anonymous", "default"), "crm").with_requests(vec![
            crate::exchange::RequestInfo::from_message(
                &serde_json::json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t"}}),
            )
            .unwrap(),
        ]);
        let mut r = SseRewriter::new(PiiCore::builtin(), Arc::new(ctx), 16);
        let mut out = Vec::new();
        r.push(b"data: 0123456789abcdef0123456789", &mut out);
        assert!(r.is_failed());
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("event: message\ndata: {"), "{text}");
        assert!(text.contains("\"id\":5"));
        assert!(!text.contains("0123456789"));
        r.push(b"\n\n", &mut out);
        r.finish(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }

    #[test]
    fn lines_and_fields() {
        assert_eq!(split_lines("a\r\nb\rc\nd"), vec!["a", "b", "c", "d"]);
        assert_eq!(field_value("data: x: y"), ("data", "x: y"));
        assert_eq!(field_value("data:x"), ("data", "x"));
        assert_eq!(field_value(": c"), ("", ""));
        assert_eq!(field_value("data"), ("data", ""));
    }
}
