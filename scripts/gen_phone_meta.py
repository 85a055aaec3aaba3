#!/usr/bin/env python3
"""Generate rules/phone_regions.json from libphonenumber's metadata (Python `phonenumbers`).

Usage:  pip install phonenumbers && python3 scripts/gen_phone_meta.py

For each region it emits what the Rust phone scanner (src/detect/phone.rs) needs to judge a
number plausible "the way libphonenumber does":
  id       region code (GB)
  cc       country calling code (44)
  np       national prefix ("0"), "" when none
  npp      national prefix for parsing (regex, anchored at the start), "" when none
  npt      its transform rule (\\1 = first group), "" when none
  len      valid national-number lengths ([7, 9, 10])
  valid    the union of the region's number-type patterns (fixed line, mobile, toll free, ...)
           that libphonenumber's is_valid_number tests, anchored by the Rust side
  mob      the mobile pattern alone, "" when the region has none
  tf       the toll-free pattern alone, "" when the region has none
  fmt      national formats: p = pattern with capture groups, ld = the most specific
           leading-digits pattern ("" = any), sep = for each gap between two groups whether the
           format puts a separator there, np = 1 when the national format writes the
           national prefix, opt = 1 when writing it is optional
  ex       example numbers (libphonenumber's own fictional examples) in national and
           international format, used by the Rust self-tests only
The output is deterministic (sorted) so regenerating gives a reviewable diff.
"""
import json
import os
import re
import sys

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

TYPES = [
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
    "voip", "pager", "uan", "voicemail",
]
EX_TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]


def sep_gaps(fmt: str, ngroups: int):
    # fmt like "(\\1) \\2-\\3"; between \i and \i+1 is there any non-empty text?
    gaps = []
    for i in range(1, ngroups):
        a = fmt.find("\\%d" % i)
        b = fmt.find("\\%d" % (i + 1))
        if a < 0 or b < 0:
            gaps.append(True)
        else:
            gaps.append(b > a + 2)
    return gaps


def main():
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rules", "phone_regions.json")
    regions = []
    for rid in sorted(phonenumbers.SUPPORTED_REGIONS):
        m = PhoneMetadata.metadata_for_region(rid)
        if m is None or m.general_desc is None or not m.general_desc.national_number_pattern:
            continue
        pats = []
        for t in TYPES:
            d = getattr(m, t, None)
            if d is not None and d.national_number_pattern:
                pats.append(d.national_number_pattern)
        valid = "|".join("(?:%s)" % p for p in pats) if pats else m.general_desc.national_number_pattern
        lens = sorted(set(m.general_desc.possible_length or []))
        fmts = []
        for f in m.number_format:
            ngroups = re.compile(f.pattern).groups
            ld = f.leading_digits_pattern[-1] if f.leading_digits_pattern else ""
            npr = f.national_prefix_formatting_rule or ""
            np_shown = bool(m.national_prefix) and m.national_prefix in npr.replace("\\1", "")
            fmts.append({
                "p": f.pattern, "ld": ld, "sep": sep_gaps(f.format, ngroups),
                "np": 1 if np_shown else 0,
                "opt": 1 if f.national_prefix_optional_when_formatting else 0,
            })
        ex = []
        for t in EX_TYPES:
            n = phonenumbers.example_number_for_type(rid, t)
            if n is not None and phonenumbers.is_valid_number(n):
                ex.append([
                    phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL),
                    phonenumbers.format_number(n, PhoneNumberFormat.INTERNATIONAL),
                ])
        def only(t):
            d = getattr(m, t, None)
            return d.national_number_pattern if d is not None and d.national_number_pattern else ""
        regions.append({
            "id": rid, "cc": m.country_code, "np": m.national_prefix or "",
            "npp": m.national_prefix_for_parsing or "", "npt": m.national_prefix_transform_rule or "",
            "len": lens,
            "valid": valid, "mob": only("mobile"), "tf": only("toll_free"), "fmt": fmts, "ex": ex,
        })
    doc = {
        "source": "libphonenumber metadata via python phonenumbers %s" % phonenumbers.__version__,
        "regions": regions,
    }
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
        fh.write("\n")
    print("wrote %d regions to %s (%d bytes)" % (len(regions), out_path, os.path.getsize(out_path)), file=sys.stderr)


if __name__ == "__main__":
    main()
