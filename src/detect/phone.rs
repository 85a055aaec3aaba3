//! The phone scanner: anchored on digit runs (any script), it reads one candidate — digits in
//! groups separated by a space, `-`, `.`, `/` or parentheses, optionally after `+` — then judges
//! it the way libphonenumber would, with per-region metadata (`phone_meta`).
//!
//! Decision, in order:
//! 1. Shape: 7..=20 digits, at most 8 groups, no letter, digit or joining punctuation glued on
//!    either side (`ORD-12345678`, `v1.2.3`, UUIDs, `$1,234`, `12.5%`).
//! 2. Look-alikes are rejected: dates (`2024-01-15`, `15/01/2024`, `15.01.2024`), ISO timestamps,
//!    IPv4, decimals and coordinates (`48.8566`), thousands (`1 234 567`), Luhn-valid card
//!    numbers and ISBNs (13–19 digits without `+`), 10/13-digit Unix epochs.
//! 3. International (`+CC …`, `00CC …`, `wa.me/CC…`): valid for a region of that calling code
//!    (possible length and number pattern). No context needed.
//! 4. National: the nearest context word in the `context_window` bytes before the candidate
//!    decides. A negative one (`order`, `invoice` …) rejects. A positive one (`tel`, `phone`,
//!    `電話` …) accepts any number valid in one of the `national_regions` (national prefix
//!    stripped or not), grouped or not. Without context, the number must be valid there *and*
//!    its grouping must agree with one of that region's national formats.
//! 5. An extension (`ext 12`, `ext. 12`, `x12`, `#12`, `Durchwahl 12`, `poste 12`, `доб. 12`)
//!    right after is part of the span.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::phone_meta::PhoneMeta;
use super::text::{char_at, char_before, digit_at, floor_boundary, is_glue_script};
use crate::error::{Error, Result};

/// Most digits a candidate may hold (E.164 allows 15, plus `00` and a national prefix).
const MAX_DIGITS: usize = 20;
/// Most groups a candidate may hold.
const MAX_GROUPS: usize = 8;
/// Fewest digits of a phone number.
const MIN_DIGITS: usize = 7;

/// The first position at or after `i` whose byte is in [`MAY_START`]. Eight bytes at a time:
/// a word is skipped when none of its bytes is non-ASCII or in `(`..=`9` (a superset of the
/// ASCII bytes of `MAY_START`); a word that may hold one is checked byte by byte, and the
/// word-wise skipping resumes after it (a `.` or `,` in prose is in that range but starts
/// nothing).
fn next_may_start(b: &[u8], mut i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    loop {
        while i + 8 <= b.len() {
            let x = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
            let low7 = x & !HI;
            // High bit of each byte: non-ASCII, or at least `(` (0x28) and not at least `:`
            // (0x3A).
            let ge_paren = low7 + LO * (0x80 - 0x28);
            let ge_colon = low7 + LO * (0x80 - 0x3A);
            if (x | (ge_paren & !ge_colon)) & HI != 0 {
                break;
            }
            i += 8;
        }
        let end = (i + 8).min(b.len());
        if let Some(k) = b[i..end].iter().position(|&c| MAY_START[c as usize]) {
            return Some(i + k);
        }
        if end == b.len() {
            return None;
        }
        i = end;
    }
}

/// Bytes that [`PhoneEngine::find`] looks at as a possible start: ASCII digits, `+`, `(` and
/// any non-ASCII byte (full-width digits and plus signs, other scripts' digits). Every other
/// byte is skipped without a look.
const MAY_START: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_digit() || c == b'+' as usize || c == b'(' as usize || c >= 0x80;
        c += 1;
    }
    t
};

/// The compiled phone engine.
pub(crate) struct PhoneEngine {
    meta: &'static PhoneMeta,
    national: Vec<usize>,
    context: Option<AhoCorasick>,
    positive: Vec<bool>,
    window: usize,
    /// Lower-case words that make a JSON member name or a table column name a phone's.
    keys: Vec<String>,
    /// Finds the key words (any case) in text: a prefilter for table headers.
    key_finder: Option<AhoCorasick>,
}

impl std::fmt::Debug for PhoneEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneEngine")
            .field("national_regions", &self.national.len())
            .field("window", &self.window)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    None,
    Positive,
    Negative,
}

/// One candidate read from the text.
#[derive(Clone, Copy)]
struct Cand {
    start: usize,
    end: usize,
    digits: [u8; MAX_DIGITS],
    nd: usize,
    /// Digit offsets where a group ends (a separator followed).
    bounds: [usize; MAX_GROUPS],
    /// The separator at each bound (`' '`, `-`, `.`, `/`, `)`).
    seps: [u8; MAX_GROUPS],
    /// Byte offset in the text where the group before each bound ends.
    gend: [usize; MAX_GROUPS],
    nb: usize,
    plus: bool,
    paren_zero: bool,
}

impl Cand {
    fn digits(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.nd]).expect("candidate digits are ASCII")
    }
    fn groups(&self) -> usize {
        self.nb + 1
    }
    fn group_len(&self, g: usize) -> usize {
        let s = if g == 0 { 0 } else { self.bounds[g - 1] };
        let e = if g == self.nb { self.nd } else { self.bounds[g] };
        e - s
    }
    fn group_val(&self, g: usize) -> u32 {
        let s = if g == 0 { 0 } else { self.bounds[g - 1] };
        let e = if g == self.nb { self.nd } else { self.bounds[g] };
        self.digits[s..e].iter().fold(0u32, |v, d| {
            v.saturating_mul(10).saturating_add(u32::from(d - b'0'))
        })
    }
}

/// How a candidate read ended.
#[allow(clippy::large_enum_variant)] // lives on the stack for one call; boxing cost an allocation
enum Read {
    /// A candidate to judge.
    Cand(Cand),
    /// Nothing here; resume scanning at this offset.
    Skip(usize),
}

impl PhoneEngine {
    /// Builds the engine: `context` positive words, `negative` words, the window in bytes, and
    /// the regions whose national formats are recognised without `+`.
    pub(crate) fn new(
        rule: &str,
        context: &[String],
        negative: &[String],
        window: usize,
        national_regions: &[String],
        keys: &[String],
    ) -> Result<PhoneEngine> {
        let meta = PhoneMeta::get();
        let mut national = Vec::new();
        for id in national_regions {
            match meta.region(id) {
                Some(i) => national.push(i),
                None => {
                    return Err(Error::rule(
                        rule,
                        format!("unknown region {id:?} in national_regions"),
                    ))
                }
            }
        }
        // aho-corasick folds ASCII case only: add the upper-case and capitalised forms of
        // non-ASCII words (`Телефон`, `ТЕЛ`).
        let mut words: Vec<String> = Vec::new();
        let mut positive: Vec<bool> = Vec::new();
        for (list, pol) in [(context, true), (negative, false)] {
            for w in list {
                for v in case_variants(w) {
                    if !words.contains(&v) {
                        words.push(v);
                        positive.push(pol);
                    }
                }
            }
        }
        let context = if words.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&words)
                    .map_err(|e| Error::rule(rule, format!("context words: {e}")))?,
            )
        };
        Ok(PhoneEngine {
            meta,
            national,
            context,
            positive,
            window,
            keys: keys.iter().map(|k| k.to_lowercase()).collect(),
            key_finder: {
                let words: Vec<String> = keys
                    .iter()
                    .flat_map(|k| case_variants(&k.to_lowercase()))
                    .collect();
                if words.is_empty() {
                    None
                } else {
                    Some(
                        AhoCorasickBuilder::new()
                            .ascii_case_insensitive(true)
                            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                            .build(&words)
                            .map_err(|e| Error::rule(rule, format!("number_keys: {e}")))?,
                    )
                }
            },
        })
    }

    /// True when the member or column name `key` names a phone number: one of its words
    /// (split at anything not alphanumeric and at camelCase) is a key word, possibly with a
    /// qualifier glued on (`MobilePhone`, `phone_number`, `phonenumber`, `Telefonnummer`), or, in
    /// scripts written without spaces, holds one (`電話番号`); and none is an identifier word
    /// (`phone_id`, `phone_hash`).
    pub(crate) fn names_phone(&self, key: &str) -> bool {
        self.key_ctx(key) == Ctx::Positive
    }

    /// `Positive` when member name `key` names a phone ([`names_phone`](Self::names_phone)),
    /// else `None`. Never `Negative`: a key only adds context, so what is found in a value
    /// with its key is a superset of what is found without it (the gateway's checks of its
    /// own output scan strings without keys).
    fn key_ctx(&self, key: &str) -> Ctx {
        let mut named = false;
        for w in key_words(key) {
            if VETO.iter().any(|v| w.eq_ignore_ascii_case(v)) {
                return Ctx::None;
            }
            named = named || self.keys.iter().any(|k| word_names(w, k));
        }
        if named {
            Ctx::Positive
        } else {
            Ctx::None
        }
    }

    /// Calls `push(start, end)` for each phone number, in order, non-overlapping.
    pub(crate) fn find(&self, text: &str, push: &mut dyn FnMut(usize, usize)) {
        self.find_keyed(text, None, push);
    }

    /// Like [`find`](Self::find) for the value of the JSON member `key`: when the key names a
    /// phone (`"MobilePhone"`), a number in the value counts as if a context word preceded it.
    pub(crate) fn find_keyed(&self, text: &str, key: Option<&str>, push: &mut dyn FnMut(usize, usize)) {
        // Built at the first candidate: most texts the rewriter hands over have none.
        let mut scan: Option<Scan<'_>> = None;
        let b = text.as_bytes();
        let n = b.len();
        let mut i = 0;
        while i < n {
            // Most bytes cannot start a number (the branches below skip them one at a time):
            // jump to the next one that may, in a tight loop.
            match next_may_start(b, i) {
                Some(k) => i = k,
                None => break,
            }
            let c = b[i];
            let start = if c.is_ascii_digit() {
                true
            } else if c == b'+' || c == b'(' {
                b.get(i + 1)
                    .is_some_and(|&x| x.is_ascii_digit() || (c == b'(' && x == b'+'))
                    || (c == b'+' && digit_at(text, i + 1).is_some())
            } else if c >= 0x80 {
                if !text.is_char_boundary(i) {
                    i += 1;
                    continue;
                }
                match char_at(text, i) {
                    Some((ch, l)) if super::text::char_digit(ch).is_none() && ch != '＋' => {
                        i += l;
                        continue;
                    }
                    Some(_) => true,
                    None => break,
                }
            } else {
                false
            };
            if !start {
                i += 1;
                continue;
            }
            // Cheap pre-scan over the ASCII run of digits and separators from here: with fewer
            // than MIN_DIGITS digits in it, no candidate starting inside it can be a number
            // (a candidate is made of these characters only). Most numbers in JSON end here.
            // It stops at MIN_DIGITS digits, so each start costs O(1) (no quadratic rescans
            // of long runs such as `(1(1(1…` or numeric tables).
            let mut j = i;
            let mut count = 0;
            while j < n && count < MIN_DIGITS {
                let x = b[j];
                if x.is_ascii_digit() {
                    count += 1;
                } else if !matches!(x, b' ' | b'-' | b'.' | b'/' | b'(' | b')' | b'+') {
                    break;
                }
                j += 1;
            }
            if count < MIN_DIGITS && (j == n || b[j] < 0x80) && j > i {
                i = j;
                continue;
            }
            match self.read(text, i) {
                Read::Skip(next) => i = next.max(i + 1),
                Read::Cand(cand) => match self.judge(text, &cand, scan.get_or_insert_with(|| Scan::new(key)))
                {
                    Some(end) => {
                        push(cand.start, end);
                        i = end;
                    }
                    None => i = cand.end.max(i + 1),
                },
            }
            i = floor_boundary_up(text, i);
        }
    }

    /// True when the whole of `s` is one phone number.
    pub(crate) fn is_phone(&self, s: &str) -> bool {
        let mut whole = false;
        self.find(s, &mut |a, e| whole |= a == 0 && e == s.len());
        whole
    }

    /// Reads the candidate starting at `i` (a digit, `+`, `＋` or `(`).
    fn read(&self, text: &str, i: usize) -> Read {
        let b = text.as_bytes();
        let mut wa = false;
        let plus_start = b[i] == b'+' || text[i..].starts_with('＋');
        // Left boundary.
        if let Some((p, pl)) = char_before(text, i) {
            let before = char_before(text, i - pl).map(|x| x.0);
            let glued = match p {
                // `TEL+44 …` is a label glued to an international number.
                c if c.is_ascii_alphabetic() && plus_start => false,
                c if c.is_ascii_alphanumeric() || c == '_' => true,
                '$' | '#' | '@' | '&' | '%' | '\\' | '-' | '+' | '€' | '£' | '¥' | '₹' | '₽' | '^' => {
                    true
                }
                ',' if plus_start => false,
                '.' | ',' | ':' => before.is_some_and(|c| c.is_ascii_digit()),
                '/' => {
                    let head = &text[..i - 1];
                    wa = head.len() >= 5 && head.is_char_boundary(head.len() - 5) && {
                        let t = &head[head.len() - 5..];
                        t.eq_ignore_ascii_case("wa.me")
                    };
                    !wa
                }
                c if !c.is_ascii() => c.is_alphanumeric() && !is_glue_script(c),
                _ => false,
            };
            if glued {
                return Read::Skip(skip_token(text, i));
            }
        }
        let mut cand = Cand {
            start: i,
            end: i,
            digits: [0; MAX_DIGITS],
            nd: 0,
            bounds: [0; MAX_GROUPS],
            seps: [0; MAX_GROUPS],
            gend: [0; MAX_GROUPS],
            nb: 0,
            plus: wa,
            paren_zero: false,
        };
        let mut p = i;
        if b[p] == b'+' {
            cand.plus = true;
            p += 1;
        } else if text[p..].starts_with('＋') {
            cand.plus = true;
            p += '＋'.len_utf8();
        }
        let mut parens = 0;
        let mut overflow = false;
        loop {
            // One group: `(digits)` or digits.
            let in_paren = b.get(p) == Some(&b'(');
            if in_paren {
                parens += 1;
                if parens > 2 {
                    break;
                }
                p += 1;
                if b.get(p) == Some(&b'+') && cand.nd == 0 && !cand.plus {
                    cand.plus = true;
                    p += 1;
                }
            }
            let g0 = cand.nd;
            loop {
                while let Some((d, l)) = digit_at(text, p) {
                    if cand.nd < MAX_DIGITS {
                        cand.digits[cand.nd] = b'0' + d;
                    } else {
                        overflow = true;
                    }
                    cand.nd += 1;
                    p += l;
                }
                // Inside parentheses a `-` or space may split the digits: `(0-612)`.
                if in_paren
                    && cand.nd > g0
                    && matches!(b.get(p), Some(b'-' | b' '))
                    && digit_at(text, p + 1).is_some()
                    && cand.nb < MAX_GROUPS - 1
                {
                    cand.bounds[cand.nb] = cand.nd.min(MAX_DIGITS);
                    cand.seps[cand.nb] = b[p];
                    cand.gend[cand.nb] = p;
                    cand.nb += 1;
                    p += 1;
                    continue;
                }
                break;
            }
            if cand.nd == g0 {
                break;
            }
            if in_paren {
                if b.get(p) != Some(&b')') {
                    return Read::Skip(p);
                }
                // `g0` may be past the stored digits of an overlong candidate (rejected below).
                if cand.nd - g0 == 1 && cand.digits.get(g0) == Some(&b'0') && cand.plus {
                    cand.paren_zero = true;
                }
                p += 1;
            }
            cand.end = p;
            // A separator, then the next group; `+90(346)…`: an area code in parentheses right
            // after the calling code.
            let cc_paren = cand.plus && cand.nb == 0 && !in_paren && cand.nd <= 3 && b.get(p) == Some(&b'(');
            let Some((sep, q)) = separator(text, p, in_paren || cc_paren) else {
                break;
            };
            if cand.nb >= MAX_GROUPS - 1 {
                overflow = true;
                break;
            }
            cand.bounds[cand.nb] = cand.nd.min(MAX_DIGITS);
            cand.seps[cand.nb] = sep;
            cand.gend[cand.nb] = cand.end;
            cand.nb += 1;
            p = q;
        }
        if overflow || cand.nd > MAX_DIGITS {
            return Read::Skip(skip_token(text, p.max(cand.end)));
        }
        if cand.nd < MIN_DIGITS {
            return Read::Skip(cand.end);
        }
        // A `(0)` group is a national prefix written inside an international number.
        if cand.paren_zero {
            if let Some(k) = (0..cand.nb).find(|&k| {
                cand.bounds[k] >= 1 && cand.digits[cand.bounds[k] - 1] == b'0' && cand.seps[k] == b')'
            }) {
                let z = cand.bounds[k] - 1;
                cand.digits.copy_within(z + 1..cand.nd, z);
                cand.nd -= 1;
                for j in 0..cand.nb {
                    if cand.bounds[j] > z {
                        cand.bounds[j] -= 1;
                    }
                }
                // Drop the bound the `(0)` group made.
                cand.bounds.copy_within(k + 1..cand.nb, k);
                cand.seps.copy_within(k + 1..cand.nb, k);
                cand.gend.copy_within(k + 1..cand.nb, k);
                cand.nb -= 1;
            }
        }
        Read::Cand(cand)
    }

    /// Judges a candidate; the end of the accepted span (with extension) or `None`.
    fn judge(&self, text: &str, c: &Cand, scan: &mut Scan<'_>) -> Option<usize> {
        if self.hard_reject(c) {
            return None;
        }
        let end = extension_end(text, c.end).unwrap_or(c.end);
        // In a CSV row, `,` then digits is the next cell, not decimals.
        let glued = glued_after(text, end, c)
            && !(text.as_bytes().get(end) == Some(&b',')
                && scan.cell(self, text, c.start).is_some_and(|t| t.named));
        if !glued && self.accept(text, c, scan) {
            return Some(end);
        }
        // A number followed by another group that is not part of it (`00213 551 23 45 68 05:31`,
        // `020 7946 0958 2024`): retry without trailing space-separated groups.
        let mut tries = 0;
        for k in (0..c.nb).rev() {
            if tries == 3 || c.bounds[k] < MIN_DIGITS {
                break;
            }
            if c.seps[k] != b' ' {
                continue;
            }
            tries += 1;
            let mut t = *c;
            t.nd = c.bounds[k];
            t.nb = k;
            t.end = c.gend[k];
            if !self.hard_reject(&t) && self.accept(text, &t, scan) {
                return Some(extension_end(text, t.end).unwrap_or(t.end));
            }
        }
        None
    }

    /// A look-alike that no part of the candidate may be taken for a phone number.
    fn hard_reject(&self, c: &Cand) -> bool {
        if c.plus {
            return looks_like_date(c);
        }
        let digits = c.digits();
        looks_like_date(c)
            || looks_like_ip(c)
            || decimal_pair(c)
            || looks_like_decimal(c)
            || looks_like_isbn(c)
            || looks_like_version(c)
            || mixed_space_dot(c)
            || ((13..=19).contains(&c.nd) && !digits.starts_with("00") && luhn(digits))
    }

    fn accept(&self, text: &str, c: &Cand, scan: &mut Scan<'_>) -> bool {
        let digits = c.digits();
        if c.plus {
            return self.meta.valid_international(digits, c.paren_zero);
        }
        let intl00 = digits.starts_with("00") && !digits.starts_with("000");
        if intl00 {
            return self.meta.valid_international(&digits[2..], false);
        }
        // Epoch-shaped (`1712040316`): rejected at once unless a key or column names a phone
        // or it may be a toll-free number (`1800…`) that a context word names.
        let epoch = c.nb == 0 && (c.nd == 10 || c.nd == 13) && digits.starts_with('1');
        if epoch
            && !digits.starts_with("180")
            && scan.key_ctx(self) != Ctx::Positive
            && !scan.cell(self, text, c.start).is_some_and(|t| t.named)
        {
            return false;
        }
        let (mut ctx, mut key_word, word) = self.context_at(text, 0, c.start);
        if ctx != Ctx::None
            && memchr::memrchr(b'\n', &text.as_bytes()[word..c.start]).is_some()
            && scan.cell(self, text, c.start).is_some()
        {
            // The nearest word is in a line above this table row: its words (the header's)
            // are not about this number, nor are any further back.
            ctx = Ctx::None;
            key_word = false;
        }
        // `"phone": "1409305321"` in text reads like the member it is.
        let key_word = ctx == Ctx::Positive && key_word;
        let mut named = false;
        if ctx == Ctx::None {
            ctx = scan.key_ctx(self);
            named = ctx == Ctx::Positive;
        }
        if self.national(text, c, ctx, named, key_word) {
            return true;
        }
        if named {
            return false;
        }
        // `order 20240001`: a negative word in the number's own cell (no delimiter between).
        if ctx == Ctx::Negative
            && !text.as_bytes()[word.min(c.start)..c.start]
                .iter()
                .any(|b| matches!(b, b',' | b';' | b'\t' | b'|'))
        {
            return false;
        }
        // A column whose header names a phone decides, unless a negative word precedes the
        // number in the cell itself (words in other cells are not about it). Looked up only
        // now: most numbers are decided without it.
        match scan.cell(self, text, c.start).filter(|t| t.named) {
            Some(t) if self.context(text, t.start, c.start) != Ctx::Negative => {
                self.national(text, c, Ctx::Positive, true, key_word)
            }
            _ => false,
        }
    }

    /// Judges a national number (no `+`, no `00`) given its context: `named` when a key or
    /// column names it a phone, `key_word` when the context word is the key it is the value of.
    fn national(&self, text: &str, c: &Cand, ctx: Ctx, named: bool, key_word: bool) -> bool {
        let digits = c.digits();
        // Unix epoch seconds or milliseconds (2001..2033), unless its key or column names a
        // phone, or a context word precedes a toll-free number (`"phone": "1800121746"`,
        // `sms to=1800126568`, Australian toll-free).
        if !named
            && !key_word
            && c.nb == 0
            && (c.nd == 10 || c.nd == 13)
            && digits.starts_with('1')
            && !(ctx == Ctx::Positive && self.toll_free_somewhere(digits))
        {
            return false;
        }
        // `(985) 880-8774 bytes`: a quantity with its unit (a context word further back is
        // about something else).
        if !named && unit_after(text, c.end) {
            return false;
        }
        match ctx {
            Ctx::Negative => return false,
            Ctx::None if c.nb == 0 => return self.bare_ok(text, c),
            Ctx::None if looks_like_thousands(c) || looks_like_postcode(c) => return false,
            _ => {}
        }
        let mut shifted = [0usize; MAX_GROUPS];
        for &r in &self.national {
            let region = &self.meta.regions[r];
            let np = region.np.as_str();
            let variants: [(bool, usize); 2] = [(true, np.len()), (false, 0)];
            for (strip, k) in variants {
                if strip && (np.is_empty() || !digits.starts_with(np)) {
                    continue;
                }
                let nsn = &digits[k..];
                if !region.is_valid(nsn) {
                    continue;
                }
                if ctx == Ctx::Positive {
                    return true;
                }
                let mut m = 0;
                for &b in &c.bounds[..c.nb] {
                    if b > k {
                        shifted[m] = b - k;
                        m += 1;
                    }
                }
                if m > 0 && region.grouping_ok(nsn, &shifted[..m], strip) {
                    return true;
                }
            }
        }
        // Second pass, only when the plain prefix did not do: the region's own
        // national-prefix parsing (`8 0152 …` in BY, `011 15 …` in AR).
        for &r in &self.national {
            let region = &self.meta.regions[r];
            let Some((nsn, cut)) = region.parse_national(digits) else {
                continue;
            };
            if !region.is_valid(&nsn) {
                continue;
            }
            if ctx == Ctx::Positive {
                return true;
            }
            if let Some(k) = cut {
                let mut m = 0;
                for &b in &c.bounds[..c.nb] {
                    if b > k {
                        shifted[m] = b - k;
                        m += 1;
                    }
                }
                if m > 0 && region.grouping_ok(&nsn, &shifted[..m], true) {
                    return true;
                }
            }
        }
        if ctx != Ctx::Positive {
            return false;
        }
        // `Tel: 44 20 7946 0958`: an international number without its `+`.
        if self.meta.valid_international(digits, false) {
            return true;
        }
        // A context word is strong evidence: accept a number valid in any region.
        self.meta.regions.iter().any(|region| {
            let np = region.np.as_str();
            region.is_valid(digits)
                || (!np.is_empty()
                    && digits.len() > np.len()
                    && digits.starts_with(np)
                    && region.is_valid(&digits[np.len()..]))
                || region
                    .parse_national(digits)
                    .is_some_and(|(nsn, _)| region.is_valid(&nsn))
        })
    }

    /// An unformatted national number without context: only where the number's range tells it
    /// is a phone. A trunk prefix `0` then a number in a mobile or toll-free range of a region
    /// (`0612345678`, `09012345678`, `08001234567`), a toll-free number without prefix
    /// (`18001234567`), or a mobile number glued to text in a script written without spaces
    /// (`请拨打13812345678咨询`). Calling code 1 is left out: its mobile and fixed-line ranges
    /// are one.
    fn bare_ok(&self, text: &str, c: &Cand) -> bool {
        let digits = c.digits();
        let cjk_glued = char_before(text, c.start)
            .is_some_and(|(ch, _)| is_glue_script(ch) && ch.is_alphabetic())
            || char_at(text, c.end).is_some_and(|(ch, _)| is_glue_script(ch) && ch.is_alphabetic());
        if let Some(nsn) = digits.strip_prefix('0') {
            // The trunk prefix, then a number in a mobile or toll-free range (not `00…`,
            // zero-padded codes).
            if nsn.is_empty() || nsn.starts_with('0') {
                return false;
            }
            return self.national.iter().any(|&r| {
                let region = &self.meta.regions[r];
                region.cc != 1 && region.np == "0" && region.is_mobile_or_toll_free(nsn)
            });
        }
        (digits.len() >= 10 && digits.starts_with('1') && self.toll_free_somewhere(digits))
            || (cjk_glued
                && self.national.iter().any(|&r| {
                    let region = &self.meta.regions[r];
                    region.cc != 1 && region.is_mobile(digits)
                }))
    }

    /// True when `digits` are a toll-free number, as written (no prefix), in a national region
    /// outside calling code 1 (`1800 121 746` in AU, IE, IN).
    fn toll_free_somewhere(&self, digits: &str) -> bool {
        self.national.iter().any(|&r| {
            let region = &self.meta.regions[r];
            region.cc != 1 && region.is_toll_free(digits)
        })
    }

    /// The polarity of the nearest context word before `start` (and not before `from`).
    fn context(&self, text: &str, from: usize, start: usize) -> Ctx {
        self.context_at(text, from, start).0
    }

    /// [`context`](Self::context), and whether the nearest word is a key whose value the
    /// number is: only quotes, `:`, `=` and spaces between them (`"phone": "…"`, `tel=…`).
    /// Also the offset in `text` where the nearest word starts.
    fn context_at(&self, text: &str, from: usize, start: usize) -> (Ctx, bool, usize) {
        let Some(ac) = &self.context else {
            return (Ctx::None, false, start);
        };
        let ws = floor_boundary(text, start.saturating_sub(self.window).max(from));
        let window = &text[ws..start];
        let mut best = Ctx::None;
        let mut best_end = 0;
        let mut best_start = window.len();
        for m in ac.find_iter(window) {
            let left_ok = match char_before(window, m.start()) {
                // `MobilePhone`, `HomePhone`: a camelCase word boundary.
                Some((c, _)) if c.is_ascii_lowercase() => window.as_bytes()[m.start()].is_ascii_uppercase(),
                Some((c, _)) => !c.is_alphanumeric() || (is_glue_script(c) && !c.is_ascii()),
                None => true,
            };
            // Short words (`ph`, `tel`, `id`) must end at a word end: `PHZB`, `identity`,
            // `Phạm` (text in a script written without spaces may follow).
            let right_ok = m.len() > 3
                || !char_at(window, m.end()).is_some_and(|(c, _)| c.is_alphabetic() && !is_glue_script(c));
            // `[PHONE_3]`: a placeholder the gateway wrote says nothing about what follows it.
            let placeholder = m.start() > 0
                && window.as_bytes()[m.start() - 1] == b'['
                && window.as_bytes().get(m.end()) == Some(&b'_');
            if left_ok && right_ok && !placeholder {
                best = if self.positive[m.pattern().as_usize()] {
                    Ctx::Positive
                } else {
                    Ctx::Negative
                };
                best_end = m.end();
                best_start = m.start();
            }
        }
        // The rest of the key (`phone_number`), then only quotes, `:`, `=` and spaces.
        let gap = &window.as_bytes()[best_end..];
        let rest = gap
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        let key = best != Ctx::None
            && gap[rest..]
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'"' | b'\'' | b':' | b'='));
        (best, key, ws + best_start)
    }
}

/// Per-call state of a scan: the JSON member name of the text, and what was learnt about it
/// and about the table the text may hold, each worked out once when first needed.
struct Scan<'k> {
    key: Option<&'k str>,
    key_ctx: Option<Ctx>,
    table: Option<Table>,
    /// Where a key word first occurs in the text (`usize::MAX`: nowhere), once searched.
    first_key: Option<usize>,
    /// The last header cell looked at: its table's start, its column, whether it names a phone.
    header: Option<(usize, usize, bool)>,
    /// The start of the last line looked at as a table row, and its delimiter.
    line: Option<(usize, Option<u8>)>,
    /// A line break was seen before `newline_scanned`.
    newline: bool,
    newline_scanned: usize,
}

/// A block of delimited lines (CSV, TSV, a Markdown table): its header's extent and delimiter,
/// and the start of the last line known to belong to it.
#[derive(Clone, Copy)]
struct Table {
    top: usize,
    top_end: usize,
    delim: u8,
    known: usize,
}

/// A table cell: its start, and whether its column's header names a phone.
#[derive(Clone, Copy)]
struct Cell {
    start: usize,
    named: bool,
}

/// Most bytes walked back from a line to find its table's header.
const MAX_TABLE_WALK: usize = 64 << 10;
/// Longest line read as a table row or header.
const MAX_ROW: usize = 2048;

impl<'k> Scan<'k> {
    fn new(key: Option<&'k str>) -> Scan<'k> {
        Scan {
            key,
            key_ctx: None,
            table: None,
            first_key: None,
            header: None,
            line: None,
            newline: false,
            newline_scanned: 0,
        }
    }

    /// True when one of the key words occurs in `text` before `start` (a header naming a
    /// phone column needs one). The first occurrence is searched once per scan.
    fn key_word_before(&mut self, engine: &PhoneEngine, text: &str, start: usize) -> bool {
        let first = *self.first_key.get_or_insert_with(|| {
            engine
                .key_finder
                .as_ref()
                .and_then(|ac| ac.find(text))
                .map_or(usize::MAX, |m| m.start())
        });
        first < start
    }

    /// What the JSON member name says ([`PhoneEngine::key_ctx`]).
    fn key_ctx(&mut self, engine: &PhoneEngine) -> Ctx {
        match self.key {
            None => Ctx::None,
            Some(key) => *self.key_ctx.get_or_insert_with(|| engine.key_ctx(key)),
        }
    }

    /// The table cell that `start` is in, when its line is a row below a header (CSV, TSV, a
    /// Markdown table). The line is split by tabs, else `|` (a line starting with it), else
    /// commas, else semicolons; the header is the first line of the block of lines holding
    /// that delimiter.
    fn cell(&mut self, engine: &PhoneEngine, text: &str, start: usize) -> Option<Cell> {
        let b = text.as_bytes();
        // A table has a header line above: none without a line break before `start` (found
        // once per scan; candidates come in order).
        if !self.newline {
            let from = self.newline_scanned.min(start);
            self.newline = memchr::memchr(b'\n', &b[from..start]).is_some();
            self.newline_scanned = start;
            if !self.newline {
                return None;
            }
        }
        // Lines longer than a table row (a minified JSON document) are not looked at.
        let lo = start.saturating_sub(MAX_ROW);
        let ls = match memchr::memrchr(b'\n', &b[lo..start]) {
            Some(i) => lo + i + 1,
            None if lo == 0 => 0,
            None => return None,
        };
        let delim = match self.line {
            Some((l, d)) if l == ls => d?,
            _ => {
                // A row has a line above it holding a delimiter (the header or another row).
                let above = &b[ls.saturating_sub(MAX_ROW + 1)..ls.saturating_sub(1)];
                let above = &above[memchr::memrchr(b'\n', above).map_or(0, |i| i + 1)..];
                if ls == 0
                    || (memchr::memchr3(b',', b';', b'\t', above).is_none()
                        && memchr::memchr(b'|', above).is_none())
                {
                    self.line = Some((ls, None));
                    return None;
                }
                let hi = (start + MAX_ROW).min(b.len());
                let d = memchr::memchr(b'\n', &b[start..hi])
                    .map(|i| start + i)
                    .or((hi == b.len()).then_some(hi))
                    .and_then(|le| delimiter(&b[ls..le]));
                self.line = Some((ls, d));
                d?
            }
        };
        let col = field_index(&b[ls..start], delim);
        let table = match self.table {
            Some(t) if t.delim == delim && t.known <= ls && block_continues(&b[t.known..ls], delim) => t,
            _ => {
                let (top, top_end) = block_top(b, ls, delim);
                Table {
                    top,
                    top_end,
                    delim,
                    known: ls,
                }
            }
        };
        self.table = Some(Table { known: ls, ..table });
        if table.top == ls {
            return None;
        }
        let cell = memchr::memrchr(delim, &b[ls..start]).map_or(ls, |i| ls + i + 1);
        let Some(name) = field(&text[table.top..table.top_end], delim, col) else {
            return Some(Cell {
                start: cell,
                named: false,
            });
        };
        let named = match self.header {
            Some((top, c, named)) if top == table.top && c == col => named,
            _ => {
                // A key word must occur in the text at all (searched once per scan).
                let named = self.key_word_before(engine, text, start) && header_names(engine, name);
                self.header = Some((table.top, col, named));
                named
            }
        };
        Some(Cell { start: cell, named })
    }
}

/// True when a header cell names a phone column.
fn header_names(engine: &PhoneEngine, name: &str) -> bool {
    let name =
        name.trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '*' | '`' | '#' | ':'));
    // A header cell is a name, not a value (nor a line of JSON: `"phone": "n/a",`).
    !name.is_empty()
        && name.len() <= 64
        && !name
            .bytes()
            .any(|x| x.is_ascii_digit() || matches!(x, b'"' | b':' | b'=' | b'{' | b'}' | b'[' | b']'))
        && engine.names_phone(name)
}

/// The delimiter of a table line: tab, `|` (a Markdown row), else the more frequent of comma
/// and semicolon.
fn delimiter(line: &[u8]) -> Option<u8> {
    if memchr::memchr(b'\t', line).is_some() {
        return Some(b'\t');
    }
    if line.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'|') {
        return Some(b'|');
    }
    let commas = memchr::memchr_iter(b',', line).count();
    let semis = memchr::memchr_iter(b';', line).count();
    match (commas, semis) {
        (0, 0) => None,
        (c, s) if s > c => Some(b';'),
        _ => Some(b','),
    }
}

/// The index of the field that `head` (a line up to some position) ends in: delimiters outside
/// double quotes.
fn field_index(head: &[u8], delim: u8) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for &c in head {
        if c == b'"' {
            quoted = !quoted;
        } else if c == delim && !quoted {
            n += 1;
        }
    }
    n
}

/// Field `col` of `line` (delimiters outside double quotes split).
fn field(line: &str, delim: u8, col: usize) -> Option<&str> {
    let b = line.as_bytes();
    let mut quoted = false;
    let mut n = 0;
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'"' {
            quoted = !quoted;
        } else if c == delim && !quoted {
            if n == col {
                return Some(&line[start..i]);
            }
            n += 1;
            start = i + 1;
        }
    }
    (n == col).then(|| &line[start..])
}

/// True when every line in `gap` (whole lines, each ending in `\n`) holds `delim`.
fn block_continues(gap: &[u8], delim: u8) -> bool {
    gap.split(|&c| c == b'\n')
        .take(gap.iter().filter(|&&c| c == b'\n').count())
        .all(|l| memchr::memchr(delim, l).is_some())
}

/// The first line of the block of lines holding `delim` that the line at `ls` ends: its start
/// and end.
fn block_top(b: &[u8], ls: usize, delim: u8) -> (usize, usize) {
    let mut top = ls;
    while top > 0 && ls - top < MAX_TABLE_WALK {
        let prev_end = top - 1;
        let prev_start = memchr::memrchr(b'\n', &b[..prev_end]).map_or(0, |i| i + 1);
        if memchr::memchr(delim, &b[prev_start..prev_end]).is_none() {
            break;
        }
        top = prev_start;
    }
    let hi = (top + MAX_ROW).min(b.len());
    let end = memchr::memchr(b'\n', &b[top..hi]).map_or(hi, |i| top + i);
    (top, end)
}

/// Words of a member name that identify rather than name (`phone_id`).
const VETO: &[&str] = &[
    "id", "ids", "uid", "uuid", "guid", "hash", "count", "ref", "token", "key",
];
/// Qualifiers glued to a key word in one word (`mobilephone`, `phonenumber`).
const KEY_PREFIXES: &[&str] = &[
    "mobile", "home", "work", "office", "business", "cell", "contact", "main", "primary", "other", "private",
];
const KEY_SUFFIXES: &[&str] = &[
    "number", "numbers", "nummer", "numer", "numero", "número", "num", "no", "nr", "nro",
];

/// The words of a member name: split at anything not alphanumeric and where a lower-case letter
/// or digit is followed by an upper-case one (`MobilePhone`, `phone_number`, `faxNo`).
fn key_words(key: &str) -> impl Iterator<Item = &str> {
    let mut rest = key;
    std::iter::from_fn(move || {
        let start = rest.find(char::is_alphanumeric)?;
        rest = &rest[start..];
        let mut prev_lower = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if !c.is_alphanumeric() || (c.is_uppercase() && prev_lower) {
                end = i;
                break;
            }
            prev_lower = c.is_lowercase() || c.is_numeric();
        }
        let (w, r) = rest.split_at(end);
        rest = r;
        Some(w)
    })
}

/// `a` equals the lower-case `b`, ignoring case.
fn eq_lower(a: &str, b: &str) -> bool {
    if a.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars().flat_map(char::to_lowercase).eq(b.chars())
    }
}

/// True when the word `w` is the key word `k` (lower-case), alone or with a qualifier glued on,
/// or holds it when written in a script without spaces.
fn word_names(w: &str, k: &str) -> bool {
    if eq_lower(w, k) {
        return true;
    }
    if !k.is_ascii() && k.chars().all(is_glue_script) {
        return w.contains(k);
    }
    if w.len() <= k.len() {
        return false;
    }
    // One qualifier before or after: `mobilephone`, `phonenumber`, `telefonnummer`.
    let lw = w.len();
    KEY_PREFIXES.iter().any(|p| {
        lw == p.len() + k.len()
            && w.is_char_boundary(p.len())
            && eq_lower(&w[..p.len()], p)
            && eq_lower(&w[p.len()..], k)
    }) || KEY_SUFFIXES.iter().any(|x| {
        lw == k.len() + x.len()
            && w.is_char_boundary(k.len())
            && eq_lower(&w[..k.len()], k)
            && eq_lower(&w[k.len()..], x)
    })
}

/// A word, and for non-ASCII words its lower-case, upper-case and capitalised forms.
pub(crate) fn case_variants(w: &str) -> Vec<String> {
    let mut out = vec![w.to_string()];
    if !w.is_ascii() {
        let lower = w.to_lowercase();
        let mut chars = lower.chars();
        let capital: String = chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        for v in [lower.clone(), w.to_uppercase(), capital] {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Smallest char boundary `>= i`.
fn floor_boundary_up(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Past the alphanumeric token at `i` (so a rejected run is not re-read from its middle).
fn skip_token(text: &str, mut i: usize) -> usize {
    while let Some((c, l)) = char_at(text, i) {
        if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == ',' || c == ':' {
            if c.is_alphanumeric() && is_glue_script(c) && super::text::char_digit(c).is_none() {
                break;
            }
            i += l;
        } else {
            break;
        }
    }
    i
}

/// A separator at `p` followed by the next group: returns (kind, offset of the next group).
/// Kinds: `b' '`, `b'-'`, `b'.'`, `b'/'`, `b')'` (a parenthesised group with nothing after it).
fn separator(text: &str, p: usize, after_paren: bool) -> Option<(u8, usize)> {
    let mut q = p;
    let mut spaces = 0;
    let mut mark = 0u8;
    if let Some((c, l)) = char_at(text, q) {
        if is_space(c) {
            spaces += 1;
            q += l;
        }
    }
    if let Some((c, l)) = char_at(text, q) {
        let m = match c {
            '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' | '\u{FF0D}' => b'-',
            '.' => b'.',
            '/' => b'/',
            _ => 0,
        };
        if m != 0 {
            mark = m;
            q += l;
            if let Some((c, l)) = char_at(text, q) {
                if is_space(c) {
                    if spaces == 1 && m == b'/' {
                        // `020 7946 0958 / 07700 900123`: two numbers.
                        return None;
                    }
                    spaces += 1;
                    q += l;
                }
            }
        }
    }
    if q == p && !after_paren {
        return None;
    }
    // The next group must start here.
    let next_ok = digit_at(text, q).is_some()
        || (text.as_bytes().get(q) == Some(&b'(') && digit_at(text, q + 1).is_some());
    if !next_ok {
        return None;
    }
    let kind = if mark != 0 {
        mark
    } else if spaces > 0 {
        b' '
    } else {
        b')'
    };
    Some((kind, q))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\u{00A0}' | '\u{2009}' | '\u{202F}' | '\u{3000}')
}

/// End of an extension (`ext 12`, `ext. 12`, `extension 12`, `x12`, `#12`) right after `p`.
fn extension_end(text: &str, p: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut q = p;
    if b.get(q) == Some(&b' ') || b.get(q) == Some(&b',') {
        q += 1;
        if b.get(q) == Some(&b' ') && b.get(q - 1) == Some(&b',') {
            q += 1;
        }
    }
    let rest = &b[q.min(b.len())..];
    let marker = [
        &b"extension"[..],
        b"ext.",
        b"ext",
        b"durchwahl",
        b"poste",
        b"ramal",
        b"interno",
        b"anexo",
        "доб.".as_bytes(),
        "доб".as_bytes(),
        b"x",
        b"#",
    ]
    .into_iter()
    .find(|m| rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m))?;
    q += marker.len();
    if matches!(b.get(q), Some(b':')) {
        q += 1;
    }
    if b.get(q) == Some(&b' ') {
        q += 1;
    }
    let ds = q;
    while let Some((_, l)) = digit_at(text, q) {
        q += l;
        if q - ds > 18 {
            return None;
        }
    }
    if q == ds || digit_glued(text, q) {
        return None;
    }
    Some(q)
}

/// True when the text right after a candidate joins it into a bigger token.
fn glued_after(text: &str, end: usize, cand: &Cand) -> bool {
    let Some((c, _)) = char_at(text, end) else {
        return false;
    };
    let next_is_digit = || {
        let l = c.len_utf8();
        digit_at(text, end + l).is_some()
    };
    let next_is_alnum = || {
        let l = c.len_utf8();
        char_at(text, end + l).is_some_and(|(n, _)| n.is_alphanumeric())
    };
    match c {
        c if c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '%' => true,
        // In CSV a comma then a digit starts the next field; only an unformatted national run
        // followed by `,digits` reads as a decimal (`1234567,89`).
        ',' => !cand.plus && cand.nb == 0 && !cand.digits().starts_with("00") && next_is_digit(),
        '.' | ':' | '/' => next_is_digit(),
        '-' => next_is_alnum(),
        c if !c.is_ascii() => c.is_alphanumeric() && !is_glue_script(c),
        _ => false,
    }
}

/// Units that make the number before them a quantity: `880-8774 bytes`.
const UNITS: &[&str] = &[
    "bytes",
    "byte",
    "kb",
    "mb",
    "gb",
    "tb",
    "kib",
    "mib",
    "gib",
    "ms",
    "sec",
    "secs",
    "seconds",
    "km",
    "kg",
    "mg",
    "mm",
    "cm",
    "m2",
    "km2",
    "people",
    "persons",
    "inhabitants",
    "users",
    "rows",
    "records",
    "items",
    "units",
    "pcs",
    "views",
    "hits",
    "requests",
    "reqs",
    "downloads",
    "votes",
    "tokens",
    "points",
    "pts",
    "usd",
    "eur",
    "gbp",
    "jpy",
    "inr",
    "cny",
    "times",
];

/// True when a unit word (`bytes`, `km`, `users` …) follows `end` after one space.
fn unit_after(text: &str, end: usize) -> bool {
    let b = text.as_bytes();
    if b.get(end) != Some(&b' ') {
        return false;
    }
    let w = &b[end + 1..];
    let n = w.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    n > 0 && UNITS.iter().any(|u| w[..n].eq_ignore_ascii_case(u.as_bytes()))
}

/// True when a letter, digit or `_` follows an extension.
fn digit_glued(text: &str, q: usize) -> bool {
    char_at(text, q).is_some_and(|(c, _)| c.is_alphanumeric() && !is_glue_script(c) || c == '_')
}

/// `2024-01-15`, `15/01/2024`, `15.01.2024`, `2024/1/5`, `01-15-2024` at the start.
fn looks_like_date(c: &Cand) -> bool {
    if c.groups() < 3 || c.seps[0] != c.seps[1] || !matches!(c.seps[0], b'-' | b'/' | b'.') {
        return false;
    }
    let (l0, l1, l2) = (c.group_len(0), c.group_len(1), c.group_len(2));
    let (v0, v1, v2) = (c.group_val(0), c.group_val(1), c.group_val(2));
    let year = |l: usize, v: u32| l == 4 && (1800..=2199).contains(&v) || l == 2;
    let md = |l: usize, v: u32| l <= 2 && (1..=31).contains(&v);
    let m = |l: usize, v: u32| l <= 2 && (1..=12).contains(&v);
    (l0 == 4 && year(l0, v0) && m(l1, v1) && md(l2, v2))
        || (l2 == 4 && year(l2, v2) && md(l0, v0) && md(l1, v1) && (m(l0, v0) || m(l1, v1)))
}

/// `192.168.1.20`, also as the start of `192.168.1.0/24`.
fn looks_like_ip(c: &Cand) -> bool {
    (c.groups() == 4 || (c.groups() == 5 && c.seps[3] == b'/'))
        && c.seps[..3].iter().all(|&s| s == b'.')
        && (0..4).all(|g| c.group_len(g) <= 3 && c.group_val(g) <= 255)
}

/// `2020.10.0`, `102.0.1546.193`, `14.12.122`: dotted versions. Dotted phone numbers have
/// no one-digit group and more than eight digits.
fn looks_like_version(c: &Cand) -> bool {
    c.groups() >= 3
        && c.seps[..c.nb].iter().all(|&s| s == b'.')
        && (c.nd <= 8 || (0..c.groups()).any(|g| c.group_len(g) == 1))
}

/// `2983-714`, `42856-1670`: two hyphenated groups, the shape of postal codes (ZIP+4,
/// Portugal, Brazil); a national phone number without context is written otherwise.
fn looks_like_postcode(c: &Cand) -> bool {
    c.groups() == 2 && c.seps[0] == b'-'
}

/// `73.49264 -15.56264`: two decimals (a coordinate pair).
fn decimal_pair(c: &Cand) -> bool {
    c.groups() == 4 && c.seps[0] == b'.' && c.seps[2] == b'.' && c.seps[1] != b'.'
}

/// `280 09.46`: a space and a dot in one number (a quantity and a decimal).
fn mixed_space_dot(c: &Cand) -> bool {
    c.seps[..c.nb].contains(&b' ') && c.seps[..c.nb].contains(&b'.')
}

/// `48.8566` or `1.5 2`: a decimal number, not a phone.
fn looks_like_decimal(c: &Cand) -> bool {
    c.groups() == 2 && c.seps[0] == b'.'
}

/// `1 234 567` / `12.345.678`: thousands grouping.
fn looks_like_thousands(c: &Cand) -> bool {
    c.groups() >= 3
        && c.group_len(0) <= 2
        && (1..c.groups()).all(|g| c.group_len(g) == 3)
        && c.seps[..c.nb]
            .iter()
            .all(|&s| s == c.seps[0] && matches!(s, b' ' | b'.'))
}

/// ISBN-13 (`978…`/`979…`) or a hyphenated ISBN-10 with a valid check digit.
fn looks_like_isbn(c: &Cand) -> bool {
    let d = &c.digits[..c.nd];
    if c.nd == 13 && (d.starts_with(b"978") || d.starts_with(b"979")) {
        return true;
    }
    if c.nd == 10 && c.groups() == 4 && c.seps[..3].iter().all(|&s| s == b'-') {
        let sum: u32 = d
            .iter()
            .enumerate()
            .map(|(i, &x)| (10 - i as u32) * u32::from(x - b'0'))
            .sum();
        return sum.is_multiple_of(11);
    }
    false
}

/// The Luhn checksum over ASCII digits.
pub(crate) fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

#[cfg(test)]
mod skip_tests {
    use super::{next_may_start, MAY_START};

    #[test]
    fn next_may_start_agrees_with_a_byte_scan() {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend_from_slice(b"plain words, no digits here at all; then (+1) 202-555-0100 \xc3\xa9");
        for start in 0..bytes.len() {
            for end in start..bytes.len().min(start + 40) {
                let b = &bytes[start..end];
                for i in 0..=b.len() {
                    let want = b[i..].iter().position(|&c| MAY_START[c as usize]).map(|k| i + k);
                    assert_eq!(next_may_start(b, i), want, "{start}..{end} from {i}");
                }
            }
        }
        // Every single byte value at every offset of a word.
        for c in 0..=255u8 {
            for pos in 0..16 {
                let mut b = vec![b'a'; 16];
                b[pos] = c;
                let want = MAY_START[c as usize].then_some(pos);
                assert_eq!(next_may_start(&b, 0), want, "byte {c:#x} at {pos}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn engine() -> PhoneEngine {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PhoneEngine::new(
            "phone",
            &w(&["tel", "phone", "call"]),
            &w(&["order", "invoice"]),
            32,
            &w(&["US", "GB", "FR", "DE", "JP", "CN"]),
            &w(&["phone", "mobile", "tel", "fax", "電話"]),
        )
        .unwrap()
    }

    fn found(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        engine().find(text, &mut |s, e| v.push((s, e)));
        v.into_iter().map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn positives() {
        assert_eq!(found("call +44 20 7946 0958 now"), ["+44 20 7946 0958"]);
        assert_eq!(found("(201) 555-0123 x12"), ["(201) 555-0123 x12"]);
        assert_eq!(found("06 12 34 56 78"), ["06 12 34 56 78"]);
        assert_eq!(found("tel: 0612345678"), ["0612345678"]);
        assert_eq!(found("+44 (0)20 7946 0958"), ["+44 (0)20 7946 0958"]);
        assert_eq!(found("https://wa.me/442079460958"), ["442079460958"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "2024-01-15",
            "15/01/2024",
            "15.01.2024",
            "192.168.100.200",
            "order 0612345678",
            "4111 1111 1111 1111",
            "978-3-16-148410-0",
            "1700000000",
            "48.8566123, 2.3522",
            "1 234 567",
            "ORD-0612345678",
        ] {
            assert!(found(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn luhn_checks() {
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));
    }
}

#[cfg(test)]
mod overlong_tests {
    use super::super::Detector;

    /// Found by the `detect` fuzz target (fuzz/regressions/detect/f7-*): a `(0)` group after
    /// more than twenty digits indexed past the candidate's digit buffer.
    #[test]
    fn a_parenthesised_group_after_twenty_digits_does_not_panic() {
        let d = Detector::builtin();
        let text = "tel:\u{0}11111111111110-67 7946 \u{1}\n1111111111111111111110 (0) 0111111111111111111111111111111111111112";
        let _ = d.find(text);
        let _ = d.find(&format!("+{} (0) 12", "1".repeat(25)));
    }
}
