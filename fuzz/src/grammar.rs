//! A small grammar of MCP / JSON-RPC messages, written as JSON text (so escapes, duplicate keys,
//! odd numbers and whitespace can be chosen), with emails, phone numbers and placeholders
//! sprinkled in strings and member names. Every value is invented.

use std::fmt::Write as _;

use arbitrary::{Result, Unstructured};

/// Made-up email addresses (reserved example domains).
pub const EMAILS: &[&str] = &[
    "ana.lima@example.org",
    "joao.silva@example.net",
    "x@example.com",
    "first.last+tag@mail.example.org",
    "o'brien_2@example.com",
    "SUPPORT@EXAMPLE.ORG",
    "b@example.co.uk",
    "ana@sub-domain.example.org",
    "zoë@example.org",
    "user@[192.0.2.1]",
];

/// Made-up phone numbers (555 and documentation ranges).
pub const PHONES: &[&str] = &[
    "+1 202-555-0143",
    "(202) 555-0143",
    "202.555.0143",
    "2025550143",
    "+1-202-555-0199",
    "+44 20 7946 0958",
    "+4915123456789",
    "+49 151 23456789",
    "+33 1 23 45 67 89",
    "+55 11 91234-5678",
    "555-0143",
    "+1 (555) 010-0199",
    "+1 ２０２ ５５５ ０１４３",
    "202/555/0143",
];

const PLACEHOLDERS: &[&str] = &[
    "[EMAIL_1]",
    "[EMAIL_2]",
    "[PHONE_1]",
    "[PHONE_2]",
    "[EMAIL_3]",
    "[EMAIL_01]",
    "[TODO_1]",
    "[EMAIL_",
    "EMAIL_1]",
    "[PHONE_18446744073709551616]",
    "[[EMAIL_1]]",
];

const WORDS: &[&str] = &[
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "call ",
    "mail ",
    "Ana <",
    ">",
    "@",
    ".",
    "-",
    "+",
    "(",
    ")",
    "/",
    ",",
    ":",
    "1",
    "555",
    "0143",
    "202",
    "example.org",
    "é",
    "😀",
    "\u{2028}",
    "\"",
    "\\",
    "\u{0}",
    "\u{1f}",
    "\u{fffd}",
    "ü",
    "[",
    "]",
    "_",
    "EMAIL",
    "PHONE",
    "tel:",
    "mailto:",
    "١٢٣٤٥٦٧",
];

const KEYS: &[&str] = &[
    "content",
    "type",
    "text",
    "data",
    "blob",
    "uri",
    "mimeType",
    "structuredContent",
    "phone",
    "email",
    "mobilePhone",
    "phone_number",
    "_meta",
    "progressToken",
    "name",
    "arguments",
    "message",
    "code",
    "id",
    "method",
    "jsonrpc",
    "params",
    "result",
    "error",
    "requestId",
    "isError",
    "contacts",
    "notes",
    "level",
    "logger",
    "role",
    "messages",
    "requestedSchema",
    "progress",
    "total",
    "reason",
    "annotations",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "1.5",
    "1e5",
    "1E+2",
    "-0",
    "0.1",
    "12345678901234567890123",
    "2025550143",
    "4915123456789",
    "5550143",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "18446744073709551615",
    "-9223372036854775808",
];

const BASE64: &[&str] = &[
    "iVBORw0KGgo=",
    "AAAA",
    "UklGRg==",
    "",
    "not base64!",
    "+15555550143",
    "ab=c",
];

const METHODS: &[&str] = &[
    "notifications/progress",
    "notifications/message",
    "notifications/cancelled",
    "notifications/resources/updated",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "ping",
    "tools/call",
];

/// Writes JSON text from fuzzer choices.
pub struct Gen<'a, 'b> {
    /// The fuzzer's bytes.
    pub u: &'b mut Unstructured<'a>,
    /// The text so far.
    pub out: String,
    depth: usize,
}

impl<'a, 'b> Gen<'a, 'b> {
    /// A generator over `u`.
    pub fn new(u: &'b mut Unstructured<'a>) -> Self {
        Gen {
            u,
            out: String::new(),
            depth: 0,
        }
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> Result<T> {
        Ok(*self.u.choose(xs)?)
    }

    /// Optional whitespace between tokens.
    fn ws(&mut self) -> Result<()> {
        if self.u.ratio(1, 8)? {
            let w = self.pick(&[" ", "\n", "\t", "\r\n  "])?;
            self.out.push_str(w);
        }
        Ok(())
    }

    /// The decoded text of a string: pieces of PII, placeholders, words and arbitrary text.
    pub fn text(&mut self) -> Result<String> {
        let mut s = String::new();
        let n = self.u.int_in_range(0..=6)?;
        for _ in 0..n {
            match self.u.int_in_range(0..=9)? {
                0 | 1 => s.push_str(self.pick(EMAILS)?),
                2 | 3 => s.push_str(self.pick(PHONES)?),
                4 => s.push_str(self.pick(PLACEHOLDERS)?),
                5 => {
                    let a: &str = self.u.arbitrary()?;
                    s.push_str(a);
                }
                6 => {
                    // A piece of an address or number, to build new ones.
                    let local = self.pick(&["ana", "x.y", "a+b", "Ana.Lima", "_", "1"])?;
                    let dom = self.pick(&["example.org", "example.com", "ex-ample.org", "example", "e.x"])?;
                    let _ = write!(s, "{local}@{dom}");
                }
                7 => {
                    let d: u64 = self.u.int_in_range(0..=9_999_999_999u64)?;
                    let _ = write!(s, "{d}");
                }
                _ => s.push_str(self.pick(WORDS)?),
            }
        }
        Ok(s)
    }

    /// Writes `s` as a JSON string token, escaping characters in a fuzzer-chosen way.
    pub fn string_token(&mut self, s: &str) -> Result<()> {
        let mode = self.u.int_in_range(0..=7)?;
        self.out.push('"');
        for c in s.chars() {
            let must = c == '"' || c == '\\' || (c as u32) < 0x20;
            let escape = match mode {
                0..=3 => must,
                4 => true,
                5 => must || !c.is_ascii_alphanumeric(),
                _ => must || self.u.ratio(1, 3)?,
            };
            if !escape {
                self.out.push(c);
                continue;
            }
            match c {
                '"' if mode != 4 => self.out.push_str("\\\""),
                '\\' if mode != 4 => self.out.push_str("\\\\"),
                '\n' if mode != 4 => self.out.push_str("\\n"),
                '/' if mode == 6 => self.out.push_str("\\/"),
                _ => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        if mode == 7 {
                            let _ = write!(self.out, "\\u{:04X}", unit);
                        } else {
                            let _ = write!(self.out, "\\u{:04x}", unit);
                        }
                    }
                }
            }
        }
        if self.u.ratio(1, 32)? {
            // A lone surrogate (a string cut inside an emoji).
            let lone = self.pick(&["\\ud83d", "\\ude00", "\\uDBFF"])?;
            self.out.push_str(lone);
        }
        self.out.push('"');
        Ok(())
    }

    /// A string token with generated text.
    pub fn string(&mut self) -> Result<()> {
        let t = self.text()?;
        self.string_token(&t)
    }

    fn lit(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn key(&mut self, k: &str) -> Result<()> {
        self.ws()?;
        self.string_token(k)?;
        self.ws()?;
        self.out.push(':');
        self.ws()
    }

    /// Writes an object from member writers.
    fn object(&mut self, members: &mut [(&str, &mut dyn FnMut(&mut Self) -> Result<()>)]) -> Result<()> {
        self.out.push('{');
        let mut first = true;
        for (k, f) in members.iter_mut() {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.key(k)?;
            f(self)?;
        }
        // Extra members: generated names (which may hold PII) and duplicates.
        let extra = if self.u.ratio(1, 4)? {
            self.u.int_in_range(1..=2)?
        } else {
            0
        };
        for _ in 0..extra {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.ws()?;
            if self.u.ratio(1, 2)? {
                let k = self.pick(KEYS)?;
                self.string_token(k)?;
            } else {
                self.string()?;
            }
            self.out.push(':');
            self.value()?;
        }
        self.ws()?;
        self.out.push('}');
        Ok(())
    }

    /// A number token.
    pub fn number(&mut self) -> Result<()> {
        if self.u.ratio(1, 4)? {
            let n: i64 = self.u.arbitrary()?;
            let _ = write!(self.out, "{n}");
        } else {
            let n = self.pick(NUMBERS)?;
            self.out.push_str(n);
        }
        Ok(())
    }

    /// Any JSON value, nesting limited.
    pub fn value(&mut self) -> Result<()> {
        self.ws()?;
        let deep = self.depth >= 6;
        let choice = if deep {
            self.u.int_in_range(0..=4)?
        } else {
            self.u.int_in_range(0..=8)?
        };
        match choice {
            0 => {
                let w = self.pick(&["null", "true", "false"])?;
                self.lit(w);
            }
            1 => self.number()?,
            2..=4 => self.string()?,
            5 | 6 => {
                self.depth += 1;
                self.out.push('{');
                let n = self.u.int_in_range(0..=4)?;
                for i in 0..n {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.ws()?;
                    if self.u.ratio(2, 3)? {
                        let k = self.pick(KEYS)?;
                        self.string_token(k)?;
                    } else {
                        self.string()?;
                    }
                    self.ws()?;
                    self.out.push(':');
                    self.value()?;
                }
                self.out.push('}');
                self.depth -= 1;
            }
            _ => {
                self.depth += 1;
                self.out.push('[');
                let n = self.u.int_in_range(0..=4)?;
                for i in 0..n {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value()?;
                }
                self.out.push(']');
                self.depth -= 1;
            }
        }
        self.ws()
    }

    /// A JSON-RPC id: mostly numbers, sometimes strings (which may hold PII) or odd values.
    pub fn id(&mut self) -> Result<()> {
        match self.u.int_in_range(0..=9)? {
            0..=5 => {
                let n = self.u.int_in_range(0..=20u32)?;
                let _ = write!(self.out, "{n}");
            }
            6 | 7 => self.string()?,
            8 => self.lit("null"),
            _ => self.value()?,
        }
        Ok(())
    }

    fn b64(&mut self) -> Result<()> {
        if self.u.ratio(3, 4)? {
            let b = self.pick(BASE64)?;
            self.string_token(b)
        } else {
            self.string()
        }
    }

    /// A content item of a tool result or prompt.
    pub fn content_item(&mut self) -> Result<()> {
        match self.u.int_in_range(0..=5)? {
            0 | 1 => self.object(&mut [
                ("type", &mut |g| g.string_token("text")),
                ("text", &mut |g| g.string()),
            ]),
            2 => {
                let ty = self.pick(&["image", "audio"])?;
                self.object(&mut [
                    ("type", &mut |g| g.string_token(ty)),
                    ("data", &mut |g| g.b64()),
                    ("mimeType", &mut |g| g.string_token("image/png")),
                ])
            }
            3 => self.object(&mut [
                ("type", &mut |g| g.string_token("resource")),
                ("resource", &mut |g| {
                    if g.u.ratio(1, 2)? {
                        g.object(&mut [("uri", &mut |g| g.string()), ("text", &mut |g| g.string())])
                    } else {
                        g.object(&mut [("uri", &mut |g| g.string()), ("blob", &mut |g| g.b64())])
                    }
                }),
            ]),
            4 => self.object(&mut [
                ("type", &mut |g| g.string_token("resource_link")),
                ("uri", &mut |g| g.string()),
                ("name", &mut |g| g.string()),
            ]),
            _ => self.value(),
        }
    }

    fn content(&mut self) -> Result<()> {
        self.out.push('[');
        let n = self.u.int_in_range(0..=3)?;
        for i in 0..n {
            if i > 0 {
                self.out.push(',');
            }
            self.content_item()?;
        }
        self.out.push(']');
        Ok(())
    }

    fn jsonrpc(&mut self) -> Result<()> {
        if self.u.ratio(1, 16)? {
            self.string()
        } else {
            self.string_token("2.0")
        }
    }

    /// A result: a tool call result or any value.
    fn result(&mut self) -> Result<()> {
        match self.u.int_in_range(0..=3)? {
            0 | 1 => self.object(&mut [
                ("content", &mut |g| g.content()),
                ("isError", &mut |g| {
                    g.lit("false");
                    Ok(())
                }),
            ]),
            2 => self.object(&mut [
                ("content", &mut |g| g.content()),
                ("structuredContent", &mut |g| {
                    g.object(&mut [("email", &mut |g| g.string()), ("phone", &mut |g| g.number())])
                }),
            ]),
            _ => self.value(),
        }
    }

    /// `params` for `method`.
    fn params(&mut self, method: &str) -> Result<()> {
        match method {
            "notifications/progress" => self.object(&mut [
                ("progressToken", &mut |g| g.id()),
                ("progress", &mut |g| g.number()),
                ("message", &mut |g| g.string()),
            ]),
            "notifications/message" => self.object(&mut [
                ("level", &mut |g| g.string_token("info")),
                ("logger", &mut |g| g.string()),
                ("data", &mut |g| g.value()),
            ]),
            "notifications/cancelled" => {
                self.object(&mut [("requestId", &mut |g| g.id()), ("reason", &mut |g| g.string())])
            }
            "sampling/createMessage" => self.object(&mut [
                ("messages", &mut |g| {
                    g.lit("[");
                    g.object(&mut [
                        ("role", &mut |g| g.string_token("user")),
                        ("content", &mut |g| g.content_item()),
                    ])?;
                    g.lit("]");
                    Ok(())
                }),
                ("_meta", &mut |g| {
                    g.object(&mut [("progressToken", &mut |g| g.id())])
                }),
                ("maxTokens", &mut |g| g.number()),
            ]),
            "elicitation/create" => self.object(&mut [
                ("message", &mut |g| g.string()),
                ("requestedSchema", &mut |g| g.value()),
            ]),
            "tools/call" => self.object(&mut [
                ("name", &mut |g| g.string()),
                ("arguments", &mut |g| g.value()),
                ("_meta", &mut |g| {
                    g.object(&mut [("progressToken", &mut |g| g.id())])
                }),
            ]),
            _ => self.value(),
        }
    }

    /// One JSON-RPC message as a server would send it toward the client.
    pub fn message(&mut self) -> Result<()> {
        match self.u.int_in_range(0..=7)? {
            0..=2 => self.object(&mut [
                ("jsonrpc", &mut |g| g.jsonrpc()),
                ("id", &mut |g| g.id()),
                ("result", &mut |g| g.result()),
            ]),
            3 => self.object(&mut [
                ("jsonrpc", &mut |g| g.jsonrpc()),
                ("id", &mut |g| g.id()),
                ("error", &mut |g| {
                    g.object(&mut [
                        ("code", &mut |g| g.number()),
                        ("message", &mut |g| g.string()),
                        ("data", &mut |g| g.value()),
                    ])
                }),
            ]),
            4 | 5 => {
                let m = self.pick(METHODS)?;
                let request = self.u.ratio(1, 2)?;
                if request {
                    self.object(&mut [
                        ("jsonrpc", &mut |g| g.jsonrpc()),
                        ("id", &mut |g| g.id()),
                        ("method", &mut |g| g.string_token(m)),
                        ("params", &mut |g| g.params(m)),
                    ])
                } else {
                    self.object(&mut [
                        ("jsonrpc", &mut |g| g.jsonrpc()),
                        ("method", &mut |g| g.string_token(m)),
                        ("params", &mut |g| g.params(m)),
                    ])
                }
            }
            6 => self.object(&mut [
                ("jsonrpc", &mut |g| g.jsonrpc()),
                ("method", &mut |g| g.string()),
                ("params", &mut |g| g.value()),
            ]),
            _ => self.value(),
        }
    }

    /// A message or, sometimes, a batch of them.
    pub fn message_or_batch(&mut self) -> Result<()> {
        if self.u.ratio(1, 5)? {
            self.out.push('[');
            let n = self.u.int_in_range(1..=4)?;
            for i in 0..n {
                if i > 0 {
                    self.out.push(',');
                }
                self.ws()?;
                self.message()?;
            }
            self.out.push(']');
            Ok(())
        } else {
            self.message()
        }
    }

    /// An SSE stream: events with `id`, `event`, `retry`, comments and `data` lines (a message,
    /// sometimes split over several data lines), with LF, CRLF or CR line ends.
    pub fn sse_stream(&mut self) -> Result<String> {
        let mut s = String::new();
        if self.u.ratio(1, 16)? {
            s.push('\u{feff}');
        }
        let events = self.u.int_in_range(1..=4)?;
        for _ in 0..events {
            let eol = self.pick(&["\n", "\n", "\r\n", "\r"])?;
            let lines = self.u.int_in_range(1..=4)?;
            for _ in 0..lines {
                match self.u.int_in_range(0..=9)? {
                    0 => {
                        let t = self.text()?;
                        let _ = write!(s, ": {}{eol}", t.replace(['\n', '\r'], " "));
                    }
                    1 => {
                        let t = self.text()?;
                        let f = self.pick(&["id", "event", "retry", "x-note"])?;
                        let _ = write!(s, "{f}: {}{eol}", t.replace(['\n', '\r'], " "));
                    }
                    2 => {
                        let r =
                            self.pick(&["retry: 3000", "retry: 2025550143", "event: message", "id: 7"])?;
                        let _ = write!(s, "{r}{eol}");
                    }
                    _ => {
                        self.out.clear();
                        self.message_or_batch()?;
                        let msg = std::mem::take(&mut self.out);
                        // Data lines cannot hold line ends: split the message there (and
                        // sometimes elsewhere).
                        let mut parts: Vec<String> = msg.split(['\n', '\r']).map(str::to_owned).collect();
                        if self.u.ratio(1, 8)? && !parts[0].is_empty() {
                            let p = parts.remove(0);
                            let at = self.u.int_in_range(0..=p.len())?;
                            let at = (0..=at).rev().find(|&i| p.is_char_boundary(i)).unwrap_or(0);
                            parts.insert(0, p[at..].to_owned());
                            parts.insert(0, p[..at].to_owned());
                        }
                        for part in parts {
                            let sep = self.pick(&["data: ", "data:", "data:  "])?;
                            let _ = write!(s, "{sep}{part}{eol}");
                        }
                    }
                }
            }
            s.push_str(eol);
        }
        Ok(s)
    }
}
