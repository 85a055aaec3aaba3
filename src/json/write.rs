//! Compact JSON serialization of a [`Value`], byte for byte what `serde_json::to_vec` writes,
//! but faster on long strings: a tokenized tool result is mostly one long string, and
//! serde_json looks up every byte of it in an escape table. Here strings are scanned eight
//! bytes at a time and copied in runs.
//!
//! [`write_parsed`] writes a value that came from [`super::parse`], copying the source token of
//! every string and number that still decodes to what the value holds.

use serde_json::Value;

use super::parse::{decode_str_token, number_value, Leaf, DEAD, ESCAPED, NUM};

/// Writes `v` like [`write_value`], taking each string and number from the next live leaf of
/// `src` when that token decodes to exactly the same string or number. A leaf that does not
/// match (the gateway rewrote that string) is consumed and the new text is encoded instead.
/// Strings are compared exactly; numbers by their `serde_json` value, which is exact only
/// while the leaves line up with `v` (see `Parsed::to_vec`).
pub(super) fn write_parsed(v: &Value, src: &[u8], leaves: &[Leaf], out: &mut Vec<u8>) {
    let mut cur = Leaves { src, leaves, next: 0 };
    write_with(v, &mut cur, out);
}

struct Leaves<'a> {
    src: &'a [u8],
    leaves: &'a [Leaf],
    next: usize,
}

impl<'a> Leaves<'a> {
    fn take(&mut self) -> Option<(&'a [u8], u8)> {
        while let Some(l) = self.leaves.get(self.next) {
            self.next += 1;
            if l.flags & DEAD == 0 {
                return Some((&self.src[l.start as usize..l.end as usize], l.flags));
            }
        }
        None
    }

    fn string(&mut self, s: &str, out: &mut Vec<u8>) {
        if let Some((raw, flags)) = self.take() {
            if flags & NUM == 0 {
                let same = if flags & ESCAPED == 0 {
                    raw.len() == s.len() + 2 && &raw[1..raw.len() - 1] == s.as_bytes()
                } else {
                    decode_str_token(raw).as_deref() == Some(s)
                };
                if same {
                    out.extend_from_slice(raw);
                    return;
                }
            }
        }
        write_str(s, out);
    }
}

fn write_with(v: &Value, cur: &mut Leaves<'_>, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => cur.string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_with(item, cur, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                cur.string(k, out);
                out.push(b':');
                write_with(item, cur, out);
            }
            out.push(b'}');
        }
        Value::Number(n) => match cur.take() {
            Some((raw, flags)) if flags & NUM != 0 && number_value(raw) == *n => out.extend_from_slice(raw),
            _ => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
        },
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
    }
}

/// Appends the compact JSON text of `v` to `out` (the same bytes as `serde_json::to_vec`): the
/// writer of [`write_parsed`] with no source to take tokens from.
pub(crate) fn write_value(v: &Value, out: &mut Vec<u8>) {
    write_parsed(v, &[], &[], out);
}

/// The compact JSON text of `v`, with room for about `hint` bytes reserved up front.
pub(crate) fn to_vec_sized(v: &Value, hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(hint + hint / 8 + 16);
    write_value(v, &mut out);
    out
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// True when one of the eight bytes of `x` is below 0x20, a `"` or a `\`.
#[inline]
pub(super) fn word_needs_escape(x: u64) -> bool {
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    let q = x ^ (LO * b'"' as u64);
    let quote = q.wrapping_sub(LO) & !q & HI;
    let b = x ^ (LO * b'\\' as u64);
    let backslash = b.wrapping_sub(LO) & !b & HI;
    (below_space | quote | backslash) != 0
}

#[inline]
fn byte_needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    // `run` is where the bytes not yet copied start.
    let mut run = 0;
    let mut i = 0;
    while i < b.len() {
        if i + 8 <= b.len() {
            let word = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
            if !word_needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(b.len());
        for j in i..end {
            let c = b[j];
            if byte_needs_escape(c) {
                out.extend_from_slice(&b[run..j]);
                escape(c, out);
                run = j + 1;
            }
        }
        i = end;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

fn escape(c: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match c {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(c >> 4) as usize],
            HEX[(c & 0xf) as usize],
        ]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn same(v: &Value) {
        let mut out = Vec::new();
        write_value(v, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(v).unwrap());
    }

    #[test]
    fn table() {
        for v in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-17),
            json!(u64::MAX),
            json!(1.5),
            json!(1e300),
            json!(-0.0),
            json!(""),
            json!("plain"),
            json!("exactly8"),
            json!("quote \" backslash \\ slash / nl \n cr \r tab \t bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f}"),
            json!("ünïcödé ✉ 📞 \u{2028} \u{2029}"),
            json!("\"\"\"\"\"\"\"\"\"\\"),
            json!([]),
            json!({}),
            json!([1, "a", null, [true, {"k\"ey": "v\nal"}]]),
            json!({"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "call [PHONE_1]"}]}}),
        ] {
            same(&v);
        }
        // Every escape position inside and across eight-byte words.
        for len in 0..20 {
            for pos in 0..len {
                for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '~', 'é'] {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(pos..pos + 1, &c.to_string());
                    same(&Value::String(s));
                }
            }
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            "[ -~\\x00-\\x1f\"\\\\]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\\\n]{0,6}", inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn matches_serde_json(v in arb_value()) {
            let mut out = Vec::new();
            write_value(&v, &mut out);
            prop_assert_eq!(out, serde_json::to_vec(&v).unwrap());
        }
    }
}
