//! Finding placeholder-shaped text (`[KIND_N]`) in a string.
//!
//! A match is `[`, then `KIND_N` made only of `A-Z`, `0-9` and `_`, then `]`, where KIND (the
//! part before the last `_`) is one of the detector's kinds and N is a decimal number from 1
//! without a leading zero that fits in a `u64` (the same grammar as
//! [`Placeholder::parse`](crate::vault::Placeholder::parse)). Anything else (`[TODO_1]` when
//! `TODO` is not a kind, `[EMAIL_01]`, `[EMAIL_]`) is plain text.
//!
//! Matches never overlap and can't straddle a boundary with other text: a match holds exactly
//! one `[` (its first byte) and one `]` (its last). So when every match in a text is replaced
//! and the text between is kept, the only matches in the output are the replacements.

use crate::detect::Kind;

/// One placeholder-shaped match: byte range, index of its kind in the kind list, its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) kind: usize,
    pub(crate) n: u64,
}

/// True when the byte may appear between the brackets of a placeholder.
fn inner_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// Parses `KIND_N` (without brackets) against `kinds`.
fn parse_inner(inner: &str, kinds: &[Kind]) -> Option<(usize, u64)> {
    let (kind, n) = inner.rsplit_once('_')?;
    if n.is_empty() || n.starts_with('0') {
        return None;
    }
    // `inner` holds only [A-Z0-9_] and `n` follows the last '_', so it is all digits here.
    let n: u64 = n.parse().ok()?;
    let kind = kinds.iter().position(|k| k.as_str() == kind)?;
    Some((kind, n))
}

/// The first match at or after byte `from` (which must be a char boundary).
pub(crate) fn next_placeholder(text: &str, from: usize, kinds: &[Kind]) -> Option<Found> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        let start = i + memchr::memchr(b'[', &b[i..])?;
        let mut j = start + 1;
        while j < b.len() && inner_byte(b[j]) {
            j += 1;
        }
        if j < b.len() && b[j] == b']' {
            // All bytes in start+1..j are ASCII, so these are char boundaries.
            if let Some((kind, n)) = parse_inner(&text[start + 1..j], kinds) {
                return Some(Found {
                    start,
                    end: j + 1,
                    kind,
                    n,
                });
            }
        }
        // No '[' in start+1..j (all inner bytes), and b[j] is ASCII or j == len.
        i = j;
    }
    None
}

/// Every match in `text`, in order.
pub(crate) fn placeholders<'a>(text: &'a str, kinds: &'a [Kind]) -> impl Iterator<Item = Found> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let f = next_placeholder(text, from, kinds)?;
        from = f.end;
        Some(f)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kinds() -> Vec<Kind> {
        vec![Kind::email(), Kind::phone(), Kind::new("CUSTOMER_ID").unwrap()]
    }

    fn found(text: &str) -> Vec<(&str, usize, u64)> {
        let k = kinds();
        placeholders(text, &k)
            .map(|f| (&text[f.start..f.end], f.kind, f.n))
            .collect()
    }

    #[test]
    fn table() {
        type Want = &'static [(&'static str, usize, u64)];
        let cases: &[(&str, Want)] = &[
            ("", &[]),
            ("no brackets", &[]),
            ("[EMAIL_1]", &[("[EMAIL_1]", 0, 1)]),
            (
                "to [EMAIL_1] and [PHONE_12].",
                &[("[EMAIL_1]", 0, 1), ("[PHONE_12]", 1, 12)],
            ),
            ("[CUSTOMER_ID_7]", &[("[CUSTOMER_ID_7]", 2, 7)]),
            ("[[EMAIL_1]]", &[("[EMAIL_1]", 0, 1)]),
            ("[EMAIL_[EMAIL_2]]", &[("[EMAIL_2]", 0, 2)]),
            ("[EMAIL_1][EMAIL_2]", &[("[EMAIL_1]", 0, 1), ("[EMAIL_2]", 0, 2)]),
            ("é[EMAIL_3]ü", &[("[EMAIL_3]", 0, 3)]),
            (
                "[EMAIL_18446744073709551615]",
                &[("[EMAIL_18446744073709551615]", 0, u64::MAX)],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(found(text), *want, "{text:?}");
        }
    }

    #[test]
    fn not_placeholders() {
        for text in [
            "[TODO_1]",
            "[EMAIL_01]",
            "[EMAIL_0]",
            "[EMAIL_]",
            "[EMAIL]",
            "[_1]",
            "[email_1]",
            "[EMAIL_1",
            "EMAIL_1]",
            "[EMAIL_1 ]",
            "[ EMAIL_1]",
            "[EMAIL__1]",
            "[CUSTOMER_1]",
            "[EMAIL_18446744073709551616]",
            "[EMAIL_1a]",
            "[ＥMAIL_1]",
            "[EMAIL_１]",
        ] {
            assert_eq!(found(text), [], "{text:?}");
        }
    }

    #[test]
    fn agrees_with_placeholder_parse() {
        use crate::vault::Placeholder;
        let k = kinds();
        for text in [
            "[EMAIL_1]",
            "[PHONE_99]",
            "[CUSTOMER_ID_3]",
            "[EMAIL_01]",
            "[X_1]",
        ] {
            let ours = placeholders(text, &k).next().map(|f| (k[f.kind].clone(), f.n));
            let theirs = Placeholder::parse(text)
                .filter(|p| k.contains(&p.kind))
                .map(|p| (p.kind, p.n));
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
