//! JSON read as clients read it, written back without losing what the gateway did not change.
//!
//! Every message body, SSE `data` payload and stdio line goes through [`parse`]. The gateway's
//! rule is that what a client decodes never holds a value the detector would find outside
//! placeholders, and that what a server receives is the client's message with exactly the
//! placeholders restored. So the parser reads what mainstream clients (JavaScript's
//! `JSON.parse`, Python's `json`) read, and remembers the source text of every number and string:
//!
//! | input | what clients do | what the gateway does |
//! |---|---|---|
//! | numbers of any size or precision (`12345678901234567890123`, `1.0`, `1e5`) | keep or round them | written back byte for byte |
//! | `NaN`, `Infinity`, `-Infinity` (Python's `json.dumps` default) | Python reads them | read, written back verbatim |
//! | a leading UTF-8 byte order mark | some skip it | skipped |
//! | a lone surrogate escape (`"\ud83d"`, a string cut inside an emoji) | kept as a lone code unit | scanned as U+FFFD; the escape is written back unless the string is rewritten |
//! | duplicate keys | the last one wins | the last one wins; the earlier members are dropped (the message is always re-serialized) |
//! | nesting deeper than [`MAX_DEPTH`] | varies | refused: [`JsonErrorKind::TooDeep`] |
//! | invalid UTF-8, control characters in strings, bad escapes, trailing data | refused | refused |
//!
//! The parser never recurses; [`Parsed::to_vec`] writes the value back after strings and
//! numbers were rewritten in place: every string or number the gateway left as it was is
//! copied from the source token, so escapes and number texts survive, and everything it
//! changed is freshly encoded.
//!
//! ```
//! use mcp_pii_gateway::json;
//! let mut p = json::parse(br#"{"n": 12345678901234567890123, "s": "caf\u00e9", "t": "x"}"#).unwrap();
//! assert!(p.is_exact());
//! p.value["t"] = "y".into();
//! assert_eq!(p.to_vec(), br#"{"n":12345678901234567890123,"s":"caf\u00e9","t":"y"}"#);
//!
//! let dup = json::parse(br#"{"text": "ana@example.org", "text": "nothing"}"#).unwrap();
//! assert!(!dup.is_exact()); // never forward these bytes: re-serialize
//! assert_eq!(dup.to_vec(), br#"{"text":"nothing"}"#);
//! ```

mod parse;
mod write;

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

pub(crate) use write::to_vec_sized;

/// Deepest nesting of arrays and objects accepted. Deeper messages are refused with a clear
/// error (no MCP message nests this deep; Python's `json` stops near 1,000, pydantic at 200).
pub const MAX_DEPTH: usize = 512;

/// A parsed message: its value, and the source it came from.
///
/// Rewrite [`value`](Self::value) in place, then write it with [`to_vec`](Self::to_vec); or,
/// when nothing changed and [`is_exact`](Self::is_exact) holds, forward the source bytes.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// The message as clients read it (see the module docs for numbers that `serde_json`
    /// cannot hold: their text is kept apart).
    pub value: Value,
    src: Cow<'a, [u8]>,
    leaves: Vec<parse::Leaf>,
    duplicates: bool,
}

impl From<Value> for Parsed<'static> {
    /// A value with no source (everything is freshly encoded when written).
    fn from(value: Value) -> Self {
        Parsed {
            value,
            src: Cow::Borrowed(&[]),
            leaves: Vec::new(),
            duplicates: false,
        }
    }
}

/// Parses `src` leniently and losslessly (see the module docs).
pub fn parse(src: &[u8]) -> Result<Parsed<'_>, JsonError> {
    parse::parse(src)
}

/// [`parse`], keeping `src` in the result (for a message that outlives its read buffer).
pub fn parse_owned(src: Vec<u8>) -> Result<Parsed<'static>, JsonError> {
    let Parsed {
        value,
        leaves,
        duplicates,
        ..
    } = parse::parse(&src)?;
    Ok(Parsed {
        value,
        src: Cow::Owned(src),
        leaves,
        duplicates,
    })
}

impl<'a> Parsed<'a> {
    /// True when a client decoding the source bytes gets exactly [`value`](Self::value) (up to
    /// number precision, which the source keeps): the bytes may be forwarded as they are when
    /// nothing was rewritten. False when the source has duplicate keys.
    pub fn is_exact(&self) -> bool {
        !self.duplicates
    }

    /// The compact JSON text of [`value`](Self::value), reusing the source's token for every
    /// string and number that is still what it was.
    ///
    /// Tokens are matched by position: call it while the value has the shape it was parsed
    /// with (strings, member names and numbers rewritten in place, a number turned into a
    /// string, are fine). After elements or members were added, removed or replaced, write the
    /// value with `Parsed::from(value)` instead: a stand-in number (`NaN` reads as 0) could
    /// otherwise lend its token to another number.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.src.len() + self.src.len() / 8 + 16);
        write::write_parsed(&self.value, &self.src, &self.leaves, &mut out);
        out
    }

    /// The source bytes.
    pub fn source(&self) -> &[u8] {
        &self.src
    }

    /// The messages of a JSON-RPC batch (a top-level array), each keeping the source tokens of
    /// its own strings and numbers; any other value is one message.
    pub fn into_messages(self) -> Vec<Parsed<'a>> {
        let Value::Array(items) = self.value else {
            return vec![self];
        };
        let mut live = self.leaves.into_iter().filter(|l| l.flags & parse::DEAD == 0);
        items
            .into_iter()
            .map(|value| {
                let leaves: Vec<parse::Leaf> = live.by_ref().take(leaf_count(&value)).collect();
                Parsed {
                    value,
                    src: self.src.clone(),
                    leaves,
                    duplicates: self.duplicates,
                }
            })
            .collect()
    }

    /// The value at `path` (object member names and array indices, from the root) as a
    /// message of its own, keeping the source tokens of its strings and numbers; `None` when
    /// the path does not exist. Lets a relay take elements out of a message (the tools of a
    /// `tools/list` result, the arguments of a call) and write each one exactly.
    pub fn subtree(&self, path: &[Step<'_>]) -> Option<Parsed<'_>> {
        let mut pos = 0;
        let mut v = &self.value;
        for step in path {
            match (step, v) {
                (Step::Key(k), Value::Object(m)) => {
                    let mut found = None;
                    for (key, val) in m {
                        pos += 1;
                        if key == k {
                            found = Some(val);
                            break;
                        }
                        pos += leaf_count(val);
                    }
                    v = found?;
                }
                (Step::Index(i), Value::Array(a)) => {
                    pos += a.iter().take(*i).map(leaf_count).sum::<usize>();
                    v = a.get(*i)?;
                }
                _ => return None,
            }
        }
        let n = leaf_count(v);
        let live: Vec<parse::Leaf> = self
            .leaves
            .iter()
            .filter(|l| l.flags & parse::DEAD == 0)
            .skip(pos)
            .take(n)
            .copied()
            .collect();
        // A value built in memory has no tokens: everything is then freshly encoded.
        let leaves = if live.len() == n { live } else { Vec::new() };
        Some(Parsed {
            value: v.clone(),
            src: Cow::Borrowed(&self.src),
            leaves,
            duplicates: self.duplicates,
        })
    }

    /// The same message, owning its source.
    pub fn into_owned(self) -> Parsed<'static> {
        Parsed {
            value: self.value,
            src: Cow::Owned(self.src.into_owned()),
            leaves: self.leaves,
            duplicates: self.duplicates,
        }
    }
}

/// One step of a [`Parsed::subtree`] path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'s> {
    /// An object member.
    Key(&'s str),
    /// An array element.
    Index(usize),
}

/// How many source tokens (strings, member names, numbers) `v` holds.
fn leaf_count(v: &Value) -> usize {
    let mut n = 0;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(_) | Value::Number(_) => n += 1,
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => {
                n += m.len();
                stack.extend(m.values());
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
    n
}

/// Why a message could not be read. Its text names the problem and a byte offset, never the
/// content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    kind: JsonErrorKind,
    offset: usize,
}

/// The kinds of [`JsonError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// Not UTF-8.
    NotUtf8,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Larger than 4 GiB.
    TooLarge,
    /// The text ended inside a value.
    Eof,
    /// Something else was expected here.
    Expected(&'static str),
    /// A raw control character inside a string.
    ControlChar,
    /// An unknown or malformed escape.
    BadEscape,
    /// Data after the value.
    Trailing,
}

impl JsonError {
    fn at(kind: JsonErrorKind, offset: usize) -> JsonError {
        JsonError { kind, offset }
    }
    /// What went wrong.
    pub fn kind(&self) -> JsonErrorKind {
        self.kind
    }
    /// The byte offset where it was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// True when the text is valid JSON the gateway declines to read (too deep, too large),
    /// as opposed to text that is not JSON at all.
    pub fn is_limit(&self) -> bool {
        matches!(self.kind, JsonErrorKind::TooDeep | JsonErrorKind::TooLarge)
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            JsonErrorKind::Empty => write!(f, "empty body"),
            JsonErrorKind::NotUtf8 => write!(f, "not valid UTF-8 (byte {at})"),
            JsonErrorKind::TooDeep => write!(
                f,
                "JSON nested deeper than the gateway's limit of {MAX_DEPTH} levels (byte {at})"
            ),
            JsonErrorKind::TooLarge => write!(f, "JSON larger than 4 GiB"),
            JsonErrorKind::Eof => write!(f, "not valid JSON: the text ends inside a value (byte {at})"),
            JsonErrorKind::Expected(what) => write!(f, "not valid JSON: expected {what} at byte {at}"),
            JsonErrorKind::ControlChar => {
                write!(
                    f,
                    "not valid JSON: a control character inside a string (byte {at})"
                )
            }
            JsonErrorKind::BadEscape => write!(f, "not valid JSON: a malformed escape (byte {at})"),
            JsonErrorKind::Trailing => write!(f, "not valid JSON: data after the value (byte {at})"),
        }
    }
}

impl std::error::Error for JsonError {}

#[cfg(test)]
mod tests;
