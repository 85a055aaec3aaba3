//! A small incremental parser for `text/event-stream` bodies (the parts MCP uses: `event`,
//! `id`, multi-line `data`; comments and `retry` are skipped).
//!
//! ```
//! use mcp_pii_gateway::proxy::sse::SseParser;
//! let mut p = SseParser::default();
//! assert!(p.push(b"event: message\ndata: {\"a\"").is_empty());
//! let ev = p.push(b":1}\n\n");
//! assert_eq!(ev[0].data, "{\"a\":1}");
//! assert_eq!(ev[0].event.as_deref(), Some("message"));
//! ```

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field.
    pub event: Option<String>,
    /// `id:` field.
    pub id: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: feed chunks, get complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    cur: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, &mut out);
            } else {
                self.line.push(b);
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            let ev = std::mem::take(&mut self.cur);
            if self.has_data || ev.id.is_some() {
                out.push(ev);
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*text, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.cur.data.push('\n');
                }
                self.cur.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.cur.event = Some(value.to_string()),
            "id" => self.cur.id = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[test]
    fn events() {
        let mut p = SseParser::default();
        let evs = p.push(b"id: 1\ndata:\n\n: keepalive\n\nevent: message\r\ndata: a\r\ndata: b\r\n\r\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "");
        assert_eq!(evs[0].id.as_deref(), Some("1"));
        assert_eq!(evs[1].data, "a\nb");
    }
}
