//! Rule files: the TOML format for built-in and custom rules, and their compilation.
//!
//! A file holds one or more `[[rule]]` tables. Every rule has a `kind` (its KIND, upper case,
//! see [`Kind`]) and exactly one way to match:
//!
//! | key | meaning |
//! | --- | --- |
//! | `name` | optional rule name used in errors (default: the kind in lower case); unique |
//! | `kind` | the KIND reported, e.g. `CUSTOMER_ID` (`[A-Z][A-Z0-9_]*`, not ending in `_`) |
//! | `description` | optional free text |
//! | `pattern` | a regex (Rust `regex` syntax: linear time, no look-around/back-references) |
//! | `group` | with `pattern`: report this capture group (number) instead of the whole match |
//! | `validators` | with `pattern`: names of checks every match must pass, see below |
//! | `terms` | a list of literal strings, matched with aho-corasick (leftmost-longest) |
//! | `case_insensitive` | with `terms`: ASCII case-insensitive (default `false`) |
//! | `whole_word` | with `terms`: the term must not touch a letter, digit or `_` (default `true`) |
//! | `context` | words of which one must appear within `context_window` bytes before a match (case-insensitive: ASCII folding plus the upper-case and capitalised forms of other words; at a word start); for `engine = "phone"` the positive words |
//! | `negative_context` | `engine = "phone"` only: words that, when nearest, reject a bare national number |
//! | `context_window` | bytes before a match searched for context (default 32) |
//! | `engine` | `"email"` or `"phone"`: the native scanners (see `email.rs`, `phone.rs`) |
//! | `asset_extensions` | `engine = "email"`: TLDs that mark a file name (`icon@2x.png`) |
//! | `national_regions` | `engine = "phone"`: region codes whose national formats are read without `+` |
//! | `number_keys` | `engine = "phone"`: words that, in a JSON member name or table column header (split at `_`, `-`, spaces and camelCase, any case; a qualifier may be glued on: `phonenumber`), make an integer of 7 to 15 digits a phone number, and a number in a string under that member or in that column count as preceded by a context word |
//! | `shared_kind` | `true` when this rule deliberately reports a KIND another rule also reports |
//!
//! Validators: `email` (the match is exactly one email address), `phone` (exactly one phone
//! number), `luhn` (digits pass the Luhn check), `luhn_reject` (they do not), `iban` (ISO 13616
//! mod-97 check).
//!
//! ```toml
//! [[rule]]
//! kind = "CUSTOMER_ID"
//! pattern = '\bCUST-[0-9]{6}\b'
//!
//! [[rule]]
//! name = "card"
//! kind = "CARD"
//! pattern = '\b[0-9](?:[ -]?[0-9]){12,18}\b'
//! validators = ["luhn"]
//! context = ["card", "visa", "mastercard"]
//!
//! [[rule]]
//! kind = "PROJECT"
//! terms = ["Bluebird", "Nightjar"]
//! case_insensitive = true
//! ```
//!
//! The built-in rules are `rules/email.toml` and `rules/phone.toml`, embedded in the binary;
//! the phone engine also embeds `rules/phone_regions.json` (generated from libphonenumber by
//! `scripts/gen_phone_meta.py`).

use std::fmt;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::Deserialize;

use super::email::EmailEngine;
use super::phone::{luhn, PhoneEngine};
use super::text::{char_at, char_before, floor_boundary};
use super::Kind;
use crate::error::{Error, Result};

/// The built-in email rule file.
pub(crate) const EMAIL_TOML: &str = include_str!("../../rules/email.toml");
/// The built-in phone rule file.
pub(crate) const PHONE_TOML: &str = include_str!("../../rules/phone.toml");

/// Default context window in bytes.
const DEFAULT_WINDOW: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleDef>,
}

/// One rule as written in a rule file (see the [module docs](self) for every key).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Rule name used in errors; defaults to the kind in lower case.
    #[serde(default)]
    pub name: Option<String>,
    /// The KIND this rule reports.
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// A native engine: `"email"` or `"phone"`.
    #[serde(default)]
    pub engine: Option<String>,
    /// A regex.
    #[serde(default)]
    pub pattern: Option<String>,
    /// With `pattern`: the capture group to report.
    #[serde(default)]
    pub group: Option<usize>,
    /// With `pattern`: validators every match must pass.
    #[serde(default)]
    pub validators: Vec<String>,
    /// Literal terms.
    #[serde(default)]
    pub terms: Option<Vec<String>>,
    /// With `terms`: ASCII case-insensitive matching (default false).
    #[serde(default)]
    pub case_insensitive: bool,
    /// With `terms`: whole words only (default true).
    #[serde(default)]
    pub whole_word: Option<bool>,
    /// Context words (required before a match; for the phone engine: positive words).
    #[serde(default)]
    pub context: Vec<String>,
    /// Phone engine: negative context words.
    #[serde(default)]
    pub negative_context: Vec<String>,
    /// Bytes before a match searched for context words (default 32).
    #[serde(default)]
    pub context_window: Option<usize>,
    /// Email engine: TLDs that mark file names.
    #[serde(default)]
    pub asset_extensions: Vec<String>,
    /// Phone engine: regions read in national format.
    #[serde(default)]
    pub national_regions: Vec<String>,
    /// Phone engine: JSON integers (7 to 15 digits) under a member whose name holds one of
    /// these words are phone numbers (`"phone": 4915123456789`); a number in a string under
    /// such a member, or in a table column with such a header, counts as in context.
    #[serde(default)]
    pub number_keys: Vec<String>,
    /// This rule deliberately shares its KIND with another rule.
    #[serde(default)]
    pub shared_kind: bool,
}

impl fmt::Debug for RuleDef {
    // Terms may be sensitive (customer ids); Debug shows their number only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("engine", &self.engine)
            .field("pattern", &self.pattern.is_some())
            .field("terms", &self.terms.as_ref().map(Vec::len))
            .field("validators", &self.validators)
            .finish_non_exhaustive()
    }
}

impl RuleDef {
    /// The name errors use.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.kind.to_ascii_lowercase(),
        }
    }
}

/// Parses a rule file's text; `origin` (a path or `"<inline>"`) names it in errors.
pub(crate) fn parse_rules(text: &str, origin: &str) -> Result<Vec<RuleDef>> {
    let file: RuleFile = toml::from_str(text).map_err(|e| {
        // toml's message quotes the offending line, which may hold a sensitive term: keep the
        // position and the reason only.
        let msg = e.message().to_string();
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        Error::rule(origin, format!("invalid rule file{at}: {msg}"))
    })?;
    if file.rule.is_empty() {
        return Err(Error::rule(origin, "the file holds no [[rule]]"));
    }
    Ok(file.rule)
}

/// A named check on a regex match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validator {
    Email,
    Phone,
    Luhn,
    LuhnReject,
    Iban,
}

impl Validator {
    fn parse(name: &str) -> Option<Validator> {
        Some(match name {
            "email" => Validator::Email,
            "phone" => Validator::Phone,
            "luhn" => Validator::Luhn,
            "luhn_reject" => Validator::LuhnReject,
            "iban" => Validator::Iban,
            _ => return None,
        })
    }

    fn check(self, s: &str) -> bool {
        match self {
            Validator::Email => builtin_engines().0.is_email(s),
            Validator::Phone => builtin_engines().1.is_phone(s),
            Validator::Luhn => luhn_digits(s) == Some(true),
            Validator::LuhnReject => luhn_digits(s) != Some(true),
            Validator::Iban => iban_ok(s),
        }
    }
}

/// Luhn over the ASCII digits of `s` (spaces and dashes ignored); `None` unless 12..=19 digits.
fn luhn_digits(s: &str) -> Option<bool> {
    let mut buf = [0u8; 19];
    let mut n = 0;
    for b in s.bytes() {
        if b.is_ascii_digit() {
            if n == buf.len() {
                return None;
            }
            buf[n] = b;
            n += 1;
        } else if b != b' ' && b != b'-' {
            return None;
        }
    }
    if n < 12 {
        return None;
    }
    Some(luhn(std::str::from_utf8(&buf[..n]).expect("ASCII digits")))
}

/// ISO 13616 IBAN check (spaces ignored).
fn iban_ok(s: &str) -> bool {
    let chars: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&chars.len())
        || !chars[..2].iter().all(u8::is_ascii_alphabetic)
        || !chars[2..4].iter().all(u8::is_ascii_digit)
        || !chars.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut rem = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c.to_ascii_uppercase() - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Required context words before a match.
struct Context {
    ac: AhoCorasick,
    window: usize,
}

impl Context {
    fn build(rule: &str, words: &[String], window: usize) -> Result<Option<Context>> {
        if words.is_empty() {
            return Ok(None);
        }
        if words.iter().any(String::is_empty) {
            return Err(Error::rule(rule, "an empty context word"));
        }
        let mut all: Vec<String> = Vec::new();
        for w in words {
            for v in super::phone::case_variants(w) {
                if !all.contains(&v) {
                    all.push(v);
                }
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&all)
            .map_err(|e| Error::rule(rule, format!("context words: {e}")))?;
        Ok(Some(Context { ac, window }))
    }

    fn present(&self, text: &str, start: usize) -> bool {
        let ws = floor_boundary(text, start.saturating_sub(self.window));
        let w = &text[ws..start];
        self.ac
            .find_iter(w)
            .any(|m| char_before(w, m.start()).is_none_or(|(c, _)| !c.is_alphanumeric()))
    }
}

/// A regex rule.
pub(crate) struct RegexRule {
    re: Regex,
    group: usize,
    validators: Vec<Validator>,
    context: Option<Context>,
}

/// A literal-terms rule.
pub(crate) struct TermsRule {
    ac: AhoCorasick,
    whole_word: bool,
    context: Option<Context>,
    first_bytes: Box<[bool; 256]>,
}

/// How a rule matches.
pub(crate) enum Engine {
    Email(EmailEngine),
    Phone(PhoneEngine),
    Regex(Box<RegexRule>),
    Terms(Box<TermsRule>),
}

/// A compiled rule.
pub(crate) struct CompiledRule {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) shared_kind: bool,
    pub(crate) engine: Engine,
    /// Lower-case words of `number_keys`.
    pub(crate) number_keys: Vec<String>,
}

impl fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = match self.engine {
            Engine::Email(_) => "email",
            Engine::Phone(_) => "phone",
            Engine::Regex(_) => "regex",
            Engine::Terms(_) => "terms",
        };
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("engine", &engine)
            .finish()
    }
}

/// What a prefilter needs to know about a text, computed at most once per call.
pub(crate) struct Probe<'a> {
    text: &'a str,
    at: Option<bool>,
    digits: Option<bool>,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(text: &'a str) -> Probe<'a> {
        Probe {
            text,
            at: None,
            digits: None,
        }
    }
    fn has_at(&mut self) -> bool {
        *self
            .at
            .get_or_insert_with(|| memchr::memchr(b'@', self.text.as_bytes()).is_some())
    }
    fn has_digits(&mut self) -> bool {
        *self
            .digits
            .get_or_insert_with(|| super::text::has_digit_run(self.text, 7))
    }
}

impl CompiledRule {
    /// Compiles one rule definition.
    pub(crate) fn compile(def: &RuleDef) -> Result<CompiledRule> {
        let name = def.display_name();
        let kind = Kind::new(&def.kind).map_err(|_| {
            Error::rule(
                &name,
                format!(
                    "invalid kind {:?}: a KIND is upper-case ASCII letters, digits and '_', starting with a letter and not ending with '_'",
                    def.kind
                ),
            )
        })?;
        let window = def.context_window.unwrap_or(DEFAULT_WINDOW);
        if window > 1024 {
            return Err(Error::rule(&name, "context_window is at most 1024 bytes"));
        }
        let ways = usize::from(def.engine.is_some())
            + usize::from(def.pattern.is_some())
            + usize::from(def.terms.is_some());
        if ways != 1 {
            return Err(Error::rule(
                &name,
                "a rule needs exactly one of `pattern`, `terms` or `engine`",
            ));
        }
        let misplaced = |key: &str, ok: bool| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::rule(
                    &name,
                    format!("`{key}` does not apply to this kind of rule"),
                ))
            }
        };
        let is_engine = |e: &str| def.engine.as_deref() == Some(e);
        misplaced("validators", def.validators.is_empty() || def.pattern.is_some())?;
        misplaced("group", def.group.is_none() || def.pattern.is_some())?;
        misplaced("case_insensitive", !def.case_insensitive || def.terms.is_some())?;
        misplaced("whole_word", def.whole_word.is_none() || def.terms.is_some())?;
        misplaced(
            "negative_context",
            def.negative_context.is_empty() || is_engine("phone"),
        )?;
        misplaced(
            "national_regions",
            def.national_regions.is_empty() || is_engine("phone"),
        )?;
        misplaced(
            "asset_extensions",
            def.asset_extensions.is_empty() || is_engine("email"),
        )?;
        misplaced("number_keys", def.number_keys.is_empty() || is_engine("phone"))?;
        if let Some(bad) = def
            .number_keys
            .iter()
            .find(|w| w.is_empty() || !w.chars().all(char::is_alphanumeric))
        {
            return Err(Error::rule(
                &name,
                format!("number_keys: {bad:?} is not one word (letters and digits only)"),
            ));
        }

        let engine = if let Some(engine) = &def.engine {
            match engine.as_str() {
                "email" => {
                    misplaced("context", def.context.is_empty())?;
                    Engine::Email(EmailEngine::new(&def.asset_extensions))
                }
                "phone" => Engine::Phone(PhoneEngine::new(
                    &name,
                    &def.context,
                    &def.negative_context,
                    window,
                    &def.national_regions,
                    &def.number_keys,
                )?),
                other => {
                    return Err(Error::rule(
                        &name,
                        format!("unknown engine {other:?} (known: \"email\", \"phone\")"),
                    ))
                }
            }
        } else if let Some(pattern) = &def.pattern {
            let re = regex::RegexBuilder::new(pattern)
                .size_limit(16 << 20)
                .build()
                .map_err(|e| {
                    // regex's message quotes the pattern, which may embed literal identifiers:
                    // keep its last line, the reason.
                    let msg = e.to_string();
                    let reason = msg
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .trim_start_matches("error: ");
                    Error::rule(&name, format!("invalid pattern: {reason}"))
                })?;
            let group = def.group.unwrap_or(0);
            if group >= re.captures_len() {
                return Err(Error::rule(
                    &name,
                    format!(
                        "group {group} does not exist (the pattern has {} groups)",
                        re.captures_len() - 1
                    ),
                ));
            }
            let mut validators = Vec::new();
            for v in &def.validators {
                validators.push(Validator::parse(v).ok_or_else(|| {
                    Error::rule(
                        &name,
                        format!("unknown validator {v:?} (known: email, phone, luhn, luhn_reject, iban)"),
                    )
                })?);
            }
            if re.is_match("") {
                return Err(Error::rule(&name, "the pattern matches the empty string"));
            }
            Engine::Regex(Box::new(RegexRule {
                re,
                group,
                validators,
                context: Context::build(&name, &def.context, window)?,
            }))
        } else {
            let terms = def.terms.as_deref().unwrap_or(&[]);
            if terms.is_empty() || terms.iter().any(String::is_empty) {
                return Err(Error::rule(
                    &name,
                    "`terms` must be a non-empty list of non-empty strings",
                ));
            }
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(def.case_insensitive)
                .match_kind(MatchKind::LeftmostLongest)
                .build(terms)
                .map_err(|e| Error::rule(&name, format!("terms: {e}")))?;
            let mut first_bytes = Box::new([false; 256]);
            for t in terms {
                let b = t.as_bytes()[0];
                first_bytes[usize::from(b)] = true;
                if def.case_insensitive {
                    first_bytes[usize::from(b.to_ascii_lowercase())] = true;
                    first_bytes[usize::from(b.to_ascii_uppercase())] = true;
                }
            }
            Engine::Terms(Box::new(TermsRule {
                ac,
                whole_word: def.whole_word.unwrap_or(true),
                context: Context::build(&name, &def.context, window)?,
                first_bytes,
            }))
        };
        Ok(CompiledRule {
            name,
            kind,
            shared_kind: def.shared_kind,
            engine,
            number_keys: def.number_keys.iter().map(|w| w.to_lowercase()).collect(),
        })
    }

    /// False when `text` certainly holds no match of this rule (never false when [`find`](Self::find)
    /// would report one: the email engine anchors on `@`, the phone engine needs seven digits in
    /// one run it can read, a term starts with one of its first bytes).
    pub(crate) fn might_match(&self, probe: &mut Probe<'_>) -> bool {
        match &self.engine {
            Engine::Email(_) => probe.has_at(),
            Engine::Phone(_) => probe.has_digits(),
            Engine::Regex(_) => true,
            Engine::Terms(t) => probe.text.bytes().any(|b| t.first_bytes[usize::from(b)]),
        }
    }

    /// Calls `push(start, end)` for every match in `text`.
    #[cfg(test)]
    pub(crate) fn find(&self, text: &str, push: &mut dyn FnMut(usize, usize)) {
        self.find_keyed(text, None, push);
    }

    /// Like [`find`](Self::find) for the value of JSON member `key` (the phone engine reads a
    /// key that names a phone as context).
    pub(crate) fn find_keyed(&self, text: &str, key: Option<&str>, push: &mut dyn FnMut(usize, usize)) {
        match &self.engine {
            Engine::Email(e) => e.find(text, push),
            Engine::Phone(p) => p.find_keyed(text, key, push),
            Engine::Regex(r) => {
                for caps in r.re.captures_iter(text) {
                    let Some(m) = caps.get(r.group) else { continue };
                    if m.start() == m.end() {
                        continue;
                    }
                    if r.validators.iter().all(|v| v.check(m.as_str()))
                        && r.context.as_ref().is_none_or(|c| c.present(text, m.start()))
                    {
                        push(m.start(), m.end());
                    }
                }
            }
            Engine::Terms(t) => {
                for m in t.ac.find_iter(text) {
                    if t.whole_word {
                        let before = char_before(text, m.start()).is_some_and(|(c, _)| is_word(c));
                        let after = char_at(text, m.end()).is_some_and(|(c, _)| is_word(c));
                        if before || after {
                            continue;
                        }
                    }
                    if t.context.as_ref().is_none_or(|c| c.present(text, m.start())) {
                        push(m.start(), m.end());
                    }
                }
            }
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The built-in rules, compiled once.
pub(crate) fn builtin_rules() -> &'static [std::sync::Arc<CompiledRule>] {
    static RULES: OnceLock<Vec<std::sync::Arc<CompiledRule>>> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut out = Vec::new();
        for (text, origin) in [(EMAIL_TOML, "rules/email.toml"), (PHONE_TOML, "rules/phone.toml")] {
            let defs = parse_rules(text, origin).expect("built-in rule files parse (tested)");
            for d in &defs {
                out.push(std::sync::Arc::new(
                    CompiledRule::compile(d).expect("built-in rules compile (tested)"),
                ));
            }
        }
        out
    })
}

/// The built-in email and phone engines, for the `email` and `phone` validators.
fn builtin_engines() -> (&'static EmailEngine, &'static PhoneEngine) {
    let rules = builtin_rules();
    let email = rules
        .iter()
        .find_map(|r| match &r.engine {
            Engine::Email(e) => Some(e),
            _ => None,
        })
        .expect("rules/email.toml holds the email engine");
    let phone = rules
        .iter()
        .find_map(|r| match &r.engine {
            Engine::Phone(p) => Some(p),
            _ => None,
        })
        .expect("rules/phone.toml holds the phone engine");
    (email, phone)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtins_compile() {
        assert_eq!(builtin_rules().len(), 2);
    }

    #[test]
    fn iban_and_luhn() {
        assert!(iban_ok("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_ok("GB82 WEST 1234 5698 7654 33"));
        assert_eq!(luhn_digits("4111 1111 1111 1111"), Some(true));
        assert_eq!(luhn_digits("12"), None);
    }

    #[test]
    fn errors_name_the_rule() {
        let e = CompiledRule::compile(&RuleDef {
            name: Some("bad-one".into()),
            kind: "X".into(),
            pattern: Some("(".into()),
            ..RuleDef::default()
        })
        .unwrap_err();
        assert!(e.is_rule());
        assert!(e.to_string().contains("bad-one"), "{e}");
        let e = parse_rules("[[rule]]\nkind = \"X\"\nbogus = 1\n", "f.toml").unwrap_err();
        assert!(e.to_string().contains("f.toml"), "{e}");
    }
}
