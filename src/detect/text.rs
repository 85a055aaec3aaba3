//! Character helpers shared by the scanners: decimal digits of many scripts, scripts that are
//! written without spaces (so PII can be glued to them), and char-boundary-safe stepping.

/// The zero of every decimal digit block the scanners read besides ASCII: Arabic-Indic,
/// Extended Arabic-Indic (Persian/Urdu), NKo, Devanagari, Bengali, Gurmukhi, Gujarati, Oriya,
/// Tamil, Telugu, Kannada, Malayalam, Sinhala, Thai, Lao, Tibetan, Myanmar, Myanmar Shan, Khmer,
/// Mongolian and full-width digits. Each block is ten consecutive code points.
const DIGIT_ZEROS: [u32; 21] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6,
    0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0xFF10,
];

/// The value of a decimal digit of any supported script.
#[inline]
pub(crate) fn char_digit(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let u = c as u32;
    if u < 0x0660 {
        return None;
    }
    DIGIT_ZEROS
        .iter()
        .find(|&&z| u >= z && u < z + 10)
        .map(|&z| (u - z) as u8)
}

/// The char starting at byte `i` (which must be a char boundary) and its length.
#[inline]
pub(crate) fn char_at(text: &str, i: usize) -> Option<(char, usize)> {
    let b = *text.as_bytes().get(i)?;
    if b < 0x80 {
        return Some((b as char, 1));
    }
    let c = text.get(i..)?.chars().next()?;
    Some((c, c.len_utf8()))
}

/// The char ending at byte `i` (a char boundary) and its length.
#[inline]
pub(crate) fn char_before(text: &str, i: usize) -> Option<(char, usize)> {
    if i == 0 {
        return None;
    }
    let b = *text.as_bytes().get(i - 1)?;
    if b < 0x80 {
        return Some((b as char, 1));
    }
    let c = text.get(..i)?.chars().next_back()?;
    Some((c, c.len_utf8()))
}

/// The decimal digit at byte `i` (a char boundary): its value and byte length.
#[inline]
pub(crate) fn digit_at(text: &str, i: usize) -> Option<(u8, usize)> {
    let b = *text.as_bytes().get(i)?;
    if b.is_ascii_digit() {
        return Some((b - b'0', 1));
    }
    if b < 0x80 {
        return None;
    }
    let (c, l) = char_at(text, i)?;
    char_digit(c).map(|d| (d, l))
}

/// True for characters of scripts written without spaces between words (Han, Kana, Hangul,
/// full-width forms, Thai, Lao, Khmer, Myanmar) and their punctuation. PII glued to such text
/// ends where the script changes.
#[inline]
pub(crate) fn is_glue_script(c: char) -> bool {
    let u = c as u32;
    matches!(u,
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1100..=0x11FF    // Hangul Jamo
        | 0x1780..=0x17FF    // Khmer
        | 0x2E80..=0x2FDF    // CJK radicals
        | 0x3000..=0x33FF    // CJK punctuation, Kana, Bopomofo, compatibility
        | 0x3400..=0x4DBF    // CJK ext A
        | 0x4E00..=0x9FFF    // CJK unified
        | 0xA960..=0xA97F
        | 0xAC00..=0xD7FF    // Hangul
        | 0xF900..=0xFAFF    // CJK compatibility
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFFEF    // half/full-width forms
        | 0x20000..=0x3FFFF // CJK ext B..
    )
}

/// True for letters, digits and the combining marks and joiners that words of many scripts
/// need (Devanagari virama, Thai vowel signs, `i̇`'s combining dot, ZWJ/ZWNJ).
#[inline]
pub(crate) fn is_word_char(c: char) -> bool {
    if c.is_alphanumeric() {
        return true;
    }
    let u = c as u32;
    if u < 0x0300 {
        return false;
    }
    matches!(u,
        0x0300..=0x036F          // combining diacritics
        | 0x0483..=0x0489
        | 0x0591..=0x05C7        // Hebrew points
        | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06ED // Arabic marks
        | 0x0900..=0x0963 | 0x0971..=0x0DFF // Indic scripts (not the dandas)
        | 0x0E00..=0x0E3E | 0x0E40..=0x0E4E | 0x0E80..=0x0EFF // Thai, Lao (not punctuation)
        | 0x0F00..=0x0FFF        // Tibetan
        | 0x1000..=0x1049 | 0x1050..=0x109F // Myanmar
        | 0x1780..=0x17D3 | 0x17DB..=0x17FF // Khmer
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F
        | 0x200C | 0x200D        // ZWNJ, ZWJ
        | 0x3099 | 0x309A        // kana voicing marks
    )
}

/// Largest char boundary `<= i`.
#[inline]
pub(crate) fn floor_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// True when `text` holds at least `n` decimal digits of any supported script.
pub(crate) fn has_digits(text: &str, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let b = text.as_bytes();
    let mut count = 0usize;
    // ASCII fast path in chunks the compiler vectorizes; the first non-ASCII chunk switches
    // to decoding chars from that chunk on.
    for (k, chunk) in b.chunks(32).enumerate() {
        let mut ascii_digits = 0usize;
        let mut non_ascii = false;
        for &x in chunk {
            ascii_digits += usize::from(x.wrapping_sub(b'0') < 10);
            non_ascii |= x >= 0x80;
        }
        if non_ascii {
            let from = floor_boundary(text, k * 32);
            for c in text[from..].chars() {
                if char_digit(c).is_some() {
                    count += 1;
                    if count >= n {
                        return true;
                    }
                }
            }
            return false;
        }
        count += ascii_digits;
        if count >= n {
            return true;
        }
    }
    false
}

/// True when one of the eight bytes `w` is an ASCII digit or non-ASCII (SWAR: the high bit of
/// each byte of `low7 + (0x80 - c)` says whether the byte's low seven bits are at least `c`).
#[inline]
fn digit_or_non_ascii(w: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(w.try_into().expect("eight bytes"));
    let low7 = x & !HI;
    let ge_zero = low7 + LO * (0x80 - u64::from(b'0'));
    let ge_colon = low7 + LO * (0x80 - u64::from(b':'));
    (x | (ge_zero & !ge_colon)) & HI != 0
}

/// Byte classes for [`has_digit_run`]: what may sit between the digits of one phone candidate.
const RUN_BREAK: u8 = 0;
const RUN_SEP: u8 = 1;
const RUN_DIGIT: u8 = 2;
const RUN_NON_ASCII: u8 = 3;

const RUN_CLASS: [u8; 256] = {
    let mut t = [RUN_BREAK; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i >= 0x80 {
            RUN_NON_ASCII
        } else if i >= b'0' as usize && i <= b'9' as usize {
            RUN_DIGIT
        } else if matches!(i as u8, b' ' | b'-' | b'.' | b'/' | b'(' | b')' | b'+') {
            RUN_SEP
        } else {
            RUN_BREAK
        };
        i += 1;
    }
    t
};

/// True when `text` may hold `n` digits that one phone candidate could read: for ASCII text,
/// `n` ASCII digits in one run of digits and the ASCII characters a candidate may hold between
/// them (space, `-`, `.`, `/`, parentheses, `+`; the phone scanner reads nothing else between
/// two digits). Text with any non-ASCII byte (other digit scripts, Unicode spaces and dashes)
/// falls back to [`has_digits`]: `n` digits of any script anywhere. Never false when the phone
/// scanner could find a number of `n` or more digits.
pub(crate) fn has_digit_run(text: &str, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let b = text.as_bytes();
    let mut count = 0usize;
    let mut i = 0;
    while i < b.len() {
        // Outside a run, eight bytes without an ASCII digit or a non-ASCII byte cannot start
        // one: skip them as a word.
        if count == 0 {
            while i + 8 <= b.len() && !digit_or_non_ascii(&b[i..i + 8]) {
                i += 8;
            }
        }
        let end = (i + 8).min(b.len());
        for &x in &b[i..end] {
            // Branch-free on the byte class (mixed text would mispredict a `match`): a digit
            // counts, a separator keeps the run, anything else ends it.
            let class = RUN_CLASS[usize::from(x)];
            if class == RUN_NON_ASCII {
                // Other scripts' digits and separators are not classified: fall back to the
                // total count (a run found so far would only have made it true sooner).
                return has_digits(text, n);
            }
            let kept = if class == RUN_BREAK { 0 } else { count };
            count = kept + usize::from(class == RUN_DIGIT);
            if count >= n {
                return true;
            }
        }
        i = end;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The byte-by-byte scan `has_digit_run` does with its word skipping taken out.
    fn digit_run_reference(text: &str, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        if !has_digits(text, n) {
            return false;
        }
        let mut count = 0;
        for &x in text.as_bytes() {
            match RUN_CLASS[usize::from(x)] {
                RUN_NON_ASCII => return true,
                RUN_DIGIT => count += 1,
                RUN_SEP => {}
                _ => count = 0,
            }
            if count >= n {
                return true;
            }
        }
        false
    }

    #[test]
    fn digit_run_word_skipping_agrees_with_a_byte_scan() {
        let alphabet = ['1', '9', '0', ' ', '-', '(', '+', 'a', 'z', ':', '/', 'é'];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..48 {
            for _ in 0..400 {
                let text: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly letters, like prose, so that words get skipped.
                        let k = (seed % 24) as usize;
                        if k >= alphabet.len() {
                            'q'
                        } else {
                            alphabet[k]
                        }
                    })
                    .collect();
                for n in [1, 3, 7] {
                    assert_eq!(
                        has_digit_run(&text, n),
                        digit_run_reference(&text, n),
                        "{text:?} {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn digits_of_many_scripts() {
        assert_eq!(char_digit('7'), Some(7));
        assert_eq!(char_digit('٣'), Some(3));
        assert_eq!(char_digit('۹'), Some(9));
        assert_eq!(char_digit('０'), Some(0));
        assert_eq!(char_digit('५'), Some(5));
        assert_eq!(char_digit('a'), None);
        assert_eq!(char_digit('²'), None);
        assert!(has_digits("١٢٣٤٥٦٧", 7));
        assert!(!has_digits("abc 123 456", 7));
        let long = format!("{}١٢٣٤{}", "a1".repeat(20), "b".repeat(40));
        assert!(has_digits(&long, 24));
        assert!(!has_digits(&long, 25));
        assert!(has_digits(&"9".repeat(100), 100));
    }

    #[test]
    fn digit_runs() {
        assert!(has_digit_run("call +1 (201) 555-0123", 7));
        assert!(has_digit_run("0612345678", 7));
        assert!(has_digit_run("2024-03-15", 7));
        assert!(!has_digit_run("v1.2.3 id 12345 at 10:20", 7));
        assert!(!has_digit_run("8c3f1a2b-1234-4abc-a123", 7));
        assert!(!has_digit_run("123456", 7));
        assert!(!has_digit_run("123_4567", 7));
        // Non-ASCII text: any seven digits of any script anywhere.
        assert!(has_digit_run("é 1a2b3c4d5e6f7", 7));
        assert!(has_digit_run("٠١٢٣٤٥٦", 7));
        assert!(!has_digit_run("é 123456", 7));
        assert!(has_digit_run("", 0));
        // Runs that cross the eight-byte words the scan skips by.
        assert!(has_digit_run("abcdefg1234567", 7));
        assert!(has_digit_run("abcdefgh123 4567 zzzzzzzz", 7));
        assert!(!has_digit_run("abcdefgh123x4567 zzzzzzzz", 7));
        assert!(has_digit_run("abcdefghijklmnop12345       67", 7));
    }

    #[test]
    fn boundaries() {
        let s = "a中b";
        assert_eq!(char_before(s, 4), Some(('中', 3)));
        assert_eq!(char_at(s, 1), Some(('中', 3)));
        assert_eq!(floor_boundary(s, 2), 1);
        assert!(is_glue_script('中'));
        assert!(!is_glue_script('é'));
    }
}
