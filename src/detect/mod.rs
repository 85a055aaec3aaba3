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
//! Custom rules (regex with validators, or literal terms) come from TOML files in the same
//! format as the built-in `rules/email.toml` and `rules/phone.toml` (see [`rules`]):
//!
//! ```
//! use mcp_pii_gateway::detect::Detector;
//! let d = Detector::builder()
//!     .rules_toml("[[rule]]\nkind = \"CUSTOMER_ID\"\npattern = 'CUST-[0-9]{6}'\n")
//!     .unwrap()
//!     .build()
//!     .unwrap();
//! let spans = d.find("ticket for CUST-004211, call +44 20 7946 0958");
//! let kinds: Vec<&str> = spans.iter().map(|s| s.kind.as_str()).collect();
//! assert_eq!(kinds, ["CUSTOMER_ID", "PHONE"]);
//! ```
//!
//! # Overlaps
//! Every rule scans the whole text; the union of their matches is then made non-overlapping:
//! the match that starts first wins; at the same start the longest wins; at the same start and
//! length the rule that comes first wins (built-in rules first, then custom rules in the order
//! they were added). The result is sorted by start.
//!
//! # Prefilter
//! [`Detector::might_contain`] is false only when no rule can match: no `@` (emails); for
//! phones, no run of seven ASCII digits joined only by what a number may hold between its digits
//! (space, `-`, `.`, `/`, parentheses, `+`), or for text with any non-ASCII byte, fewer than seven
//! decimal digits of any script; no first byte of any term; any custom regex rule makes it true.
//! [`Detector::find_into`] applies the same test per rule and runs only the rules it lets through.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

mod email;
mod phone;
mod phone_meta;
pub use phone_meta::classify as classify_phone;
pub mod rules;
mod text;

pub use rules::RuleDef;
use rules::{CompiledRule, Probe};

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
    rules: Vec<Arc<CompiledRule>>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("kinds", &self.kinds)
            .field("rules", &self.rules)
            .finish()
    }
}

/// Builds a [`Detector`] from the built-in rules and custom rule files.
///
/// Rule files are parsed and compiled when added; problems in rules added with
/// [`rule`](Self::rule) and cross-rule problems (duplicate names, a KIND reported by two rules
/// without `shared_kind = true`) are reported by [`build`](Self::build), all at once.
pub struct DetectorBuilder {
    builtin: bool,
    rules: Vec<Arc<CompiledRule>>,
    errors: Vec<Error>,
}

impl Default for DetectorBuilder {
    fn default() -> Self {
        DetectorBuilder {
            builtin: true,
            rules: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl fmt::Debug for DetectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectorBuilder")
            .field("builtin", &self.builtin)
            .field("rules", &self.rules)
            .field("errors", &self.errors.len())
            .finish()
    }
}

impl DetectorBuilder {
    /// Whether the built-in `EMAIL` and `PHONE` rules come first. Default: `true`.
    pub fn builtin(mut self, on: bool) -> Self {
        self.builtin = on;
        self
    }

    /// Adds every rule of a TOML rule file (format: [`rules`]). Errors name the file or rule.
    pub fn rules_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::rule(&origin, format!("cannot read the rule file: {e}")))?;
        self.add_toml(&text, &origin)
    }

    /// [`rules_file`](Self::rules_file), keeping a problem (an unreadable file, invalid TOML, a
    /// bad rule) for [`build`](Self::build), which reports every problem of every file at once.
    pub fn with_rules_file(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                return self.with_error(Error::rule(&origin, format!("cannot read the rule file: {e}")))
            }
        };
        match rules::parse_rules(&text, &origin) {
            Ok(defs) => {
                let mut b = self;
                for def in defs {
                    match CompiledRule::compile(&def) {
                        Ok(r) => b.rules.push(Arc::new(r)),
                        Err(e) => b.errors.push(Error::rule(&origin, e.to_string())),
                    }
                }
                b
            }
            Err(e) => self.with_error(e),
        }
    }

    fn with_error(mut self, e: Error) -> Self {
        self.errors.push(e);
        self
    }

    /// Adds every rule of a TOML rule document (format: [`rules`]).
    pub fn rules_toml(self, toml: &str) -> Result<Self> {
        self.add_toml(toml, "<inline rules>")
    }

    fn add_toml(mut self, text: &str, origin: &str) -> Result<Self> {
        for def in rules::parse_rules(text, origin)? {
            self.rules.push(Arc::new(CompiledRule::compile(&def)?));
        }
        Ok(self)
    }

    /// Adds one rule; a problem with it is reported by [`build`](Self::build).
    pub fn rule(mut self, def: RuleDef) -> Self {
        match CompiledRule::compile(&def) {
            Ok(r) => self.rules.push(Arc::new(r)),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Compiles the rules. One problem gives its [`Error::rule`]; several give an
    /// [`Error::config`] listing them all.
    pub fn build(self) -> Result<Detector> {
        let mut errors = self.errors;
        let mut all: Vec<Arc<CompiledRule>> = Vec::new();
        if self.builtin {
            all.extend(rules::builtin_rules().iter().cloned());
        }
        for r in self.rules {
            if let Some(other) = all.iter().find(|o| o.name == r.name) {
                errors.push(Error::rule(
                    &r.name,
                    format!(
                        "a rule named {:?} already exists; give it a distinct `name`",
                        other.name
                    ),
                ));
                continue;
            }
            if let Some(other) = all.iter().find(|o| o.kind == r.kind) {
                if !r.shared_kind {
                    errors.push(Error::rule(
                        &r.name,
                        format!(
                            "kind {} is already reported by rule {:?}; set `shared_kind = true` if that is intended",
                            r.kind, other.name
                        ),
                    ));
                    continue;
                }
            }
            all.push(r);
        }
        match errors.len() {
            0 => {}
            1 => return Err(errors.remove(0)),
            _ => return Err(Error::config(errors.iter().map(ToString::to_string).collect())),
        }
        let mut kinds: Vec<Kind> = Vec::new();
        for r in &all {
            if !kinds.contains(&r.kind) {
                kinds.push(r.kind.clone());
            }
        }
        Ok(Detector { kinds, rules: all })
    }
}

/// One raw match before overlap resolution.
#[derive(Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    rule: usize,
}

thread_local! {
    /// Reused per thread so `find_into` allocates nothing but its output.
    static HITS: RefCell<Vec<Hit>> = const { RefCell::new(Vec::new()) };
}

impl Detector {
    /// The built-in `EMAIL` and `PHONE` rules (from `rules/*.toml`, embedded at build time and
    /// compiled once per process; this is cheap after the first call).
    pub fn builtin() -> Detector {
        let rules: Vec<Arc<CompiledRule>> = rules::builtin_rules().to_vec();
        let mut kinds: Vec<Kind> = Vec::new();
        for r in &rules {
            if !kinds.contains(&r.kind) {
                kinds.push(r.kind.clone());
            }
        }
        Detector { kinds, rules }
    }
    /// A builder for built-in plus custom rules.
    pub fn builder() -> DetectorBuilder {
        DetectorBuilder::default()
    }
    /// Compiles everything that is otherwise compiled on first use (each region's phone
    /// patterns), so that the first messages after start do not pay for it. Takes a few hundred
    /// milliseconds of one core; `serve` runs it on a blocking thread at start. Idempotent.
    pub fn warm_up(&self) {
        for region in &phone_meta::PhoneMeta::get().regions {
            let _ = region.compiles();
        }
    }

    /// Every kind this detector can report, in rule order.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }
    /// Cheap test: false means `text` certainly holds no match.
    pub fn might_contain(&self, text: &str) -> bool {
        if text.is_empty() {
            return false;
        }
        let mut probe = Probe::new(text);
        self.rules.iter().any(|r| r.might_match(&mut probe))
    }
    /// The kind of a JSON integer `n` that sits under the member name `key`, when a rule says
    /// such integers are PII (the phone rule's `number_keys`: `"phone": 4915123456789`). Only
    /// integers of 7 to 15 digits qualify (E.164 numbers have at most 15).
    ///
    /// ```
    /// use mcp_pii_gateway::detect::Detector;
    /// let d = Detector::builtin();
    /// assert_eq!(d.number_kind("MobilePhone", 4915123456789).map(|k| k.as_str()), Some("PHONE"));
    /// assert_eq!(d.number_kind("phone_number", 2025550143).map(|k| k.as_str()), Some("PHONE"));
    /// assert!(d.number_kind("count", 4915123456789).is_none());
    /// assert!(d.number_kind("hotel", 4915123456789).is_none()); // whole words only
    /// assert!(d.number_kind("phone", 42).is_none());
    /// ```
    pub fn number_kind(&self, key: &str, n: u64) -> Option<&Kind> {
        if !(1_000_000..=999_999_999_999_999).contains(&n) {
            return None;
        }
        // The first rule that has number keys decides (the built-in phone rule).
        let r = self.rules.iter().find(|r| !r.number_keys.is_empty())?;
        key_words(key)
            .iter()
            .any(|w| r.number_keys.iter().any(|k| k == w))
            .then_some(&r.kind)
    }

    /// The kind of the first rule with `number_keys` (the integers [`number_kind`] flags).
    ///
    /// [`number_kind`]: Self::number_kind
    pub(crate) fn rules_number_kind(&self) -> Option<Kind> {
        self.rules
            .iter()
            .find(|r| !r.number_keys.is_empty())
            .map(|r| r.kind.clone())
    }

    /// All matches in `text`, sorted by start, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<Span> {
        let mut out = Vec::new();
        self.find_into(text, &mut out);
        out
    }
    /// Like [`find`](Self::find), appending to `out` (which is cleared first) to reuse its
    /// allocation. Applies the prefilter itself (rules it rules out are not run), so there is no
    /// need to call [`might_contain`](Self::might_contain) first.
    pub fn find_into(&self, text: &str, out: &mut Vec<Span>) {
        self.find_keyed_into(text, None, out);
    }

    /// Like [`find_into`](Self::find_into) for a string that is the value of the JSON member
    /// `key` (or an element of an array that is). A key that names a phone number (one of the
    /// phone rule's `number_keys` as a word of it, alone or with a qualifier glued on:
    /// `MobilePhone`, `phone_number`, `Telefonnummer`, `電話番号`; not `phone_id`) counts as a
    /// context word before every number in the value: such a number still has to be valid for
    /// some region, and dates, IPs and other look-alikes are still rejected.
    ///
    /// ```
    /// use mcp_pii_gateway::detect::Detector;
    /// let d = Detector::builtin();
    /// let mut out = Vec::new();
    /// d.find_keyed_into("7384512884", Some("MobilePhone"), &mut out);
    /// assert_eq!(out.len(), 1);
    /// d.find_keyed_into("7384512884", Some("invoice_no"), &mut out);
    /// assert!(out.is_empty());
    /// d.find_keyed_into("2024-03-15", Some("phone"), &mut out);
    /// assert!(out.is_empty());
    /// ```
    pub fn find_keyed_into(&self, text: &str, key: Option<&str>, out: &mut Vec<Span>) {
        out.clear();
        if text.is_empty() {
            return;
        }
        let mut probe = Probe::new(text);
        // Which rules can match at all; rules past the mask's width are always run.
        let mut mask: u128 = 0;
        let mut live = 0usize;
        let mut only = 0usize;
        for (i, rule) in self.rules.iter().enumerate() {
            if i >= 128 || rule.might_match(&mut probe) {
                if i < 128 {
                    mask |= 1 << i;
                }
                live += 1;
                only = i;
            }
        }
        match live {
            0 => {}
            1 => {
                // One rule: its matches come in order; keep them non-overlapping exactly as the
                // general path does for a single producer, without the shared buffer.
                let kind = &self.rules[only].kind;
                let mut last_end = 0;
                self.rules[only].find_keyed(text, key, &mut |start, end| {
                    if start < end && end <= text.len() && start >= last_end {
                        out.push(Span {
                            start,
                            end,
                            kind: kind.clone(),
                        });
                        last_end = end;
                    }
                });
            }
            _ => self.find_many(text, key, mask, out),
        }
    }

    /// The general path of [`find_into`](Self::find_into): several rules, then overlap resolution.
    fn find_many(&self, text: &str, key: Option<&str>, mask: u128, out: &mut Vec<Span>) {
        let mut local = Vec::new();
        HITS.with(|cell| {
            let mut borrowed = cell.try_borrow_mut();
            let hits: &mut Vec<Hit> = match borrowed.as_mut() {
                Ok(h) => h,
                Err(_) => &mut local,
            };
            hits.clear();
            let mut producers = 0;
            for (i, rule) in self.rules.iter().enumerate() {
                if i < 128 && mask & (1 << i) == 0 {
                    continue;
                }
                let before = hits.len();
                rule.find_keyed(text, key, &mut |start, end| {
                    if start < end && end <= text.len() {
                        hits.push(Hit { start, end, rule: i });
                    }
                });
                producers += usize::from(hits.len() > before);
            }
            if producers > 1 {
                hits.sort_unstable_by(|a, b| {
                    a.start
                        .cmp(&b.start)
                        .then(b.end.cmp(&a.end))
                        .then(a.rule.cmp(&b.rule))
                });
            }
            let mut last_end = 0;
            for h in hits.iter() {
                if h.start >= last_end {
                    out.push(Span {
                        start: h.start,
                        end: h.end,
                        kind: self.rules[h.rule].kind.clone(),
                    });
                    last_end = h.end;
                }
            }
            if hits.capacity() > 1 << 16 {
                // Do not keep a huge buffer alive after one huge text.
                *hits = Vec::new();
            }
        });
    }
}

/// The lower-case words of a member name: split at anything not alphanumeric and where a
/// lower-case letter or digit is followed by an upper-case one (`MobilePhone`, `phone_number`,
/// `faxNo`).
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtin_finds_both() {
        let d = Detector::builtin();
        let t = "mail ana@example.org or call +1 201-555-0123.";
        let got: Vec<&str> = d.find(t).iter().map(|s| &t[s.start..s.end]).collect();
        assert_eq!(got, ["ana@example.org", "+1 201-555-0123"]);
        assert_eq!(d.kinds(), &[Kind::email(), Kind::phone()]);
    }

    #[test]
    fn overlap_prefers_earliest_then_longest_then_rule_order() {
        let d = Detector::builder()
            .rules_toml("[[rule]]\nkind = \"HANDLE\"\nterms = [\"ana\"]\n[[rule]]\nkind = \"DOMAIN\"\nterms = [\"example.org\"]\n")
            .unwrap()
            .build()
            .unwrap();
        let t = "ana@example.org ana";
        let spans = d.find(t);
        let got: Vec<(&str, &str)> = spans
            .iter()
            .map(|s| (&t[s.start..s.end], s.kind.as_str()))
            .collect();
        assert_eq!(got, [("ana@example.org", "EMAIL"), ("ana", "HANDLE")]);
    }

    #[test]
    fn duplicate_kind_needs_consent() {
        let e = Detector::builder()
            .rules_toml("[[rule]]\nname = \"more-mail\"\nkind = \"EMAIL\"\npattern = 'x@y'\n")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(e.is_rule() && e.to_string().contains("shared_kind"), "{e}");
        let d = Detector::builder()
            .rules_toml(
                "[[rule]]\nname = \"more-mail\"\nkind = \"EMAIL\"\npattern = 'x@y'\nshared_kind = true\n",
            )
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(d.kinds().len(), 2);
    }

    #[test]
    fn several_errors_are_listed() {
        let e = Detector::builder()
            .rule(RuleDef {
                kind: "bad".into(),
                pattern: Some("x".into()),
                ..RuleDef::default()
            })
            .rule(RuleDef {
                kind: "OK".into(),
                pattern: Some("(".into()),
                ..RuleDef::default()
            })
            .build()
            .unwrap_err();
        assert!(e.is_config());
        assert_eq!(e.config_problems().len(), 2);
    }

    #[test]
    fn shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Detector>();
        let d = Arc::new(Detector::builtin());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let d = Arc::clone(&d);
                std::thread::spawn(move || {
                    let t = format!("user{i}@example.org +44 20 7946 0958");
                    d.find(&t).len()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 2);
        }
    }

    /// Every rule's raw matches, run without any prefilter.
    fn unfiltered(d: &Detector, text: &str) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for rule in &d.rules {
            rule.find(text, &mut |s, e| v.push((s, e)));
        }
        v.sort_unstable();
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Regression: the prefilter must never hide a match (a false "no" leaks PII). Text is
        /// drawn from digits of several scripts, every separator the phone scanner reads, '@',
        /// letters and context words.
        #[test]
        fn prefilter_never_hides_a_match(parts in proptest::collection::vec(proptest::sample::select(vec![
            "0", "1", "2", "5", "7", "9", "٣", "۷", "０", "५", " ", "-", ".", "/", "(", ")", "+", "＋",
            "\u{a0}", "\u{2009}", "\u{2013}", "\u{3000}", "\u{ff0d}", "a", "x", "é", "中", "@",
            "tel ", "ext ", "wa.me/", "example.org", "ana", "_", ":", "\n", "#",
            "+44 20 7946 0958", "+44\u{a0}20\u{2009}7946\u{2013}0958", "tel 020 7946 0958",
            "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "０９０-１２３４-５６７８", "(201) 555-0123", "201.555.0123",
            "201/555/0123", "+1 (201) 555-0123 ext 12", "06 12 34 56 78", "wa.me/442079460958",
            "ana.lima@example.org",
        ]), 0..24)) {
            let text: String = parts.concat();
            let d = Detector::builder()
                .rules_toml("[[rule]]\nkind = \"HANDLE\"\nterms = [\"ana\", \"Tel\"]\ncase_insensitive = true\n")
                .unwrap()
                .build()
                .unwrap();
            let raw = unfiltered(&d, &text);
            if !raw.is_empty() {
                proptest::prop_assert!(d.might_contain(&text), "{text:?}");
            }
            let mut probe = Probe::new(&text);
            for rule in &d.rules {
                let mut any = false;
                rule.find(&text, &mut |_, _| any = true);
                if any {
                    proptest::prop_assert!(rule.might_match(&mut probe), "{} on {text:?}", rule.name);
                }
            }
            // The single-rule fast path and the general path agree with the raw matches.
            let found: Vec<(usize, usize)> = d.find(&text).iter().map(|s| (s.start, s.end)).collect();
            for f in &found {
                proptest::prop_assert!(raw.contains(f), "{f:?} not a raw match in {text:?}");
            }
            if !raw.is_empty() {
                proptest::prop_assert!(!found.is_empty(), "{text:?}");
            }
        }
    }

    #[test]
    fn prefilter() {
        let d = Detector::builtin();
        assert!(!d.might_contain("no digits 12345 here"));
        assert!(d.might_contain("a@b"));
        assert!(d.might_contain("٠١٢٣٤٥٦٧"));
        assert!(!d.might_contain(""));
        // Seven digits, but never in one run a phone number could be read from.
        assert!(!d.might_contain("8c3f1a2b-1234-4abc-a123 v1.2.3 10:20"));
        assert!(d.might_contain("2024-03-15"));
    }

    #[test]
    fn warm_up_leaves_results_unchanged() {
        let d = Detector::builtin();
        let text = "call +33 1 09 75 83 51 or tel: 030 901820";
        let before = d.find(text);
        d.warm_up();
        d.warm_up();
        assert_eq!(d.find(text), before);
        assert_eq!(before.len(), 2, "{before:?}");
    }
}
