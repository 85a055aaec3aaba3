//! Per-region phone metadata: generated from libphonenumber by `scripts/gen_phone_meta.py` into
//! `rules/phone_regions.json`, embedded, parsed once, and each region's regexes compiled the
//! first time a number is checked against it.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

/// The generated metadata file.
pub(crate) const PHONE_REGIONS_JSON: &str = include_str!("../../rules/phone_regions.json");

#[derive(Deserialize)]
struct RawFile {
    regions: Vec<RawRegion>,
}

#[derive(Deserialize)]
struct RawRegion {
    id: String,
    cc: u16,
    np: String,
    #[serde(default)]
    npp: String,
    #[serde(default)]
    npt: String,
    len: Vec<u8>,
    valid: String,
    #[serde(default)]
    mob: String,
    #[serde(default)]
    tf: String,
    fmt: Vec<RawFormat>,
    #[serde(default)]
    ex: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct RawFormat {
    p: String,
    ld: String,
    sep: Vec<bool>,
    #[serde(default)]
    np: u8,
    #[serde(default)]
    opt: u8,
}

/// One region (`GB`, `US` …).
#[allow(dead_code)] // id, cc and examples serve the self-tests and Debug output.
pub(crate) struct Region {
    /// Region code.
    pub(crate) id: String,
    /// Country calling code.
    pub(crate) cc: u16,
    /// National (trunk) prefix, may be empty.
    pub(crate) np: String,
    /// Bit `n` set when a national number of `n` digits can be valid.
    len_mask: u32,
    npp_src: String,
    npt_src: String,
    valid_src: String,
    mob_src: String,
    tf_src: String,
    fmt_src: Vec<RawFormat>,
    /// libphonenumber's example numbers `(national, international)`, for self-tests.
    pub(crate) examples: Vec<(String, String)>,
    compiled: OnceLock<Option<Compiled>>,
}

struct Compiled {
    valid: Regex,
    /// The mobile and toll-free patterns alone (numbers that need no area code to be read).
    mob: Option<Regex>,
    tf: Option<Regex>,
    /// National prefix for parsing, anchored at the start.
    npp: Option<Regex>,
    /// Its transform rule in `regex` replacement syntax (`${1}`).
    npt: Option<String>,
    formats: Vec<Format>,
}

struct Format {
    leading: Option<Regex>,
    pattern: Regex,
    /// For each gap between two capture groups: does the format print a separator there.
    sep: Vec<bool>,
    /// The national format writes the national prefix.
    np_shown: bool,
    /// Writing the national prefix is optional.
    np_optional: bool,
}

/// libphonenumber patterns use `\d`; the input here is ASCII, so ASCII classes are smaller.
fn ascii(p: &str) -> String {
    p.replace("\\d", "[0-9]")
}

impl Region {
    fn compiled(&self) -> Option<&Compiled> {
        self.compiled
            .get_or_init(|| {
                let valid = Regex::new(&format!("^(?:{})$", ascii(&self.valid_src))).ok()?;
                let only = |src: &str| -> Option<Option<Regex>> {
                    if src.is_empty() {
                        Some(None)
                    } else {
                        Some(Some(Regex::new(&format!("^(?:{})$", ascii(src))).ok()?))
                    }
                };
                let mob = only(&self.mob_src)?;
                let tf = only(&self.tf_src)?;
                let npp = if self.npp_src.is_empty() {
                    None
                } else {
                    Some(Regex::new(&format!("^(?:{})", ascii(&self.npp_src))).ok()?)
                };
                let npt = if self.npt_src.is_empty() {
                    None
                } else {
                    let mut t = self.npt_src.clone();
                    for g in 1..10 {
                        t = t.replace(&format!("\\{g}"), &format!("${{{g}}}"));
                        t = t.replace(&format!("${g}"), &format!("${{{g}}}"));
                    }
                    Some(t)
                };
                let mut formats = Vec::with_capacity(self.fmt_src.len());
                for f in &self.fmt_src {
                    let leading = if f.ld.is_empty() {
                        None
                    } else {
                        Some(Regex::new(&format!("^(?:{})", ascii(&f.ld))).ok()?)
                    };
                    let pattern = Regex::new(&format!("^(?:{})$", ascii(&f.p))).ok()?;
                    formats.push(Format {
                        leading,
                        pattern,
                        sep: f.sep.clone(),
                        np_shown: f.np != 0,
                        np_optional: f.opt != 0,
                    });
                }
                Some(Compiled {
                    valid,
                    mob,
                    tf,
                    npp,
                    npt,
                    formats,
                })
            })
            .as_ref()
    }

    /// The national significant number libphonenumber reads from national `digits` with the
    /// region's national-prefix-for-parsing rule (`8 0152 …` in BY, `0 11 15 …` in AR), and
    /// how many leading digits were removed (`None` for a transformed number). `None` when the
    /// rule does not apply or gives the same as stripping the plain national prefix.
    pub(crate) fn parse_national(&self, digits: &str) -> Option<(String, Option<usize>)> {
        let c = self.compiled()?;
        let npp = c.npp.as_ref()?;
        let caps = npp.captures(digits)?;
        let whole = caps.get(0)?;
        if whole.end() == 0 {
            return None;
        }
        let has_group = caps.iter().skip(1).any(|g| g.is_some_and(|m| !m.is_empty()));
        let (nsn, cut) = match (&c.npt, has_group) {
            (Some(t), true) => {
                let mut out = String::new();
                caps.expand(t, &mut out);
                out.push_str(&digits[whole.end()..]);
                (out, None)
            }
            _ => (digits[whole.end()..].to_string(), Some(whole.end())),
        };
        if cut == Some(self.np.len()) && digits.starts_with(self.np.as_str()) {
            return None;
        }
        Some((nsn, cut))
    }

    /// True when a national significant number of this length can be valid here.
    #[inline]
    pub(crate) fn length_ok(&self, n: usize) -> bool {
        n < 32 && self.len_mask & (1 << n) != 0
    }

    /// True when `nsn` (ASCII digits, national significant number) is a valid number here.
    pub(crate) fn is_valid(&self, nsn: &str) -> bool {
        self.length_ok(nsn.len()) && self.compiled().is_some_and(|c| c.valid.is_match(nsn))
    }

    /// True when `nsn` is a valid mobile or toll-free number here: ranges that libphonenumber
    /// assigns to one number type only, recognisable without any grouping.
    pub(crate) fn is_mobile_or_toll_free(&self, nsn: &str) -> bool {
        self.length_ok(nsn.len())
            && self.compiled().is_some_and(|c| {
                c.mob.as_ref().is_some_and(|r| r.is_match(nsn))
                    || c.tf.as_ref().is_some_and(|r| r.is_match(nsn))
            })
    }

    /// True when `nsn` is a valid toll-free number here.
    pub(crate) fn is_toll_free(&self, nsn: &str) -> bool {
        self.length_ok(nsn.len())
            && self
                .compiled()
                .is_some_and(|c| c.tf.as_ref().is_some_and(|r| r.is_match(nsn)))
    }

    /// True when `nsn` is a valid mobile number here.
    pub(crate) fn is_mobile(&self, nsn: &str) -> bool {
        self.length_ok(nsn.len())
            && self
                .compiled()
                .is_some_and(|c| c.mob.as_ref().is_some_and(|r| r.is_match(nsn)))
    }

    /// True when the group boundaries `bounds` (digit offsets into `nsn`, each a place where
    /// the text had a separator) agree with one of the region's national formats for `nsn`,
    /// and the national prefix was written (`with_prefix`) as that format writes it. NANP
    /// regions (calling code 1) accept the optional leading `1` with any format.
    pub(crate) fn grouping_ok(&self, nsn: &str, bounds: &[usize], with_prefix: bool) -> bool {
        let Some(c) = self.compiled() else { return false };
        for f in &c.formats {
            let prefix_ok = if with_prefix {
                f.np_shown || f.np_optional || self.cc == 1
            } else {
                !f.np_shown || f.np_optional
            };
            if !prefix_ok {
                continue;
            }
            if let Some(ld) = &f.leading {
                if !ld.is_match(nsn) {
                    continue;
                }
            }
            let Some(caps) = f.pattern.captures(nsn) else {
                continue;
            };
            let mut ok = true;
            for &b in bounds {
                let mut hit = false;
                for g in 1..caps.len().saturating_sub(1) {
                    if let Some(m) = caps.get(g) {
                        if m.end() == b && f.sep.get(g - 1).copied().unwrap_or(true) {
                            hit = true;
                            break;
                        }
                    }
                }
                if !hit {
                    ok = false;
                    break;
                }
            }
            if ok {
                return true;
            }
        }
        false
    }

    /// Compiles this region's regexes now; false when one does not compile.
    pub(crate) fn compiles(&self) -> bool {
        self.compiled().is_some()
    }
}

/// All regions, indexed by id and by country calling code.
pub(crate) struct PhoneMeta {
    pub(crate) regions: Vec<Region>,
    by_id: HashMap<String, usize>,
    by_cc: HashMap<u16, Vec<usize>>,
}

/// The main region of each calling code shared by several regions (libphonenumber's
/// `mainCountryForCode`): tried first, as most numbers with that code are from there.
const MAIN_REGIONS: &[&str] = &[
    "US", "RU", "GB", "NO", "AU", "IT", "MA", "RE", "SH", "FI", "GP", "CW",
];

impl PhoneMeta {
    /// The embedded metadata, parsed once.
    pub(crate) fn get() -> &'static PhoneMeta {
        static META: OnceLock<PhoneMeta> = OnceLock::new();
        META.get_or_init(|| {
            let raw: RawFile = serde_json::from_str(PHONE_REGIONS_JSON)
                .expect("rules/phone_regions.json is generated and tested; it parses");
            let mut regions = Vec::with_capacity(raw.regions.len());
            let mut by_id = HashMap::new();
            let mut by_cc: HashMap<u16, Vec<usize>> = HashMap::new();
            for (i, r) in raw.regions.into_iter().enumerate() {
                by_id.insert(r.id.clone(), i);
                by_cc.entry(r.cc).or_default().push(i);
                let len_mask = r.len.iter().filter(|&&n| n < 32).fold(0u32, |m, &n| m | (1 << n));
                regions.push(Region {
                    id: r.id,
                    cc: r.cc,
                    np: r.np,
                    len_mask,
                    npp_src: r.npp,
                    npt_src: r.npt,
                    valid_src: r.valid,
                    mob_src: r.mob,
                    tf_src: r.tf,
                    fmt_src: r.fmt,
                    examples: r.ex,
                    compiled: OnceLock::new(),
                });
            }
            // Shared calling codes: the main region first (valid_international stops at the
            // first region that accepts a number; which one accepts does not matter).
            for list in by_cc.values_mut() {
                list.sort_by_key(|&i| !MAIN_REGIONS.contains(&regions[i].id.as_str()));
            }
            PhoneMeta {
                regions,
                by_id,
                by_cc,
            }
        })
    }

    /// The index of a region by id (`GB`).
    pub(crate) fn region(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Regions sharing a country calling code.
    pub(crate) fn for_cc(&self, cc: u16) -> &[usize] {
        self.by_cc.get(&cc).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when `digits` (ASCII) are a country calling code followed by a number valid in one
    /// of its regions.
    pub(crate) fn valid_international(&self, digits: &str, paren_zero: bool) -> bool {
        for cc_len in 1..=3 {
            if digits.len() <= cc_len + 2 {
                return false;
            }
            let Ok(cc) = digits[..cc_len].parse::<u16>() else {
                return false;
            };
            let regions = self.for_cc(cc);
            if regions.is_empty() {
                continue;
            }
            let nsn = &digits[cc_len..];
            for &r in regions {
                let region = &self.regions[r];
                if region.is_valid(nsn) {
                    return true;
                }
                // `+44 (0)20 …` or `+49 030 …`: a national prefix that should not be there.
                if (paren_zero || nsn.starts_with('0')) && !region.np.is_empty() {
                    if let Some(rest) = nsn.strip_prefix(region.np.as_str()) {
                        if region.is_valid(rest) {
                            return true;
                        }
                    }
                }
            }
            // Calling codes are prefix-free: the first one that exists is the only candidate.
            return false;
        }
        false
    }
}

/// A phone number as `describe_placeholders` tells of it: its E.164 digits (without `+`) and
/// its region (ISO 3166 id, or `+<code>` when the number is valid in several regions sharing
/// the calling code). `None` for a number written without a country calling code that no
/// single region reads: the country is not known then.
pub fn classify(text: &str) -> Option<(String, String)> {
    let meta = PhoneMeta::get();
    let t = text.trim();
    let intl = t.starts_with('+') || t.starts_with("00");
    let mut digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if t.starts_with("00") {
        digits.drain(..2);
    }
    if intl {
        for cc_len in 1..=3 {
            if digits.len() <= cc_len {
                return None;
            }
            let Ok(cc) = digits[..cc_len].parse::<u16>() else {
                return None;
            };
            let regions = meta.for_cc(cc);
            if regions.is_empty() {
                continue;
            }
            let raw = &digits[cc_len..];
            let nsn = regions
                .iter()
                .map(|&r| &meta.regions[r])
                .find_map(|r| {
                    let stripped = raw.strip_prefix(r.np.as_str()).filter(|_| !r.np.is_empty());
                    [Some(raw), stripped]
                        .into_iter()
                        .flatten()
                        .find(|n| r.is_valid(n))
                })
                .unwrap_or(raw)
                .to_owned();
            let hits: Vec<&str> = regions
                .iter()
                .map(|&r| &meta.regions[r])
                .filter(|r| r.is_valid(&nsn))
                .map(|r| r.id.as_str())
                .collect();
            let region = match hits.as_slice() {
                [one] => (*one).to_owned(),
                [] if regions.len() == 1 => meta.regions[regions[0]].id.clone(),
                _ => format!("+{cc}"),
            };
            return Some((format!("{cc}{nsn}"), region));
        }
        return None;
    }
    // National format: the regions that read it as a valid number after their national prefix.
    let mut found: Vec<(String, &Region)> = Vec::new();
    for r in &meta.regions {
        let nsn = match digits.strip_prefix(r.np.as_str()).filter(|_| !r.np.is_empty()) {
            Some(n) if r.is_valid(n) => n,
            _ if r.np.is_empty() && r.is_valid(&digits) => digits.as_str(),
            _ => continue,
        };
        found.push((format!("{}{nsn}", r.cc), r));
    }
    match found.as_slice() {
        [(e164, r)] => Some((e164.clone(), r.id.clone())),
        _ => {
            // Several readings: the main region of a shared code decides when it is among them.
            let main = found
                .iter()
                .find(|(_, r)| MAIN_REGIONS.contains(&r.id.as_str()))?;
            Some((main.0.clone(), main.1.id.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_region_compiles_and_validates_its_examples() {
        let meta = PhoneMeta::get();
        assert!(meta.regions.len() > 200);
        for r in &meta.regions {
            assert!(r.compiles(), "region {} compiles", r.id);
            for (_, intl) in &r.examples {
                let digits: String = intl.chars().filter(char::is_ascii_digit).collect();
                assert!(meta.valid_international(&digits, false), "{} example", r.id);
            }
        }
    }

    #[test]
    fn main_region_first_for_shared_codes() {
        let meta = PhoneMeta::get();
        for (cc, main) in [(1, "US"), (7, "RU"), (44, "GB"), (61, "AU")] {
            let list = meta.for_cc(cc);
            assert!(list.len() > 1, "{cc} is shared");
            assert_eq!(meta.regions[list[0]].id, main);
        }
    }

    #[test]
    fn classify_reads_country_and_e164() {
        assert_eq!(
            classify("+55 11 91234-5678").unwrap(),
            ("5511912345678".into(), "BR".into())
        );
        assert_eq!(
            classify("+44 (0)20 7946 0018").unwrap(),
            ("442079460018".into(), "GB".into())
        );
        assert_eq!(classify("0049 30 123456").map(|c| c.1), Some("DE".into()));
        assert_eq!(
            classify("+1 212-555-0143").map(|c| c.0),
            Some("12125550143".into())
        );
        assert!(classify("+999 123").is_none());
    }

    #[test]
    fn grouping() {
        let meta = PhoneMeta::get();
        let fr = &meta.regions[meta.region("FR").unwrap()];
        assert!(fr.is_valid("612345678"));
        assert!(fr.grouping_ok("612345678", &[1, 3, 5, 7], true));
        assert!(!fr.grouping_ok("612345678", &[1, 3, 5, 7], false));
        assert!(!fr.grouping_ok("612345678", &[4], true));
        let by = &meta.regions[meta.region("BY").unwrap()];
        let (nsn, cut) = by.parse_national("80152450800").unwrap();
        assert_eq!((nsn.as_str(), cut), ("152450800", Some(2)));
        assert!(by.is_valid(&nsn));
        let ar = &meta.regions[meta.region("AR").unwrap()];
        let (nsn, cut) = ar.parse_national("01115234567").unwrap();
        assert_eq!((nsn.as_str(), cut), ("911234567", None));
    }
}
