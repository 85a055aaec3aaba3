//! The lenient, lossless parser behind [`super::parse`]: iterative (no recursion), reading what
//! mainstream clients read, remembering where every string and number came from.

use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::write::word_needs_escape;
use super::{JsonError, JsonErrorKind, Parsed, MAX_DEPTH};

/// A string or number token of the source, in document order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Leaf {
    /// Byte offset of the token (a string's opening quote).
    pub(super) start: u32,
    /// Byte offset just past the token (a string's closing quote).
    pub(super) end: u32,
    pub(super) flags: u8,
}

/// The leaf is a number (else a string).
pub(super) const NUM: u8 = 1;
/// The string holds escapes (its text differs from its bytes).
pub(super) const ESCAPED: u8 = 2;
/// The leaf belongs to a member overwritten by a later duplicate key: not in the value.
pub(super) const DEAD: u8 = 4;

const BOM: &[u8] = b"\xEF\xBB\xBF";

enum Frame {
    Array(Vec<Value>),
    Object {
        map: Map<String, Value>,
        /// The key of the member being read.
        key: Option<String>,
        /// Index in `members` where this object's members start.
        members_base: usize,
    },
}

struct Parser<'a> {
    src: &'a [u8],
    /// `src` as text (checked once, up front).
    text: &'a str,
    pos: usize,
    leaves: Vec<Leaf>,
    /// For each member of the open objects: (first leaf of its key, end of its leaves).
    members: Vec<(u32, u32)>,
    duplicates: bool,
}

pub(super) fn parse(src: &[u8]) -> Result<Parsed<'_>, JsonError> {
    if src.len() > u32::MAX as usize {
        return Err(JsonError::at(JsonErrorKind::TooLarge, 0));
    }
    let text = match std::str::from_utf8(src) {
        Ok(t) => t,
        Err(e) => return Err(JsonError::at(JsonErrorKind::NotUtf8, e.valid_up_to())),
    };
    let mut p = Parser {
        src,
        text,
        pos: if src.starts_with(BOM) { BOM.len() } else { 0 },
        leaves: Vec::new(),
        members: Vec::new(),
        duplicates: false,
    };
    let value = p.document()?;
    Ok(Parsed {
        value,
        src: std::borrow::Cow::Borrowed(src),
        leaves: p.leaves,
        duplicates: p.duplicates,
    })
}

impl<'a> Parser<'a> {
    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError::at(kind, self.pos)
    }

    fn ws(&mut self) {
        while let Some(&c) = self.src.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn document(&mut self) -> Result<Value, JsonError> {
        self.ws();
        if self.pos == self.src.len() {
            return Err(self.err(JsonErrorKind::Empty));
        }
        let mut stack: Vec<Frame> = Vec::new();
        // Each turn reads one value (a scalar, or the opening of a container), then closes
        // every container that ends right after it.
        loop {
            self.ws();
            let mut value = match self.peek() {
                Some(b'{') => {
                    self.open(&stack)?;
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Value::Object(Map::new())
                    } else {
                        stack.push(Frame::Object {
                            map: Map::new(),
                            key: None,
                            members_base: self.members.len(),
                        });
                        self.key(&mut stack)?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.open(&stack)?;
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Value::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue;
                    }
                }
                _ => self.scalar()?,
            };
            // Attach `value` to its parent; close containers that end here.
            loop {
                let Some(top) = stack.last_mut() else {
                    self.ws();
                    if self.pos != self.src.len() {
                        return Err(self.err(JsonErrorKind::Trailing));
                    }
                    return Ok(value);
                };
                match top {
                    Frame::Array(items) => {
                        items.push(value);
                        self.ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                break;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let Some(Frame::Array(items)) = stack.pop() else {
                                    unreachable!("the top frame is an array")
                                };
                                value = Value::Array(items);
                            }
                            _ => return Err(self.err(JsonErrorKind::Expected(", or ]"))),
                        }
                    }
                    Frame::Object {
                        map,
                        key,
                        members_base,
                    } => {
                        let k = key.take().expect("a member's key is read before its value");
                        let end = self.leaves.len() as u32;
                        if let Some(m) = self.members.last_mut() {
                            m.1 = end;
                        }
                        match map.entry(k) {
                            Entry::Vacant(slot) => {
                                slot.insert(value);
                            }
                            Entry::Occupied(slot) => {
                                // Last one wins, as in JavaScript, Python and Go; the member
                                // moves to the end so values stay in document order.
                                let (k, _) = slot.shift_remove_entry();
                                self.duplicates = true;
                                let base = *members_base;
                                self.kill_earlier(base, &k);
                                map.insert(k, value);
                            }
                        }
                        self.ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.key(&mut stack)?;
                                break;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let Some(Frame::Object {
                                    map, members_base, ..
                                }) = stack.pop()
                                else {
                                    unreachable!("the top frame is an object")
                                };
                                self.members.truncate(members_base);
                                value = Value::Object(map);
                            }
                            _ => return Err(self.err(JsonErrorKind::Expected(", or }"))),
                        }
                    }
                }
            }
        }
    }

    fn open(&self, stack: &[Frame]) -> Result<(), JsonError> {
        if stack.len() >= MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        Ok(())
    }

    /// Reads `"key" :` into the object on top of the stack.
    fn key(&mut self, stack: &mut [Frame]) -> Result<(), JsonError> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(self.err(JsonErrorKind::Expected("a string key")));
        }
        let first = self.leaves.len() as u32;
        let k = self.string()?;
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.err(JsonErrorKind::Expected(":")));
        }
        self.pos += 1;
        self.members.push((first, first + 1));
        if let Some(Frame::Object { key, .. }) = stack.last_mut() {
            *key = Some(k);
        }
        Ok(())
    }

    /// Marks the leaves of the earlier member named `k` (of the object whose members start at
    /// `base`) as dead. The current member is the last one in `members`.
    fn kill_earlier(&mut self, base: usize, k: &str) {
        let last = self.members.len() - 1;
        for i in base..last {
            let (first, end) = self.members[i];
            let leaf = self.leaves[first as usize];
            if leaf.flags & DEAD != 0 {
                continue;
            }
            let raw = &self.src[leaf.start as usize..leaf.end as usize];
            if decode_str_token(raw).as_deref() == Some(k) {
                for l in &mut self.leaves[first as usize..end as usize] {
                    l.flags |= DEAD;
                }
                return;
            }
        }
    }

    fn scalar(&mut self) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'N' | b'I' | b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err(JsonErrorKind::Expected("a value"))),
            None => Err(self.err(JsonErrorKind::Eof)),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, JsonError> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err(JsonErrorKind::Expected("a value")))
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        let rest = &self.src[start..];
        let len = if rest.starts_with(b"NaN") {
            3
        } else if rest.starts_with(b"Infinity") {
            8
        } else if rest.starts_with(b"-Infinity") {
            9
        } else {
            number_len(rest).ok_or_else(|| self.err(JsonErrorKind::Expected("a number")))?
        };
        self.pos += len;
        let raw = &self.src[start..self.pos];
        self.leaves.push(Leaf {
            start: start as u32,
            end: self.pos as u32,
            flags: NUM,
        });
        Ok(Value::Number(number_value(raw)))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.pos;
        let (end, text) = scan_string(self.text, start).map_err(|(kind, at)| JsonError::at(kind, at))?;
        self.pos = end;
        let escaped = matches!(text, Text::Decoded(_));
        self.leaves.push(Leaf {
            start: start as u32,
            end: end as u32,
            flags: if escaped { ESCAPED } else { 0 },
        });
        Ok(match text {
            // `a` and `b` sit next to ASCII quotes: char boundaries.
            Text::Plain(a, b) => self.text[a..b].to_owned(),
            Text::Decoded(s) => s,
        })
    }
}

/// The length of the JSON number at the start of `b` (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`).
fn number_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let d = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == d {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let d = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == d {
            return None;
        }
    }
    Some(i)
}

/// The `serde_json` number standing for the number token `raw` (its text is kept apart and
/// written back verbatim). Integers that fit are exact; others are the nearest `f64`; `NaN`,
/// infinities and overflows, which `serde_json` cannot hold, stand as 0 and ±`f64::MAX`.
pub(super) fn number_value(raw: &[u8]) -> Number {
    // Number tokens are ASCII.
    let text = std::str::from_utf8(raw).unwrap_or("0");
    let integral = !raw.iter().any(|c| matches!(c, b'.' | b'e' | b'E' | b'N' | b'I'));
    if integral {
        if let Ok(n) = text.parse::<u64>() {
            return Number::from(n);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Number::from(n);
        }
    }
    let f = match text {
        "NaN" => return Number::from(0),
        "Infinity" => f64::MAX,
        "-Infinity" => f64::MIN,
        _ => text.parse::<f64>().unwrap_or(0.0),
    };
    let f = if f.is_infinite() { f.signum() * f64::MAX } else { f };
    Number::from_f64(f).unwrap_or_else(|| Number::from(0))
}

/// A string token's text.
enum Text {
    /// No escapes: the text is `src[a..b]`.
    Plain(usize, usize),
    /// Escapes decoded.
    Decoded(String),
}

/// Scans the string token starting at the quote `src[start]`: (end offset past the closing
/// quote, text). Control characters are refused, as JSON requires; a `\u` escape of a lone
/// surrogate decodes to U+FFFD (the text clients show for it; the token itself is kept).
fn scan_string(text: &str, start: usize) -> Result<(usize, Text), (JsonErrorKind, usize)> {
    let src = text.as_bytes();
    let mut i = start + 1;
    let mut out: Option<String> = None;
    let mut run = i;
    loop {
        // Skip eight bytes at a time while none needs attention.
        while i + 8 <= src.len() {
            let word = u64::from_le_bytes(src[i..i + 8].try_into().expect("eight bytes"));
            if word_needs_escape(word) {
                break;
            }
            i += 8;
        }
        let Some(&c) = src.get(i) else {
            return Err((JsonErrorKind::Eof, i));
        };
        match c {
            b'"' => {
                let text = match out {
                    None => Text::Plain(start + 1, i),
                    Some(mut buf) => {
                        buf.push_str(&text[run..i]);
                        Text::Decoded(buf)
                    }
                };
                return Ok((i + 1, text));
            }
            b'\\' => {
                let buf = out.get_or_insert_with(|| String::with_capacity(i - start + 16));
                buf.push_str(&text[run..i]);
                i = escape(src, i, buf)?;
                run = i;
            }
            0..=0x1f => return Err((JsonErrorKind::ControlChar, i)),
            _ => i += 1,
        }
    }
}

/// Decodes the escape at `src[i]` (a backslash) into `buf`; returns the offset after it.
fn escape(src: &[u8], i: usize, buf: &mut String) -> Result<usize, (JsonErrorKind, usize)> {
    let bad = (JsonErrorKind::BadEscape, i);
    let c = *src.get(i + 1).ok_or((JsonErrorKind::Eof, i))?;
    let simple = match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            let hi = hex4(src, i + 2).ok_or(bad)?;
            let mut next = i + 6;
            let ch = if (0xD800..0xDC00).contains(&hi) {
                // A high surrogate: a low one must follow to make a pair.
                match (src.get(next), src.get(next + 1), hex4(src, next + 2)) {
                    (Some(b'\\'), Some(b'u'), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                        next += 6;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    }
                    _ => None,
                }
            } else {
                char::from_u32(hi)
            };
            buf.push(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
            return Ok(next);
        }
        _ => return Err(bad),
    };
    buf.push(simple as char);
    Ok(i + 2)
}

fn hex4(src: &[u8], at: usize) -> Option<u32> {
    let h = src.get(at..at + 4)?;
    let mut n = 0u32;
    for &c in h {
        n = n * 16 + (c as char).to_digit(16)?;
    }
    Some(n)
}

/// The text of a whole string token (quotes included), as the parser decoded it.
pub(super) fn decode_str_token(raw: &[u8]) -> Option<String> {
    let raw = std::str::from_utf8(raw).ok()?;
    match scan_string(raw, 0) {
        Ok((end, Text::Plain(a, b))) if end == raw.len() => Some(raw[a..b].to_owned()),
        Ok((end, Text::Decoded(s))) if end == raw.len() => Some(s),
        _ => None,
    }
}
