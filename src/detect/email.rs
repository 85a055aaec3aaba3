//! The email scanner: anchored on each `@` (found with `memchr`), it reads the local part to the
//! left and the domain to the right, then judges the result.
//!
//! - Local part: ASCII `atext` (letters, digits, ``.!#$%&'*+-^_`~``) and Unicode letters and
//!   digits, at most 64 chars. `= / | { } ? :` and quotes end it, so `key=addr`, paths and
//!   `mailto:` stay out of the span; leading punctuation (`'`, `.`, `+` ...) is trimmed.
//! - Domain: labels of letters, digits and `-` (ASCII or Unicode), separated by `.`, at least two
//!   labels, each 1..=63 chars, not starting or ending with `-`; a trailing `.` is sentence
//!   punctuation, not part of the domain.
//! - The top-level label is letters only (any script, ≥ 2 chars) or punycode `xn--…`.
//! - Text written without spaces (CJK, Thai …) glued to an ASCII address is not part of it:
//!   when the char next to `@` is not from such a script, neither part may contain one.
//! - Not emails: a TLD from the rule's `asset_extensions` (`icon@2x.png`), a `2x`/`3x` first
//!   label, numeric TLDs (`pkg@1.2.3`, `user@10.0.0.5`), single labels (`foo@bar`,
//!   `image@sha256:…`), scp-like remotes (`git@github.com:org/repo.git`, `user@host:22`) and the
//!   user-info of ssh/VCS URLs (`ssh://git@host`, `git+ssh://git@host`). Other schemes' user-info
//!   is judged like any address (`contact://ana@example.org`, `http://ana@example.org/`): a
//!   resource URI that carries an address must not leak it.

use super::text::{char_at, char_before, is_glue_script, is_word_char};

/// Longest local part in chars (RFC 5321 counts octets of ASCII; EAI text is longer in UTF-8).
const MAX_LOCAL: usize = 64;
/// Longest domain in chars.
const MAX_DOMAIN: usize = 253;
/// Longest label in chars (the limit applies to the punycode form, which is no shorter).
const MAX_LABEL: usize = 63;

/// The compiled email engine.
#[derive(Debug, Clone)]
pub(crate) struct EmailEngine {
    /// Lower-case TLDs that mark a file name, not an address.
    asset_tlds: Vec<String>,
}

impl EmailEngine {
    pub(crate) fn new(asset_extensions: &[String]) -> EmailEngine {
        EmailEngine {
            asset_tlds: asset_extensions.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }

    /// Calls `push(start, end)` for each address, in order, non-overlapping.
    pub(crate) fn find(&self, text: &str, push: &mut dyn FnMut(usize, usize)) {
        let mut last_end = 0;
        for at in memchr::memchr_iter(b'@', text.as_bytes()) {
            if at < last_end {
                continue;
            }
            if let Some((s, e)) = self.match_at(text, at) {
                if s >= last_end {
                    push(s, e);
                    last_end = e;
                }
            }
        }
    }

    /// True when the whole of `s` is one address.
    pub(crate) fn is_email(&self, s: &str) -> bool {
        match memchr::memchr(b'@', s.as_bytes()) {
            Some(at) => self.match_at(s, at) == Some((0, s.len())),
            None => false,
        }
    }

    fn match_at(&self, text: &str, at: usize) -> Option<(usize, usize)> {
        let (prev, _) = char_before(text, at)?;
        let glue = is_glue_script(prev);
        let start = local_start(text, at, glue)?;
        if text[..start].ends_with("://") && is_service_login_scheme(&text[..start - 3]) {
            return None;
        }
        let end = self.domain_end(text, at + 1, glue)?;
        Some((start, end))
    }

    fn domain_end(&self, text: &str, from: usize, local_glue: bool) -> Option<usize> {
        let b = text.as_bytes();
        let (first, _) = char_at(text, from)?;
        let glue = local_glue || is_glue_script(first);
        let mut p = from;
        let mut labels = 0usize;
        let mut first_label = (from, from);
        let mut last_label = (from, from);
        let mut end = from;
        let mut domain_chars = 0usize;
        loop {
            let ls = p;
            // Outside glue mode each label is either all glue-script (`例子`, `测试`) or has
            // none: `example.cn谢谢` ends after `cn`, `gál.測試` keeps its TLD.
            let label_glue = char_at(text, p).is_some_and(|(c, _)| is_glue_script(c));
            let mut chars = 0;
            while let Some((c, l)) = char_at(text, p) {
                let ok = if c.is_ascii() {
                    c.is_ascii_alphanumeric() || c == '-'
                } else {
                    is_word_char(c) && (glue || is_glue_script(c) == label_glue)
                };
                if !ok {
                    break;
                }
                p += l;
                chars += 1;
                domain_chars += 1;
                if chars > MAX_LABEL {
                    return None;
                }
            }
            let label = &text[ls..p];
            if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
                break;
            }
            labels += 1;
            if labels == 1 {
                first_label = (ls, p);
            }
            last_label = (ls, p);
            end = p;
            if domain_chars > MAX_DOMAIN {
                return None;
            }
            if b.get(p) == Some(&b'.') {
                p += 1;
            } else {
                break;
            }
        }
        if labels < 2 {
            return None;
        }
        let tld = &text[last_label.0..last_label.1];
        if !valid_tld(tld) {
            return None;
        }
        if self.asset_tlds.iter().any(|a| a.eq_ignore_ascii_case(tld)) {
            return None;
        }
        if is_density_label(&text[first_label.0..first_label.1]) {
            return None;
        }
        // scp-like git remote or host:port: `git@github.com:org/repo.git`, `user@host:22`.
        if b.get(end) == Some(&b':') && scp_like(&text[end + 1..]) {
            return None;
        }
        Some(end)
    }
}

/// Start of the local part ending at `at`, or `None` when there is none.
fn local_start(text: &str, at: usize, glue: bool) -> Option<usize> {
    let mut p = at;
    let mut chars = 0;
    while let Some((c, l)) = char_before(text, p) {
        let ok = if c.is_ascii() {
            c.is_ascii_alphanumeric() || b"!#$%&'*+-^_`~.".contains(&(c as u8))
        } else {
            is_word_char(c) && (glue || !is_glue_script(c))
        };
        if !ok {
            break;
        }
        p -= l;
        chars += 1;
        if chars > MAX_LOCAL {
            return None;
        }
    }
    let mut local = &text[p..at];
    // `a..b@x` is not an address; what follows the last `..` may be.
    if let Some(i) = local.rfind("..") {
        local = &local[i + 2..];
    }
    // Leading punctuation belongs to the surrounding text (quotes, bullets, `+` of a list).
    let trimmed = local.trim_start_matches(|c: char| c.is_ascii_punctuation() && c != '_');
    if trimmed.is_empty() || trimmed.ends_with('.') {
        return None;
    }
    Some(at - trimmed.len())
}

/// What follows `user@host:` makes it a remote or an endpoint, not an address followed by a
/// colon: a path with `/`, a `.git` repository, a port number, or a `~` home path.
fn scp_like(rest: &str) -> bool {
    let token = rest
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | ')' | ']' | '>'))
        .next()
        .unwrap_or("");
    !token.is_empty()
        && (token.contains('/')
            || token.starts_with('~')
            || token.ends_with(".git")
            || token.bytes().all(|b| b.is_ascii_digit()))
}

/// A top-level label: letters of any script, at least two, or punycode.
fn valid_tld(tld: &str) -> bool {
    if tld.len() >= 6 && tld.as_bytes()[..4].eq_ignore_ascii_case(b"xn--") {
        return tld[4..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    }
    let mut letters = 0;
    for c in tld.chars() {
        if c.is_alphabetic() {
            letters += 1;
        } else if c.is_numeric() || c == '-' || !is_word_char(c) {
            return false;
        }
    }
    letters >= 2
}

/// `2x`, `3X`, `10x`: the pixel-density marker of an asset name (`icon@2x.png`).
fn is_density_label(label: &str) -> bool {
    let b = label.as_bytes();
    b.len() >= 2
        && (b[b.len() - 1] == b'x' || b[b.len() - 1] == b'X')
        && b[..b.len() - 1].iter().all(u8::is_ascii_digit)
}

/// True when the URL scheme ending `before` (the text before `://`) is an ssh or VCS transport,
/// whose user-info names a service login (`ssh://git@host`), not a mailbox.
fn is_service_login_scheme(before: &str) -> bool {
    // The scheme is the trailing run of ASCII scheme bytes, so the cut is a char boundary even
    // when a multi-byte character precedes it (`中://a@`).
    let len = before
        .bytes()
        .rev()
        .take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    let scheme = before[before.len() - len..].to_ascii_lowercase();
    matches!(
        scheme.as_str(),
        "ssh" | "git+ssh" | "ssh+git" | "svn+ssh" | "sftp" | "scp" | "git" | "rsync"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn engine() -> EmailEngine {
        EmailEngine::new(&["png".to_string(), "js".to_string()])
    }

    #[test]
    fn a_multibyte_character_before_a_scheme_is_not_cut() {
        // Found by the detector's property test: the scheme's start was taken one byte past
        // the last non-scheme character, inside `中`.
        assert!(!is_service_login_scheme("中"));
        assert!(is_service_login_scheme("中ssh"));
        assert!(is_service_login_scheme("见 git+ssh"));
        let e = engine();
        let mut found = Vec::new();
        for text in ["中://a@", "中://a@example.org", "中ssh://git@example.org"] {
            e.find(text, &mut |s, end| found.push(&text[s..end]));
        }
        // A plain URL's user-info is an address; an ssh login is not.
        assert_eq!(found, ["a@example.org"]);
    }

    fn found(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        engine().find(text, &mut |s, e| v.push((s, e)));
        v.into_iter().map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn basics() {
        assert_eq!(
            found("a ana.lima+tag@mail.example.org."),
            ["ana.lima+tag@mail.example.org"]
        );
        assert_eq!(found("联系我zhang.wei@example.cn谢谢"), ["zhang.wei@example.cn"]);
        assert_eq!(found("user_email=ana@example.org"), ["ana@example.org"]);
        assert_eq!(found("mailto:ana@example.org"), ["ana@example.org"]);
        assert_eq!(found("用户@例子.广告"), ["用户@例子.广告"]);
        assert!(found("icon@2x.png git@github.com:org/repo.git pkg@1.2.3 foo@bar").is_empty());
        assert!(found("ssh://git@example.com/org/repo @ @@ a@ @b.c").is_empty());
    }

    #[test]
    fn whole_match() {
        assert!(engine().is_email("ana@example.org"));
        assert!(!engine().is_email("ana@example.org x"));
        assert!(!engine().is_email("nope"));
    }
}
