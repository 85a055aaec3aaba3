//! Detection: finding emails, phone numbers and custom-rule matches in decoded text.
//!
//! ```
//! use mcp_pii_gateway::detect::Detector;
//! let d = Detector::builtin();
//! let text = "write to ana.lima@example.org";
//! let spans = d.find(text);
//! assert_eq!(spans.len(), 1);
//! assert_eq!(&text[spans[0].start..spans[0].end], "ana.lima@example.org");
//! assert_eq!(spans[0].kind.as_str(), "EMAIL");
//! ```
//!
//! TEMPORARY: the implementation below is a naive placeholder that the detect work replaces;
//! the public API (`Kind`, `Span`, `Detector::{builtin, builder, find, find_into, kinds,
//! might_contain}`) is the contract other modules build on.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A rule's KIND: an upper-case name such as `EMAIL`, `PHONE` or `CUSTOMER_ID`
/// (`[A-Z][A-Z0-9_]*`, not ending in `_`). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(Arc<str>);

impl Kind {
    /// Validates and builds a kind.
    pub fn new(name: &str) -> Result<Kind> {
        if Self::is_valid(name) {
            Ok(Kind(Arc::from(name)))
        } else {
            Err(Error::rule(
                name,
                "a KIND is upper-case ASCII letters, digits and '_', starting with a letter and not ending with '_'",
            ))
        }
    }
    /// True when `name` is a valid kind name.
    pub fn is_valid(name: &str) -> bool {
        let b = name.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_uppercase()
            && b[b.len() - 1] != b'_'
            && b.iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
    }
    /// The built-in email kind.
    pub fn email() -> Kind {
        Kind(Arc::from("EMAIL"))
    }
    /// The built-in phone kind.
    pub fn phone() -> Kind {
        Kind(Arc::from("PHONE"))
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kind({})", self.0)
    }
}

/// One match: UTF-8 byte offsets `start..end` into the scanned text, and the rule's kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Start byte offset (inclusive).
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
    /// The kind of the rule that matched.
    pub kind: Kind,
}

/// A compiled set of rules. Build once, share (`Arc`), call from many threads.
pub struct Detector {
    kinds: Vec<Kind>,
    email: regex::Regex,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector").field("kinds", &self.kinds).finish()
    }
}

/// Builds a [`Detector`] from the built-in rules and custom rule files.
#[derive(Debug, Default)]
pub struct DetectorBuilder {
    _private: (),
}

impl DetectorBuilder {
    /// Compiles the rules.
    pub fn build(self) -> Result<Detector> {
        Ok(Detector::builtin())
    }
}

impl Detector {
    /// The built-in `EMAIL` and `PHONE` rules (from `rules/*.toml`, embedded at build time).
    pub fn builtin() -> Detector {
        Detector {
            kinds: vec![Kind::email(), Kind::phone()],
            email: regex::Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
                .expect("static regex compiles"),
        }
    }
    /// A builder for built-in plus custom rules.
    pub fn builder() -> DetectorBuilder {
        DetectorBuilder::default()
    }
    /// Every kind this detector can report, in rule order.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }
    /// Cheap test: false means `text` certainly holds no match.
    pub fn might_contain(&self, text: &str) -> bool {
        text.bytes().any(|b| b == b'@' || b.is_ascii_digit()) || !text.is_ascii()
    }
    /// All matches in `text`, sorted by start, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<Span> {
        let mut out = Vec::new();
        self.find_into(text, &mut out);
        out
    }
    /// Like [`find`](Self::find), appending to `out` (which is cleared first) to reuse its
    /// allocation.
    pub fn find_into(&self, text: &str, out: &mut Vec<Span>) {
        out.clear();
        if !self.might_contain(text) {
            return;
        }
        for m in self.email.find_iter(text) {
            out.push(Span {
                start: m.start(),
                end: m.end(),
                kind: Kind::email(),
            });
        }
    }
}
