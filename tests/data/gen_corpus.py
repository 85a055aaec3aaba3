#!/usr/bin/env python3
"""Generates the labelled PII evaluation corpus `tests/data/corpus.jsonl`.

Run with:  python3 tests/data/gen_corpus.py            (writes tests/data/corpus.jsonl)
Generated with Python 3.11.7, faker==40.54.0, phonenumbers==9.0.43 (pinned in requirements.txt;
other versions give other, equally valid, output because Faker's providers change).

Every value is generated: Faker names/usernames with reserved or Faker-generated domains, and
`phonenumbers` example numbers per region, whose last digits are perturbed while keeping them
valid (`phonenumbers.is_valid_number`). US numbers stay in the fictional 555-01xx block and most GB
numbers in Ofcom's drama ranges. No real person's data.

Gold spans are computed by construction: a document is assembled from parts, and the byte
offsets of each inserted PII value are recorded as it is appended. No detector is ever run.

Output, one JSON object per line:
  {"text": "...",
   "spans": [{"start": S, "end": E, "kind": "EMAIL"|"PHONE", "src": "<category>"}],
   "negatives": [{"start": S, "end": E, "src": "<category>"}],
   "src": "<template>"}
Offsets are UTF-8 byte offsets into `text`, end exclusive. `spans` are the gold PII spans.
`negatives` mark inserted look-alikes that must NOT be detected (dates, IPs, `icon@2x.png`, ...);
they are informational (to attribute false hits to a category): text outside any gold span is
negative too. A span's `src` is its generator category; the line's `src` its document template.
"""

from __future__ import annotations

import argparse
import datetime as dt
import copy
import json
import random
import re
import string
import sys
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

import phonenumbers as pn
from faker import Faker

SEED = 20261121
EPOCH0 = dt.datetime(2018, 1, 1, tzinfo=dt.timezone.utc)
N_LINES = 4000

# --------------------------------------------------------------------------------------------
# Document assembly with byte offsets


@dataclass
class P:
    """A gold PII value: appended verbatim, its byte range recorded."""

    kind: str
    value: str
    src: str
    region: str = ""


@dataclass
class N:
    """A negative look-alike: appended verbatim, its byte range recorded as informational."""

    value: str
    src: str
    json_raw: bool = False  # in JSON: emitted as a bare number instead of a string


# A fragment is a list of str | P | N.


class Doc:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.nbytes = 0
        self.spans: list[dict] = []
        self.negs: list[dict] = []

    def raw(self, s: str) -> None:
        self.parts.append(s)
        self.nbytes += len(s.encode("utf-8"))

    def add(self, frag, esc=None) -> None:
        """Appends a fragment. `esc` escapes plain text (JSON string bodies); PII values must be
        invariant under it so the recorded range is exactly the value."""
        if isinstance(frag, (str, P, N)):
            frag = [frag]
        for part in frag:
            if isinstance(part, list):
                self.add(part, esc)
            elif isinstance(part, str):
                self.raw(esc(part) if esc else part)
            elif isinstance(part, P):
                if esc:
                    assert esc(part.value) == part.value, "PII value changes under escaping"
                start = self.nbytes
                self.raw(part.value)
                span = {"start": start, "end": self.nbytes, "kind": part.kind, "src": part.src}
                if part.region:
                    span["region"] = part.region
                self.spans.append(span)
            elif isinstance(part, N):
                v = esc(part.value) if esc else part.value
                start = self.nbytes
                self.raw(v)
                self.negs.append({"start": start, "end": self.nbytes, "src": part.src})
            else:
                raise TypeError(part)

    def text(self) -> str:
        return "".join(self.parts)


def NJ(v, src: str) -> N:
    """A negative JSON number."""
    return N(json.dumps(v), src, json_raw=True)


def json_esc(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)[1:-1]


class F:
    """A JSON string value made of fragment parts."""

    def __init__(self, *parts) -> None:
        self.parts = []
        for p in parts:
            if isinstance(p, list):
                self.parts.extend(p)
            else:
                self.parts.append(p)


def emit_json(doc: Doc, v, indent: int | None, level: int = 0) -> None:
    nl = "" if indent is None else "\n"
    pad = "" if indent is None else " " * (indent * (level + 1))
    endpad = "" if indent is None else " " * (indent * level)
    sep = ", " if indent is None else ","
    colon = ": "
    if isinstance(v, dict):
        if not v:
            doc.raw("{}")
            return
        doc.raw("{" + nl)
        for i, (k, val) in enumerate(v.items()):
            if i:
                doc.raw(sep + nl)
            doc.raw(pad + json.dumps(k, ensure_ascii=False) + colon)
            emit_json(doc, val, indent, level + 1)
        doc.raw(nl + endpad + "}")
    elif isinstance(v, list):
        if not v:
            doc.raw("[]")
            return
        doc.raw("[" + nl)
        for i, val in enumerate(v):
            if i:
                doc.raw(sep + nl)
            doc.raw(pad)
            emit_json(doc, val, indent, level + 1)
        doc.raw(nl + endpad + "]")
    elif isinstance(v, F):
        doc.raw('"')
        doc.add(v.parts, esc=json_esc)
        doc.raw('"')
    elif isinstance(v, N) and v.json_raw:
        doc.add([v])
    elif isinstance(v, (P, N)):
        doc.raw('"')
        doc.add([v], esc=json_esc)
        doc.raw('"')
    else:
        doc.raw(json.dumps(v, ensure_ascii=False))


# --------------------------------------------------------------------------------------------
# Helpers

FAKER_LOCALES = [
    "en_US", "en_GB", "de_DE", "fr_FR", "ja_JP", "zh_CN", "zh_TW", "ru_RU", "pt_BR", "pt_PT",
    "es_ES", "es_MX", "it_IT", "pl_PL", "tr_TR", "ko_KR", "hi_IN", "ar_AA", "nl_NL", "sv_SE",
    "cs_CZ", "hu_HU", "ro_RO", "el_GR", "he_IL", "fa_IR", "uk_UA", "id_ID", "vi_VN", "th_TH",
    "da_DK", "fi_FI", "no_NO", "bg_BG", "hr_HR", "sk_SK", "sl_SI", "lt_LT", "lv_LV", "et_EE",
    "en_AU", "en_IE", "en_IN", "en_NZ", "de_AT", "de_CH", "es_AR", "es_CO", "ar_EG", "ka_GE",
    "az_AZ", "en_PH",
]

# Locales whose names are written in scripts or with letters outside ASCII: used for
# internationalised local parts and domains.
IDN_LOCALES = [
    "de_DE", "fr_FR", "es_ES", "pt_BR", "pl_PL", "tr_TR", "cs_CZ", "hu_HU", "ja_JP", "zh_CN",
    "zh_TW", "ru_RU", "uk_UA", "ko_KR", "el_GR", "hi_IN", "ar_AA", "he_IL", "th_TH", "fa_IR",
    "bg_BG",
]

SAFE_DOMAINS = [
    "example.com", "example.org", "example.net", "mail.example.com", "example.de", "example.fr",
    "example.co.uk", "example.jp", "example.cn", "example.com.br", "example.es", "example.it",
    "example.pl", "example.ru", "example.in", "corp.example", "shop.example", "acme.test",
    "support.example.org", "eu.example.net",
]

# IANA reserved IDN test TLDs (RFC 2606 / the .test translations) and IDN ccTLDs.
IDN_TLDS = [
    "испытание", "テスト", "測試", "测试", "परीक्षा", "آزمایشی", "δοκιμή", "טעסט", "실험", "இடப்பரீட்சை",
    "рф", "中国", "한국", "भारत", "укр", "ελ", "みんな", "公司", "网络", "онлайн",
]


def norm_label(s: str, keep_unicode: bool = True) -> str:
    """Lower-cases a name into something usable as a local part / domain label."""
    s = unicodedata.normalize("NFC", s.strip().lower())
    out = []
    for ch in s:
        cat = unicodedata.category(ch)
        if ch in " '’.-_":
            out.append(".")
        elif cat[0] in "LN" or cat in ("Mn", "Mc"):
            if ch.isascii() or keep_unicode:
                out.append(ch)
    r = "".join(out)
    while ".." in r:
        r = r.replace("..", ".")
    return r.strip(".")


def dom_label(s: str) -> str:
    r = norm_label(s).replace(".", "-")
    return r.strip("-")[:30].strip("-")


class Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers: dict[str, Faker] = {}
        for i, loc in enumerate(FAKER_LOCALES + ["ar_AA", "fa_IR"]):
            if loc in self.fakers:
                continue
            f = Faker(loc)
            f.seed_instance(seed + i)
            self.fakers[loc] = f
        self.en = self.fakers["en_US"]
        self.phones = PhoneBook(self.rng)

    def choice(self, xs):
        return self.rng.choice(xs)

    def faker(self, loc: str | None = None) -> Faker:
        return self.fakers[loc or self.choice(FAKER_LOCALES)]

    # ---- emails ------------------------------------------------------------------------------

    def ascii_local(self, fk: Faker | None = None) -> str:
        fk = fk or self.faker()
        style = self.rng.random()
        if style < 0.5:
            loc = fk.user_name()
        else:
            first = norm_label(self.en.first_name(), keep_unicode=False)
            last = norm_label(self.en.last_name(), keep_unicode=False)
            loc = self.choice([
                f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{first}{self.rng.randint(1, 99)}",
                f"{first}-{last}", f"{last}.{first[0]}", f"{first}.{last}{self.rng.randint(1970, 2005)}",
            ])
        loc = "".join(c for c in loc if c.isascii() and (c.isalnum() or c in "._-")).strip("._-")
        return loc or "user"

    def ascii_domain(self, fk: Faker | None = None) -> str:
        fk = fk or self.faker()
        if self.rng.random() < 0.6:
            return self.choice(SAFE_DOMAINS)
        d = fk.domain_name()
        if not d.isascii():
            return self.choice(SAFE_DOMAINS)
        return d

    def email_plain(self) -> P:
        loc = self.choice(FAKER_LOCALES)
        fk = self.faker(loc)
        if self.rng.random() < 0.3:
            v = fk.email()  # safe=True: example.com/.org/.net
        else:
            v = f"{self.ascii_local(fk)}@{self.ascii_domain(fk)}"
        return P("EMAIL", v, "email_faker")

    def email_variant(self) -> tuple[list, str]:
        """A positive email fragment (possibly with non-span wrapping) and its category."""
        r = self.rng.random()
        loc = self.ascii_local()
        if r < 0.22:
            p = self.email_plain()
            return [p], p.src
        if r < 0.30:
            tag = self.choice(["newsletter", "shop", "github", "2024", "work", "billing", "a.b", "x-y", "test+1"])
            return [P("EMAIL", f"{loc}+{tag}@{self.ascii_domain()}", "email_plus")], "email_plus"
        if r < 0.37:
            sub = self.choice(["mail", "eu.mail", "corp", "support.eu-west-1", "lists", "dept.hq", "mx1.mail"])
            base = self.choice(["example.com", "example.org", "example.net", "example.co.uk", "example.com.au"])
            return [P("EMAIL", f"{loc}@{sub}.{base}", "email_subdomain")], "email_subdomain"
        if r < 0.47:
            return [self.email_idn()], "email_idn"
        if r < 0.53:
            return [self.email_punycode()], "email_punycode"
        if r < 0.58:
            v = f"{loc}@{self.ascii_domain()}"
            v = self.choice([v.upper(), v.title(), v[0].upper() + v[1:]])
            return [P("EMAIL", v, "email_case")], "email_case"
        if r < 0.64:
            # Characters RFC 5322 allows in a local part and that real addresses do use.
            odd = self.choice([
                f"{loc}.o'neil", f"o'{loc}", f"{loc}_{self.rng.randint(1, 9)}", f"{loc}%team", f"{loc}~dev", f"{loc}&co",
                f"{loc}=x", f"1{loc}", f"{self.rng.randint(1, 99)}{loc}", f"{loc}.{self.rng.randint(100, 999)}", f"{loc[:1]}",
                f"{loc}#ops", f"_{loc}", f"{loc}--{self.rng.randint(1, 9)}", f"{loc.upper()}",
            ])
            dom = self.choice(["example.com", "example.org", "example.net", "xn--bcher-kva.example"])
            return [P("EMAIL", f"{odd}@{dom}", "email_rare_chars")], "email_rare_chars"
        # wrappers and surroundings
        p = self.email_plain() if self.rng.random() < 0.8 else self.email_idn()
        w = self.rng.random()
        if w < 0.2:
            pre = self.choice(["mailto:", "MAILTO:", "mailto:", "Mailto:"])
            query = self.choice(["", "", "?subject=Hello", "?subject=Invoice%20123&body=Hi", "?cc=" + "x"])
            if query.endswith("x"):
                cc = self.email_plain()
                cc.src = "email_mailto"
                p.src = "email_mailto"
                return [pre, p, "?cc=", cc], "email_mailto"
            p.src = "email_mailto"
            return [pre, p, query], "email_mailto"
        if w < 0.4:
            key = self.choice(["user", "email", "from", "to", "rcpt", "login", "account", "reply_to", "owner",
                               "actor", "sender", "recipient", "e-mail", "mail", "uid"])
            q = self.choice(["", "", '"', "'"])
            sep = self.choice(["=", "=", ":", ": ", "="])
            p.src = "email_kv"
            return [f"{key}{sep}{q}", p, q], "email_kv"
        if w < 0.7:
            l, rr = self.choice([
                ("<", ">"), ('"', '"'), ("'", "'"), ("(", ")"), ("[", "]"), ("{", "}"), ("«", "»"),
                ("「", "」"), ("『", "』"), ("（", "）"), ("“", "”"), ("‘", "’"), ("`", "`"), ("<<", ">>"),
                ("【", "】"), ("*", "*"), ("**", "**"), ("_", "_"), ("|", "|"),
            ])
            p.src = "email_wrapped"
            return [l, p, rr], "email_wrapped"
        if w < 0.85:
            p.src = "email_punct"
            return [p, self.choice([".", ",", ";", ":", "!", "?", ").", "),", "...", "。", "、", "，", "！", "?)", "'.", "—"])], "email_punct"
        p.src = "email_cjk_glued"
        if self.rng.random() < 0.7:
            p = self.email_plain()
            p.src = "email_cjk_glued"
        pre, post = self.choice([
            ("请发邮件至", "，谢谢"), ("联系邮箱", "或者电话"), ("メールは", "までお願いします"), ("連絡先", "です。"),
            ("이메일", "로 보내주세요"), ("邮箱：", "（工作日回复）"), ("請寄信到", "。"), ("宛先", "に送信"),
            ("担当者", "まで"), ("发送至", "即可"),
        ])
        return [pre, p, post], "email_cjk_glued"

    def email_idn(self) -> P:
        loc = self.choice(IDN_LOCALES)
        fk = self.faker(loc)
        mode = self.rng.random()
        first = norm_label(fk.first_name()) or "josé"
        last = norm_label(fk.last_name()) or "müller"
        local_u = self.choice([first, f"{first}.{last}", last, f"{last}{self.rng.randint(1, 99)}"])
        dom_u = dom_label(self.choice([fk.last_name(), fk.city(), fk.company()])) or "exämple"
        if mode < 0.35:  # Unicode local part, ASCII domain
            v = f"{local_u}@{self.choice(SAFE_DOMAINS)}"
        elif mode < 0.65:  # ASCII local part, IDN domain
            tld = self.choice(IDN_TLDS + ["de", "fr", "example", "test", "com", "org"])
            v = f"{self.ascii_local()}@{dom_u}.{tld}"
        else:  # both
            tld = self.choice(IDN_TLDS + ["de", "example", "test", "com"])
            v = f"{local_u}@{dom_u}.{tld}"
        if self.rng.random() < 0.05:
            v = self.choice(["josé@exämple.de", "用户@例子.广告", "пользователь@пример.рф", "δοκιμή@παράδειγμα.δοκιμή",
                             "ユーザー@例え.テスト", "사용자@예시.한국", "उपयोगकर्ता@उदाहरण.भारत", "müller@bücher.example"])
        return P("EMAIL", v, "email_idn")

    def email_punycode(self) -> P:
        for _ in range(20):
            loc = self.choice(IDN_LOCALES)
            fk = self.faker(loc)
            lab = dom_label(self.choice([fk.last_name(), fk.city()]))
            if not lab or lab.isascii():
                continue
            try:
                puny = lab.encode("idna").decode("ascii")
            except UnicodeError:
                continue
            tld = self.choice(["de", "com", "example", "test", "xn--zckzah", "xn--p1ai", "xn--fiqs8s", "org"])
            local = self.ascii_local()
            return P("EMAIL", f"{local}@{puny}.{tld}", "email_punycode")
        return P("EMAIL", "info@xn--exmple-cua.de", "email_punycode")

    # ---- phones ------------------------------------------------------------------------------

    PHONE_CATS = [
        ("phone_intl", 14), ("phone_e164", 9), ("phone_00", 7), ("phone_intl_styled", 5), ("phone_ext", 6),
        ("phone_tel_link", 6), ("phone_wame", 5), ("phone_fullwidth", 5), ("phone_arabic_indic", 4),
        ("phone_persian", 3), ("phone_indic", 1), ("phone_cjk_glued", 2), ("phone_national_ctx", 33),
    ]
    INTL_ONLY = {"phone_intl", "phone_e164", "phone_00", "phone_intl_styled", "phone_tel_link", "phone_wame"}

    BARE = {"phone_intl", "phone_e164", "phone_00", "phone_intl_styled"}

    def phone_variant(self, national_ok: bool = True, bare: bool = False) -> tuple[list, str]:
        frag, cat = self._phone_variant(national_ok, bare)
        for x in frag:
            if isinstance(x, P):
                x.region = self._last_region
        return frag, cat

    def _phone_variant(self, national_ok: bool, bare: bool) -> tuple[list, str]:
        """A positive phone fragment (possibly with context word or link around it) and its category.
        With `national_ok=False` only international forms are produced (for key=value logs); with
        `bare=True` only forms that stand alone in a table cell (the caller keeps only the P part)."""
        allowed = self.BARE if bare else self.INTL_ONLY if not national_ok else None
        cats = [c for c in self.PHONE_CATS if allowed is None or c[0] in allowed]
        cat = self.rng.choices([c for c, _ in cats], [w for _, w in cats])[0]
        special = {"phone_fullwidth": FULLWIDTH_REGIONS, "phone_arabic_indic": ARABIC_REGIONS,
                   "phone_persian": PERSIAN_REGIONS, "phone_indic": {"IN", "BD", "NP"}}.get(cat)
        region, num = self.phones.pick(sorted(special) if special else None)
        self._last_region = region
        intl = pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL)
        e164 = pn.format_number(num, pn.PhoneNumberFormat.E164)
        nat = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
        link = pn.format_number(num, pn.PhoneNumberFormat.RFC3966)[len("tel:"):]
        lang = REGION_LANG.get(region, "en")
        ctx = self.ctx_word(lang)
        if cat == "phone_intl":
            return [P("PHONE", intl, cat)], cat
        if cat == "phone_e164":
            return [P("PHONE", e164, cat)], cat
        if cat == "phone_00":
            v = "00" + intl[1:] if self.rng.random() < 0.7 else "00" + e164[1:]
            return ([ctx] if self.rng.random() < 0.5 else []) + [P("PHONE", v, cat)], cat
        if cat == "phone_intl_styled":
            groups = intl.split(" ")
            opts = [intl.replace(" ", "-"), intl.replace(" ", "."), "(" + groups[0] + ") " + " ".join(groups[1:])]
            if len(groups) >= 3:
                opts.append(f"{groups[0]} ({groups[1]}) {' '.join(groups[2:])}")
            if region in ("GB", "DE", "AT", "CH", "NL", "BE", "IT") and len(groups) >= 2:
                opts.append(f"{groups[0]} (0){' '.join(groups[1:])}" if region != "IT" else intl)
            return [P("PHONE", self.choice(opts), cat)], cat
        if cat == "phone_ext":
            base = self.choice([intl, intl, e164, nat])
            ext = self.choice([" ext. ", " ext ", " x", " x ", "#", " #", " ext.", ", ext. ", " Ext. ", " extension ", " Durchwahl "])
            frag = [P("PHONE", base + ext + str(self.rng.randint(1, 9999)), cat)]
            if base == nat or self.rng.random() < 0.4:
                frag = [ctx] + frag
            return frag, cat
        if cat == "phone_tel_link":
            style = self.rng.random()
            if style < 0.4:
                return ['<a href="tel:', P("PHONE", self.choice([link, e164]), cat), '">call us</a>'], cat
            if style < 0.7:
                return [self.choice(["tel:", "TEL:", "tel:"]), P("PHONE", self.choice([link, e164]), cat)], cat
            return ["[", P("PHONE", intl, cat), "](tel:", P("PHONE", e164, cat), ")"], cat
        if cat == "phone_wame":
            digits = e164[1:]
            pre = self.choice(["https://wa.me/", "wa.me/", "http://wa.me/", "https://api.whatsapp.com/send?phone="])
            post = "" if "api." in pre else self.choice(["", "", "?text=Hi", "/"])
            return [pre, P("PHONE", digits, cat), post], cat
        if cat == "phone_fullwidth":
            v = self.choice([intl, nat, nat, e164])
            return [ctx, P("PHONE", to_fullwidth(v, self.rng.random() < 0.5, self.rng.random() < 0.3), cat)], cat
        if cat == "phone_arabic_indic":
            return [ctx, P("PHONE", to_digits(self.choice([intl, nat, e164]), ARABIC_INDIC), cat)], cat
        if cat == "phone_persian":
            return [ctx, P("PHONE", to_digits(self.choice([intl, nat, e164]), PERSIAN), cat)], cat
        if cat == "phone_indic":
            digs = BENGALI if region == "BD" else DEVANAGARI
            return [ctx, P("PHONE", to_digits(self.choice([intl, nat]), digs), cat)], cat
        if cat == "phone_cjk_glued":
            pre, post = self.choice([("电话", "（工作日）"), ("電話", "まで"), ("전화", "로 연락"), ("请拨打", "咨询"), ("TEL", "")])
            return [pre, P("PHONE", self.choice([intl, e164]), cat), post], cat
        assert cat == "phone_national_ctx"
        v = nat.replace(" ", "-") if " " in nat and self.rng.random() < 0.15 else nat
        return [ctx, P("PHONE", v, cat)], cat

    def ctx_word(self, lang: str) -> str:
        w = self.choice(CTX_WORDS.get(lang, CTX_WORDS["en"]) + (CTX_WORDS["en"][:3] if self.rng.random() < 0.2 else []))
        if w.endswith("："):
            return w
        return w + " "

    # ---- negatives -----------------------------------------------------------------------------

    def negative(self, exclude: tuple[str, ...] = ()) -> tuple[list, str]:
        """A look-alike that must not be detected, with a little context around it."""
        cats = [c for c in NEG_CATS if c not in exclude]
        cat = self.choice(cats)
        fn = getattr(self, "neg_" + cat)
        frag = fn()
        return frag, "neg_" + cat

    def _n(self, v: str, cat: str) -> N:
        return N(v, "neg_" + cat)

    def rand_date(self):
        # From our own RNG and timezone-aware: Faker's relative dates depend on the clock, and
        # naive datetimes' timestamps on the machine's timezone.
        return EPOCH0 + dt.timedelta(seconds=self.rng.randint(0, 9 * 365 * 86400))

    def neg_date(self):
        d = self.rand_date()
        v = self.choice([
            d.strftime("%Y-%m-%d"), d.strftime("%d/%m/%Y"), d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y"),
            d.strftime("%Y/%m/%d"), d.strftime("%d-%m-%Y"), d.strftime("%Y%m%d"), d.strftime("%d.%m.%y"),
            f"{d.year}年{d.month}月{d.day}日", d.strftime("%B %d, %Y"), d.strftime("%d %b %Y"),
            d.strftime("%Y.%m.%d"), d.strftime("%m-%d-%Y"), d.strftime("%d/%m/%Y") + " - " + d.strftime("%d/%m/%Y"),
        ])
        pre = self.choice(["Date: ", "due ", "on ", "Datum: ", "le ", "fecha: ", "日付：", "shipped ", "born ", "valid until "])
        return [pre, self._n(v, "date")]

    def neg_time(self):
        d = self.rand_date()
        v = self.choice([d.strftime("%H:%M"), d.strftime("%H:%M:%S"), d.strftime("%I:%M %p"), d.strftime("%Hh%M"),
                         d.strftime("%H:%M:%S.%f")[:-3], d.strftime("%H.%M Uhr"), d.strftime("%H:%M") + "–" + d.strftime("%H:%M")])
        return [self.choice(["at ", "um ", "à ", "time ", "call window ", "Meeting at ", ""]), self._n(v, "time")]

    def neg_iso_ts(self):
        d = self.rand_date()
        v = self.choice([
            d.strftime("%Y-%m-%dT%H:%M:%SZ"), d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            d.strftime("%Y-%m-%dT%H:%M:%S") + self.choice(["+02:00", "-05:00", "+0530", "+09:00"]),
            d.strftime("%Y-%m-%d %H:%M:%S"), d.strftime("%Y-%m-%d %H:%M:%S,") + f"{self.rng.randint(0, 999):03d}",
            d.strftime("%Y%m%dT%H%M%SZ"), d.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        ])
        return [self.choice(["created_at=", "ts=", "timestamp: ", "", "updated "]), self._n(v, "iso_ts")]

    def neg_epoch(self):
        d = self.rand_date()
        e = int(d.timestamp())
        if self.rng.random() < 0.5:
            return [self.choice(["epoch=", "ts=", "\"ts\": ", "time ", "exp: ", "iat="]), self._n(str(e), "epoch")]
        return [self.choice(["ts_ms=", "timestamp=", "\"t\": ", "at ", "lastSeen: "]),
                self._n(str(e * 1000 + self.rng.randint(0, 999)), "epoch")]

    def neg_ipv4(self):
        r = self.rng
        a = self.choice([f"192.0.2.{r.randint(1, 254)}", f"198.51.100.{r.randint(1, 254)}", f"203.0.113.{r.randint(1, 254)}",
                         f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}", f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                         f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}"])
        if r.random() < 0.2:
            a += self.choice([f":{r.randint(1024, 65535)}", f"/{r.choice([8, 16, 24, 32])}"])
        return [self.choice(["ip=", "client ", "from ", "src=", "remote_addr: ", "IP ", ""]), self._n(a, "ipv4")]

    def neg_ipv6(self):
        r = self.rng
        h = lambda: f"{r.randint(0, 0xFFFF):x}"
        a = self.choice([
            f"2001:db8::{h()}", f"2001:db8:{h()}:{h()}::{h()}", f"2001:0db8:85a3:0000:0000:8a2e:0370:{r.randint(0, 9999):04d}",
            f"fe80::{h()}:{h()}:{h()}:{h()}%eth0", "::1", f"2001:db8:{r.randint(0, 9999)}:{r.randint(0, 9999)}:{r.randint(0, 9999)}:{r.randint(0, 9999)}:{r.randint(0, 9999)}:{r.randint(0, 9999)}",
            f"[2001:db8::{h()}]:{r.randint(1024, 65535)}", f"::ffff:192.0.2.{r.randint(1, 254)}",
        ])
        return [self.choice(["ip6=", "addr ", "from ", "peer=", ""]), self._n(a, "ipv6")]

    def neg_version(self):
        r = self.rng
        v = self.choice([
            f"{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}", f"v{r.randint(1, 30)}.{r.randint(0, 20)}.{r.randint(0, 99)}",
            f"{r.randint(1, 5)}.{r.randint(0, 9)}.{r.randint(0, 9)}-rc.{r.randint(1, 5)}", f"10.0.{r.randint(10000, 26000)}.{r.randint(100, 9999)}",
            f"{r.randint(100, 130)}.0.{r.randint(1000, 6999)}.{r.randint(10, 250)}", f"{r.randint(2019, 2026)}.{r.randint(1, 12)}.{r.randint(0, 5)}",
            f"build {r.randint(1000, 99999)}", f"API {r.choice(['2023-10-16', '2024-06-20', 'v2'])}",
        ])
        return [self.choice(["version ", "Version: ", "app ", "upgraded to ", "client/", "node ", "firmware ", ""]), self._n(v, "version")]

    def neg_uuid(self):
        u = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if self.rng.random() < 0.2:
            u = u.upper()
        if self.rng.random() < 0.1:
            u = u.replace("-", "")
        return [self.choice(["id=", "request_id: ", "trace ", "\"uuid\": ", "session ", ""]), self._n(u, "uuid")]

    def neg_card(self):
        r = self.rng
        prefix, length = self.choice([("4", 16), ("4242", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("34", 15), ("6011", 16), ("35", 16), ("62", 16)])
        body = prefix + "".join(str(r.randint(0, 9)) for _ in range(length - len(prefix) - 1))
        num = body + luhn_check_digit(body)
        if r.random() < 0.5:
            if length == 15:
                v = f"{num[:4]} {num[4:10]} {num[10:]}"
            else:
                sep = self.choice([" ", "-"])
                v = sep.join(num[i:i + 4] for i in range(0, 16, 4))
        else:
            v = num
        return [self.choice(["card ", "Card number: ", "cc=", "PAN ", "Karte ", "carte "]), self._n(v, "card")]

    def neg_isbn(self):
        r = self.rng
        if r.random() < 0.5:
            body = self.choice(["978", "979"]) + "".join(str(r.randint(0, 9)) for _ in range(9))
            s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body))
            num = body + str((10 - s % 10) % 10)
            if r.random() < 0.6:
                g = r.randint(1, 2)
                p = r.randint(2, 4)
                v = f"{num[:3]}-{num[3:3 + g]}-{num[3 + g:3 + g + p]}-{num[3 + g + p:12]}-{num[12]}"
            else:
                v = num
        else:
            body = "".join(str(r.randint(0, 9)) for _ in range(9))
            s = sum((10 - i) * int(c) for i, c in enumerate(body))
            c = (11 - s % 11) % 11
            num = body + ("X" if c == 10 else str(c))
            if r.random() < 0.6:
                v = f"{num[0]}-{num[1:4]}-{num[4:9]}-{num[9]}"
            else:
                v = num
        return [self.choice(["ISBN ", "ISBN: ", "ISBN-13: ", "isbn=", "ISBN-10 "]), self._n(v, "isbn")]

    def neg_price(self):
        r = self.rng
        a = r.randint(1, 999999)
        c = r.randint(0, 99)
        v = self.choice([
            f"${a:,}.{c:02d}", f"{a:,}.{c:02d} USD", f"{a:,}".replace(",", ".") + f",{c:02d} €",
            f"€{a:,}".replace(",", "."), f"¥{a:,}", f"£{a:,}.{c:02d}", f"{a:,}".replace(",", " ") + f",{c:02d} zł",
            f"₹{a:,}.00", f"R$ {a:,}".replace(",", ".") + f",{c:02d}", f"CHF {a:,}".replace(",", "'") + f".{c:02d}",
            f"{a} ₽", f"USD {a:,}.{c:02d}", f"{a:,}円",
        ])
        return [self.choice(["total ", "Price: ", "amount=", "Summe: ", "Montant : ", "only ", ""]), self._n(v, "price")]

    def neg_coord(self):
        r = self.rng
        lat = r.uniform(-89, 89)
        lon = r.uniform(-179, 179)
        v = self.choice([
            f"{lat:.4f}, {lon:.4f}", f"{lat:.6f},{lon:.6f}", f"lat: {lat:.5f}, lon: {lon:.5f}",
            f"{abs(int(lat))}°{r.randint(0, 59)}'{r.randint(0, 59)}\"{'N' if lat > 0 else 'S'} {abs(int(lon))}°{r.randint(0, 59)}'{r.randint(0, 59)}\"{'E' if lon > 0 else 'W'}",
            f"POINT({lon:.5f} {lat:.5f})", f"geo:{lat:.5f},{lon:.5f}",
        ])
        return [self.choice(["location ", "coords ", "at ", "Standort: ", ""]), self._n(v, "coord")]

    def neg_table(self):
        r = self.rng
        rows = []
        for _ in range(r.randint(2, 4)):
            rows.append(",".join([str(r.randint(2018, 2026)), f"Q{r.randint(1, 4)}", str(r.randint(100000, 9999999999)),
                                  str(r.randint(0, 99999)), f"{r.random():.3f}", str(r.randint(10000000, 99999999))]))
        return ["\n", self._n("\n".join(rows), "table"), "\n"]

    def neg_measure(self):
        """Numbers in tables of measurements laid out like NANP numbers: counts, populations,
        sizes with their unit or a word that makes them quantities."""
        r = self.rng
        a, b, c = r.randint(200, 999), r.randint(200, 999), r.randint(1000, 9999)
        n10 = str(r.randint(2 * 10 ** 9, 9 * 10 ** 9))
        pre, v, post = self.choice([
            ("Counts: ", f"{a} {b} {c}", ""),
            ("Population ", f"({a}) {b}-{c}", " bytes"),
            ("", f"{a} {b} {c}", " KB"),
            ("transferred ", n10, " bytes"),
            ("size=", n10, " bytes"),
            ("total ", f"{a}-{b}-{c}", " views"),
            ("avg ", f"{a}.{b}.{c}", " ms"),
            ("downloads: ", f"{a} {b} {c}", ""),
            ("Sum: ", f"{a} {b} {c}", " EUR"),
            ("median ", n10, " requests"),
        ])
        return [pre, self._n(v, "measure"), post]

    def neg_order_id(self):
        r = self.rng
        v = self.choice([
            f"#{r.randint(100000, 999999999)}", f"INV-{r.randint(2018, 2026)}-{r.randint(0, 999999):06d}",
            f"ORD-{r.randint(10000000, 99999999)}", f"{r.randint(100, 999)}-{r.randint(1000000, 9999999)}-{r.randint(1000000, 9999999)}",
            f"PO {r.randint(4500000000, 4599999999)}", f"cus_{''.join(r.choice(string.ascii_letters + string.digits) for _ in range(14))}",
            f"{r.randint(10 ** 9, 10 ** 10 - 1)}", f"{r.randint(10 ** 11, 10 ** 12 - 1)}", f"A{r.randint(10 ** 7, 10 ** 8 - 1)}",
        ])
        pre = self.choice(["Order ", "order_id=", "Invoice ", "Rechnung Nr. ", "Bestellnummer ", "Commande n° ", "Pedido ",
                           "ticket ", "Ref: ", "account ", "customer id ", "注文番号 ", "订单号 ", "case "])
        return [pre, self._n(v, "order_id")]

    def neg_tracking(self):
        r = self.rng
        v = self.choice([
            "1Z" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            " ".join(f"{r.randint(0, 9999):04d}" for _ in range(5)) + f" {r.randint(0, 99):02d}",
            f"{r.randint(10 ** 11, 10 ** 12 - 1)}", f"JD{r.randint(10 ** 15, 10 ** 16 - 1)}",
            f"RR{r.randint(10 ** 8, 10 ** 9 - 1)}DE", f"{r.randint(10 ** 19, 10 ** 20 - 1)}",
        ])
        return [self.choice(["tracking ", "Tracking number: ", "Sendungsnummer ", "AWB ", "shipment "]), self._n(v, "tracking")]

    def neg_iban(self):
        r = self.rng
        cc, blen = self.choice([("DE", 18), ("FR", 23), ("GB", 18), ("ES", 20), ("NL", 14), ("IT", 23), ("PL", 24)])
        if cc in ("GB", "NL"):
            bank = "".join(r.choice(string.ascii_uppercase) for _ in range(4))
            bban = bank + "".join(str(r.randint(0, 9)) for _ in range(blen - 4))
        else:
            bban = "".join(str(r.randint(0, 9)) for _ in range(blen))
        num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
        iban = f"{cc}{98 - num % 97:02d}{bban}"
        if r.random() < 0.6:
            iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        return [self.choice(["IBAN ", "IBAN: ", "iban="]), self._n(iban, "iban")]

    def neg_ctx_trap(self):
        """Context words next to numbers that are not phone numbers."""
        r = self.rng
        d = self.rand_date()
        v = self.choice([
            ["Call duration: ", self._n(f"00:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}", "ctx_trap")],
            ["Phone: ", self._n("n/a", "ctx_trap"), ", mobile app ", self._n(f"v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}", "ctx_trap")],
            ["Telefonat am ", self._n(d.strftime("%d.%m.%Y"), "ctx_trap"), " um ", self._n(d.strftime("%H:%M"), "ctx_trap"), " Uhr"],
            ["call #", self._n(str(r.randint(1000, 99999)), "ctx_trap"), " scheduled"],
            ["phone model SM-", self._n(f"S{r.randint(900, 999)}B", "ctx_trap")],
            ["calls today: ", self._n(str(r.randint(1, 99999)), "ctx_trap")],
            ["tel. support hours ", self._n(f"{r.randint(7, 10)}:00-{r.randint(16, 20)}:00", "ctx_trap")],
            ["Mobile data used: ", self._n(f"{r.randint(1, 999)}.{r.randint(0, 99)} GB", "ctx_trap")],
            ["phone battery ", self._n(f"{r.randint(1, 100)}%", "ctx_trap")],
            ["call ID ", self._n(str(uuid.UUID(int=r.getrandbits(128), version=4)), "ctx_trap")],
            ["电话会议 ", self._n(f"{d.year}年{d.month}月{d.day}日 {d.hour}:{d.minute:02d}", "ctx_trap")],
            ["phone ext. count: ", self._n(str(r.randint(1, 500)), "ctx_trap")],
        ])
        return v

    def neg_at_2x(self):
        v = self.choice(["icon", "logo", "avatar", "sprite", "btn-close", "hero_bg", "arrow-left", "favicon"]) + "@" + \
            self.choice(["2x", "3x", "1.5x", "2X", "4x"]) + "." + self.choice(["png", "jpg", "webp", "gif", "svg"])
        return [self.choice(["src=\"/img/", "url(", "assets/", "![", "image: "]), self._n(v, "at_2x")]

    def neg_at_pkg(self):
        r = self.rng
        name = self.choice(["lodash", "react", "@types/node", "@babel/core", "typescript", "express", "left-pad", "vite",
                            "@angular/core", "pkg", "serde", "tokio", "numpy", "django", "next"])
        ver = self.choice([f"{r.randint(0, 20)}.{r.randint(0, 30)}.{r.randint(0, 50)}", f"^{r.randint(1, 9)}.{r.randint(0, 9)}.0",
                           "latest", f"~{r.randint(1, 5)}.{r.randint(0, 9)}", f"{r.randint(1, 5)}.{r.randint(0, 9)}.{r.randint(0, 9)}-beta.{r.randint(1, 9)}", "next"])
        v = f"{name}@{ver}"
        return [self.choice(["npm install ", "pnpm add ", "yarn add ", "installed ", "bump ", "resolved "]), self._n(v, "at_pkg")]

    def neg_at_sha(self):
        h = "%064x" % self.rng.getrandbits(256)
        img = self.choice(["nginx", "ghcr.io/org/app", "registry.example.com/team/api", "python", "postgres", "docker.io/library/redis",
                           "quay.io/example/worker"])
        return [self.choice(["image: ", "FROM ", "docker pull ", "pinned "]), self._n(f"{img}@sha256:{h}", "at_sha")]

    def neg_git_scp(self):
        org = norm_label(self.en.last_name(), keep_unicode=False)
        repo = self.choice(["api", "web", "infra", "mcp-server", "tools", "docs", "core-lib"])
        host = self.choice(["github.com", "gitlab.com", "bitbucket.org", "git.example.com", "ssh.dev.azure.com"])
        suffix = self.choice([".git", ".git", ""])
        return [self.choice(["git clone ", "remote: ", "origin\t", "url = ", "submodule "]), self._n(f"git@{host}:{org}/{repo}{suffix}", "git_scp")]

    def neg_at_ip(self):
        r = self.rng
        user = self.choice(["user", "root", "admin", "ubuntu", "deploy", "ec2-user", "pi", "git"])
        ip = self.choice([f"10.0.0.{r.randint(1, 254)}", f"192.168.{r.randint(0, 9)}.{r.randint(1, 254)}", f"192.0.2.{r.randint(1, 254)}",
                          f"203.0.113.{r.randint(1, 254)}", f"[2001:db8::{r.randint(1, 999)}]", f"172.16.{r.randint(0, 9)}.{r.randint(1, 254)}"])
        return [self.choice(["ssh ", "scp file ", "Accepted publickey for ", "connect ", "rsync -a ./ "]), self._n(f"{user}@{ip}", "at_ip"),
                self.choice(["", ":/tmp/", " -p 22", ""])]

    def neg_mention(self):
        who = norm_label(self.en.first_name(), keep_unicode=False)
        v = self.choice([f"@{who}", f"@{who}.{norm_label(self.en.last_name(), keep_unicode=False)}", f"@{who}_{self.rng.randint(1, 99)}",
                         "@team-infra", "@here", "@channel", "@Override", "@media", "@param", "@dataclass"])
        return [self.choice(["cc ", "thanks ", "ping ", "", "reply to "]), self._n(v, "mention")]


NEG_CATS = [
    "date", "time", "iso_ts", "epoch", "ipv4", "ipv6", "version", "uuid", "card", "isbn", "price", "coord",
    "table", "order_id", "tracking", "iban", "ctx_trap", "at_2x", "at_pkg", "at_sha", "git_scp", "at_ip", "mention",
    "measure",
]
EMAIL_LOOKALIKE_NEGS = ["at_2x", "at_pkg", "at_sha", "git_scp", "at_ip", "mention"]


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


FULLWIDTH_REGIONS = {"JP", "CN", "TW", "HK", "KR"}
ARABIC_REGIONS = {"EG", "SA", "IQ", "SD", "AE", "JO", "KW", "QA", "SY", "YE"}
PERSIAN_REGIONS = {"IR", "AF", "PK"}
ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
PERSIAN = "۰۱۲۳۴۵۶۷۸۹"
DEVANAGARI = "०१२३४५६७८९"
BENGALI = "০১২৩৪৫৬৭৮৯"


def to_digits(s: str, digits: str) -> str:
    return "".join(digits[int(c)] if c.isascii() and c.isdigit() else c for c in s)


def to_fullwidth(s: str, hyphen: bool, space: bool) -> str:
    out = []
    for c in s:
        if c.isascii() and c.isdigit():
            out.append(chr(0xFF10 + int(c)))
        elif c == "+":
            out.append("＋")
        elif c == "-" and hyphen:
            out.append("－")
        elif c == " " and space:
            out.append("\u3000")
        elif c == "(" and hyphen:
            out.append("（")
        elif c == ")" and hyphen:
            out.append("）")
        else:
            out.append(c)
    return "".join(out)


# The 30 most populous countries, all EU members, and more.
POPULOUS = ["IN", "CN", "US", "ID", "PK", "NG", "BR", "BD", "RU", "ET", "MX", "JP", "EG", "PH", "CD", "VN", "IR",
            "TR", "DE", "TH", "GB", "TZ", "FR", "ZA", "IT", "KE", "MM", "CO", "KR", "SD", "UG", "ES", "DZ", "IQ", "AR"]
EU = ["AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
      "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"]
EXTRA = ["CA", "AU", "CH", "NO", "UA", "SA", "AE", "IL", "SG", "HK", "TW", "MY", "NZ", "AF", "MA", "CL", "PE",
         "IS", "JO", "KW", "QA", "NP", "LK", "RS", "BY", "KZ", "GH", "CI", "SN", "SY", "YE"]
REGIONS = list(dict.fromkeys(POPULOUS + EU + EXTRA))

REGION_LANG = {
    "US": "en", "GB": "en", "IE": "en", "MT": "en", "CA": "en", "AU": "en", "NZ": "en", "SG": "en", "NG": "en",
    "KE": "sw", "TZ": "sw", "UG": "en", "ZA": "en", "ET": "en", "PH": "en", "MM": "en", "GH": "en", "LK": "en",
    "IN": "hi", "NP": "hi", "BD": "bn", "PK": "ur", "CN": "zh", "TW": "zh_tw", "HK": "zh_tw", "JP": "ja", "KR": "ko",
    "DE": "de", "AT": "de", "CH": "de", "LU": "fr", "FR": "fr", "BE": "fr", "CD": "fr", "CI": "fr", "SN": "fr",
    "DZ": "fr", "MA": "fr", "ES": "es", "MX": "es", "CO": "es", "AR": "es", "CL": "es", "PE": "es", "BR": "pt",
    "PT": "pt", "IT": "it", "RU": "ru", "BY": "ru", "KZ": "ru", "UA": "uk", "PL": "pl", "TR": "tr", "NL": "nl",
    "SE": "sv", "DK": "da", "FI": "fi", "NO": "no", "IS": "en", "CZ": "cs", "SK": "sk", "HU": "hu", "RO": "ro",
    "BG": "bg", "HR": "hr", "SI": "sl", "RS": "hr", "GR": "el", "CY": "el", "EE": "et", "LV": "lv", "LT": "lt",
    "EG": "ar", "SA": "ar", "SD": "ar", "IQ": "ar", "AE": "ar", "JO": "ar", "KW": "ar", "QA": "ar", "IR": "fa",
    "AF": "fa", "ID": "id", "MY": "ms", "VN": "vi", "TH": "th", "IL": "he",
}

CTX_WORDS = {
    "en": ["Tel:", "Phone:", "phone", "Mobile:", "mobile", "call", "Call me at", "Cell:", "ph.", "Tel.", "tel", "Phone number:", "reach me on", "Fax:"],
    "de": ["Telefon:", "Tel.:", "Tel.", "Handy:", "Mobil:", "Rufnummer:", "Telefonnummer:", "erreichbar unter"],
    "fr": ["Téléphone :", "Tél. :", "tél.", "Portable :", "appelez le", "Tél :"],
    "es": ["Teléfono:", "Tel.:", "Móvil:", "llame al", "Celular:", "Tlf."],
    "pt": ["Telefone:", "Tel.:", "Celular:", "ligue para", "Tel"],
    "it": ["Telefono:", "Tel.", "Cellulare:", "chiamare il", "Cell."],
    "ru": ["Телефон:", "тел.", "Моб.:", "звоните", "Тел.:"],
    "uk": ["Телефон:", "тел.", "Моб.:"],
    "pl": ["Telefon:", "tel.", "Tel. kom.:", "zadzwoń pod", "Tel.:"],
    "tr": ["Telefon:", "Tel:", "Cep:", "arayın", "GSM:"],
    "nl": ["Telefoon:", "Tel.:", "Mobiel:", "bel", "tel."],
    "sv": ["Telefon:", "Tel:", "Mobil:", "ring"],
    "da": ["Telefon:", "Tlf.:", "Mobil:"],
    "fi": ["Puhelin:", "Puh.", "Matkapuhelin:"],
    "no": ["Telefon:", "Tlf:", "Mobil:"],
    "cs": ["Telefon:", "Tel.:", "Mobil:"],
    "sk": ["Telefón:", "Tel.:", "Mobil:"],
    "hu": ["Telefon:", "Tel.:", "Mobil:"],
    "ro": ["Telefon:", "Tel.:", "Mobil:"],
    "bg": ["Телефон:", "тел.:"],
    "hr": ["Telefon:", "Tel.:", "Mob.:"],
    "sl": ["Telefon:", "Tel.:", "Mob.:"],
    "el": ["Τηλέφωνο:", "Τηλ.:", "Κινητό:"],
    "et": ["Telefon:", "Tel:"],
    "lv": ["Tālrunis:", "Tel.:"],
    "lt": ["Telefonas:", "Tel.:"],
    "zh": ["电话：", "电话:", "手机：", "联系电话：", "Tel:"],
    "zh_tw": ["電話：", "手機：", "Tel:", "聯絡電話："],
    "ja": ["電話：", "電話番号：", "TEL：", "携帯：", "Tel.", "TEL"],
    "ko": ["전화:", "전화번호:", "휴대폰:", "Tel."],
    "ar": ["هاتف:", "الهاتف:", "جوال:", "رقم الهاتف:", "Tel:"],
    "fa": ["تلفن:", "شماره تماس:", "موبایل:"],
    "ur": ["فون:", "موبائل:", "Phone:"],
    "hi": ["फ़ोन:", "मोबाइल:", "Phone:", "Mob:"],
    "bn": ["ফোন:", "মোবাইল:", "Phone:"],
    "id": ["Telepon:", "Telp.", "HP:", "hubungi"],
    "ms": ["Telefon:", "Tel:"],
    "vi": ["Điện thoại:", "ĐT:", "SĐT:", "gọi"],
    "th": ["โทร.", "โทรศัพท์:", "มือถือ:"],
    "he": ["טלפון:", "נייד:", "Tel:"],
    "sw": ["Simu:", "Tel:", "Phone:"],
}

PHONE_TYPES = [
    pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.TOLL_FREE,
    pn.PhoneNumberType.FIXED_LINE_OR_MOBILE, pn.PhoneNumberType.VOIP, pn.PhoneNumberType.UAN,
    pn.PhoneNumberType.PREMIUM_RATE, pn.PhoneNumberType.SHARED_COST, pn.PhoneNumberType.PERSONAL_NUMBER,
]


class PhoneBook:
    """Valid numbers per region: libphonenumber's example numbers with perturbed last digits."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.examples: dict[str, list[pn.PhoneNumber]] = {}
        for region in REGIONS:
            xs = []
            seen = set()
            for t in PHONE_TYPES:
                n = pn.example_number_for_type(region, t)
                # Numbers shorter than 7 national digits (short codes, some UAN/VOIP) are left out:
                # a bare run that short is not recognisable as a phone number in running text.
                if n is not None and pn.is_valid_number(n) and len(str(n.national_number)) >= 7 \
                        and n.national_number not in seen:
                    seen.add(n.national_number)
                    xs.append(n)
            if not xs:
                raise SystemExit(f"no example numbers for {region}")
            self.examples[region] = xs

    def pick(self, regions: list[str] | None = None) -> tuple[str, pn.PhoneNumber]:
        region = self.rng.choice(regions or REGIONS)
        if region == "GB" and self.rng.random() < 0.6:
            # Ofcom drama ranges for fixed lines (020 7946 0xxx, 0113/0161/0121 496 0xxx).
            area = self.rng.choice(["207946", "1134960", "1614960", "1214960"])
            nn = area + "%0*d" % (10 - len(area), self.rng.randint(0, 999))
            n = pn.parse("+44" + nn)
            assert pn.is_valid_number(n), "drama range number is valid"
            return region, n
        base = self.rng.choice(self.examples[region])
        nat = str(base.national_number)
        # US/CA: keep the fictional 555-01xx block by perturbing only the last two digits.
        k = 2 if region in ("US", "CA") else self.rng.randint(1, 3)
        for _ in range(30):
            tail = "".join(str(self.rng.randint(0, 9)) for _ in range(k))
            cand = nat[:-k] + tail
            n = copy.deepcopy(base)
            n.national_number = int(cand)
            if pn.is_valid_number(n) and pn.region_code_for_number(n) == region:
                return region, n
        return region, base


# --------------------------------------------------------------------------------------------
# Documents


class Docs:
    def __init__(self, g: Gen) -> None:
        self.g = g
        self.rng = g.rng

    def pos(self, national_ok=True, email_p=0.5):
        if self.rng.random() < email_p:
            return self.g.email_variant()[0]
        return self.g.phone_variant(national_ok)[0]

    def sentence(self) -> tuple[Doc, str]:
        """One item in running text of some language."""
        g = self.g
        doc = Doc()
        fk = g.faker()
        r = self.rng.random()
        if r < 0.35:
            item, _ = g.email_variant()
        elif r < 0.75:
            item, _ = g.phone_variant()
        else:
            item, _ = g.negative()
        lead = self.rng.choice([
            f"{fk.name()}: ", "Contact: ", "Please reach out — ", "Hi, ", f"{fk.sentence()} ", "", "Note: ", "FYI ",
            "Kontakt: ", "Contacto: ", "連絡先 ", "联系方式：", "Связь: ", f"{fk.company()} — ",
        ])
        tail = self.rng.choice(["", ".", f" {fk.sentence()}", " (office hours only)", " — thanks!", "\n", " 谢谢", " よろしくお願いします。", " Danke."])
        doc.add(lead)
        doc.add(item)
        doc.add(tail)
        return doc, "sentence"

    def log(self) -> tuple[Doc, str]:
        g = self.g
        doc = Doc()
        svc = self.rng.choice(["auth", "billing", "api-gw", "mailer", "crm-sync", "sms", "notify", "worker-3"])
        for i in range(self.rng.randint(2, 6)):
            d = g.rand_date()
            ts = self.rng.choice([d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", d.strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % self.rng.randint(0, 999),
                                  d.strftime("%b %d %H:%M:%S")])
            lvl = self.rng.choice(["INFO", "WARN", "DEBUG", "ERROR", "info", "I"])
            doc.add(f"{ts} {lvl} [{svc}] ")
            msg = self.rng.choice(["login ok", "sent notification", "delivery failed", "lookup", "request", "retry", "rate limited", "user updated"])
            doc.add(msg + " ")
            for _ in range(self.rng.randint(1, 3)):
                x = self.rng.random()
                if x < 0.3:
                    p = g.email_plain()
                    p.src = "email_kv"
                    key = self.rng.choice(["user", "email", "to", "from", "rcpt", "actor", "login"])
                    doc.add([f"{key}=", p, " "])
                elif x < 0.5:
                    frag, _ = g.phone_variant(national_ok=False)
                    key = self.rng.choice(["phone", "msisdn", "to", "caller", "from", "number"])
                    doc.add([f"{key}="] + frag + [" "])
                else:
                    frag, _ = g.negative(exclude=("table",))
                    doc.add(frag)
                    doc.add(" ")
            doc.add(f"took={self.rng.randint(1, 2000)}ms")
            doc.add("\n")
        return doc, "log"

    def crm_record(self) -> dict:
        g = self.g
        loc = self.rng.choice(FAKER_LOCALES)
        fk = g.faker(loc)
        rec: dict = {
            "id": self.rng.choice([NJ(self.rng.randint(1000, 99999999), "neg_order_id"),
                                   N(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "neg_uuid"),
                                   f"cus_{''.join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(14))}"]),
            "name": fk.name(),
            "company": fk.company(),
        }
        if self.rng.random() < 0.85:
            frag = g.email_variant()[0] if self.rng.random() < 0.3 else [g.email_plain()]
            key = self.rng.choice(["email", "Email", "email_address", "primaryEmail", "contact_email"])
            rec[key] = frag[0] if len(frag) == 1 else F(*frag)
        if self.rng.random() < 0.8:
            frag, _ = g.phone_variant()
            key = self.rng.choice(["phone", "mobile", "phone_number", "phoneNumber", "tel", "telefon", "contact_phone"])
            # In a JSON field named like a phone field, drop running-text context words.
            ps = [p for p in frag if isinstance(p, P)]
            if len(ps) == 1 and ps[0].src in ("phone_national_ctx", "phone_fullwidth", "phone_arabic_indic", "phone_persian", "phone_indic"):
                rec[key] = ps[0]
            else:
                rec[key] = F(*frag)
        d = g.rand_date()
        rec["created_at"] = N(d.strftime("%Y-%m-%dT%H:%M:%SZ"), "neg_iso_ts")
        rec["updated"] = NJ(int(d.timestamp()) + self.rng.randint(0, 10 ** 7), "neg_epoch")
        rec["lifetime_value"] = NJ(round(self.rng.uniform(0, 99999), 2), "neg_price")
        rec["orders"] = NJ(self.rng.randint(0, 500), "neg_table")
        if self.rng.random() < 0.5:
            rec["address"] = fk.address().replace("\n", ", ")
        if self.rng.random() < 0.6:
            frag, _ = g.negative()
            rec["notes"] = F(fk.sentence() + " ", *frag)
        if self.rng.random() < 0.3:
            rec["tags"] = [fk.word(), fk.word()]
        return rec

    def json_crm(self) -> tuple[Doc, str]:
        doc = Doc()
        recs = [self.crm_record() for _ in range(self.rng.randint(1, 4))]
        v = self.rng.choice([{"results": recs, "total": len(recs), "page": 1}, recs, {"contact": recs[0]}])
        emit_json(doc, v, self.rng.choice([None, 2]))
        return doc, "json_crm"

    def json_ticket(self) -> tuple[Doc, str]:
        g = self.g
        fk = g.faker()
        doc = Doc()
        body_parts = [fk.sentence(), " "]
        for _ in range(self.rng.randint(1, 3)):
            body_parts += self.pos() + [" ", fk.sentence(), " "]
        for _ in range(self.rng.randint(1, 3)):
            frag, _ = g.negative()
            body_parts += frag + [". "]
        req = g.email_plain()
        t = {
            "ticket": {
                "id": NJ(self.rng.randint(10000, 9999999), "neg_order_id"),
                "subject": fk.sentence(),
                "status": self.rng.choice(["open", "pending", "solved"]),
                "priority": self.rng.choice(["low", "normal", "high", "urgent"]),
                "requester": {"name": fk.name(), "email": req},
                "description": F(*body_parts),
                "created_at": N(g.rand_date().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "neg_iso_ts"),
                "custom_fields": [{"id": NJ(self.rng.randint(10 ** 9, 10 ** 10), "neg_order_id"),
                                   "value": NJ(self.rng.randint(0, 10 ** 6), "neg_table")}],
                "via": {"channel": self.rng.choice(["email", "web", "voice", "chat"])},
            }
        }
        emit_json(doc, t, self.rng.choice([None, 2]))
        return doc, "json_ticket"

    def email_body(self) -> tuple[Doc, str]:
        g = self.g
        fk = g.faker()
        doc = Doc()
        sender = g.email_plain()
        doc.add(["From: ", fk.name(), " <", sender, ">\n"])
        doc.add(["To: ", g.email_plain(), "\n"])
        d = g.rand_date()
        doc.add(["Date: ", N(d.strftime("%a, %d %b %Y %H:%M:%S +0000"), "neg_iso_ts"), "\n"])
        doc.add(["Subject: ", fk.sentence(), "\n\n"])
        doc.add([self.rng.choice(["Hi", "Hello", "Hallo", "Bonjour", "Hola", "您好", "こんにちは"]), " ", fk.first_name(), ",\n\n"])
        for _ in range(self.rng.randint(1, 3)):
            doc.add(fk.paragraph(nb_sentences=2) + " ")
            frag, _ = g.negative()
            doc.add(frag)
            doc.add(".\n")
        if self.rng.random() < 0.6:
            doc.add("You can also reach me at ")
            doc.add(self.pos(email_p=0.3))
            doc.add(".\n")
        doc.add(["\n--\n", fk.name(), "\n", fk.job(), ", ", fk.company(), "\n"])
        frag, _ = g.phone_variant()
        doc.add(frag)
        doc.add("\n")
        if self.rng.random() < 0.5:
            doc.add(g.email_variant()[0])
            doc.add("\n")
        return doc, "email_body"

    def ticket_text(self) -> tuple[Doc, str]:
        g = self.g
        fk = g.faker()
        doc = Doc()
        doc.add(["Ticket #", N(str(self.rng.randint(10000, 999999)), "neg_order_id"), f" — {fk.sentence()}\n"])
        doc.add(f"Customer: {fk.name()}\n")
        doc.add(["Email: ", g.email_variant()[0], "\n"])
        frag, _ = g.phone_variant()
        doc.add(["Callback: "] + frag + ["\n"])
        for _ in range(self.rng.randint(1, 3)):
            frag, _ = g.negative()
            doc.add(frag)
            doc.add("\n")
        doc.add(f"Description: {fk.paragraph(nb_sentences=3)}\n")
        return doc, "ticket_text"

    def csv(self) -> tuple[Doc, str]:
        g = self.g
        doc = Doc()
        sep = self.rng.choice([",", ";", "\t"])
        doc.add(sep.join(["id", "name", "email", "phone", "amount", "created", "ip"]) + "\n")
        for _ in range(self.rng.randint(2, 6)):
            fk = g.faker()
            p = g.email_plain()
            frag, _ = g.phone_variant(bare=True)
            ph = [x for x in frag if isinstance(x, P)][0]
            ph = P("PHONE", ph.value, ph.src, ph.region)
            d = g.rand_date()
            doc.add([N(str(self.rng.randint(1, 999999)), "neg_order_id"), sep, fk.name().replace(sep, " "), sep, p, sep, ph, sep,
                     N(f"{self.rng.uniform(0, 9999):.2f}", "neg_price"), sep, N(d.strftime("%Y-%m-%d"), "neg_date"), sep])
            doc.add(g.neg_ipv4()[-1:])
            doc.add("\n")
        return doc, "csv"

    def md_table(self) -> tuple[Doc, str]:
        g = self.g
        doc = Doc()
        doc.add("| Name | Email | Phone | Orders | Updated |\n|---|---|---|---:|---|\n")
        for _ in range(self.rng.randint(2, 5)):
            fk = g.faker()
            frag, _ = g.phone_variant(bare=True)
            ph0 = [x for x in frag if isinstance(x, P)][0]
            ph = P("PHONE", ph0.value, "phone_table", ph0.region)
            doc.add(["| ", fk.name(), " | ", g.email_plain(), " | ", ph, " | ", N(str(self.rng.randint(0, 99999)), "neg_table"),
                     " | ", N(g.rand_date().strftime("%Y-%m-%d %H:%M"), "neg_iso_ts"), " |\n"])
        return doc, "md_table"

    def chat(self) -> tuple[Doc, str]:
        g = self.g
        doc = Doc()
        for _ in range(self.rng.randint(2, 5)):
            fk = g.faker()
            d = g.rand_date()
            doc.add(f"[{d.strftime('%H:%M')}] {norm_label(fk.first_name(), keep_unicode=True) or 'anon'}: ")
            x = self.rng.random()
            if x < 0.3:
                doc.add([self.rng.choice(["ping me at ", "my mail is ", "send it to ", "mail: ", ""]), *g.email_variant()[0]])
            elif x < 0.6:
                frag, _ = g.phone_variant()
                doc.add([self.rng.choice(["", "or ", "whatsapp ", "my number: "])] + frag)
            elif x < 0.9:
                frag, _ = g.negative()
                doc.add(frag)
            else:
                doc.add(fk.sentence())
            doc.add("\n")
        return doc, "chat"

    # ---- shapes people paste: phones named by a key or column, or recognisable by their range

    PHONE_KEYS = ["phone", "Phone", "phone_number", "phoneNumber", "MobilePhone", "mobile", "tel", "fax", "Telefon",
                  "telefono", "téléphone", "電話", "电话", "携帯", "전화", "телефон", "cell", "msisdn", "contact_phone",
                  "HomePhone", "Telefonnummer", "whatsapp", "טלפון", "هاتف"]
    KV_NEG = [("id", "order_id"), ("customer_id", "order_id"), ("created", "epoch"), ("ts", "epoch"), ("count", "measure"),
              ("size", "measure"), ("amount", "price"), ("ip", "ipv4")]

    def phone_of(self, regions: list[str] | None = None, types=None) -> tuple[str, pn.PhoneNumber]:
        """A valid number of one of `regions` and, when given, one of `types`."""
        for _ in range(50):
            region, num = self.g.phones.pick(regions)
            if types is None or pn.number_type(num) in types:
                return region, num
        return region, num

    def digits_national(self, num: pn.PhoneNumber) -> str:
        """The national format without separators, when that still parses as the same valid
        number (else the national format as it is)."""
        nat = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
        d = "".join(c for c in nat if c.isdigit())
        region = pn.region_code_for_number(num)
        try:
            if pn.is_valid_number(pn.parse(d, region)):
                return d
        except pn.NumberParseException:
            pass
        return nat

    def kv_value(self, region: str, num: pn.PhoneNumber) -> str:
        nat = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
        return self.choice([self.digits_national(num), self.digits_national(num), nat])

    def choice(self, xs):
        return self.rng.choice(xs)

    def pasted_kv(self, doc: Doc) -> None:
        """`phone_number: "1800121746"`, `MobilePhone=0619861964`, `sms.send to=…` lines."""
        g = self.g
        style = self.choice(['{k}: "{v}"', "{k}={v}", '"{k}": "{v}"', "{k}: {v}", "{k} = {v}"])
        for _ in range(self.rng.randint(2, 5)):
            if self.rng.random() < 0.55:
                region, num = self.phone_of()
                v = self.kv_value(region, num)
                k = self.choice(self.PHONE_KEYS)
                if self.rng.random() < 0.15:
                    k, style1 = "sms.send to", "{k}={v}"
                else:
                    style1 = style
                a, b = style1.split("{v}")
                doc.add([a.replace("{k}", k), P("PHONE", v, "phone_key_value", region), b, "\n"])
            else:
                k, cat = self.choice(self.KV_NEG)
                frag = getattr(g, "neg_" + cat)()
                vals = [x for x in frag if isinstance(x, N)]
                a, b = style.split("{v}")
                doc.add([a.replace("{k}", k), vals[-1], b, "\n"])

    def pasted_table(self, doc: Doc) -> None:
        """A CSV/TSV/Markdown export whose header names the phone column; other numeric columns
        (ids, epochs, counts) stay numbers."""
        g = self.g
        head = self.choice(["phone", "Phone", "MobilePhone", "phone_number", "Telefon", "Telefonnummer", "電話番号",
                            "手机", "tel", "Mobile", "Fax", "телефон"])
        md = self.rng.random() < 0.35
        sep = " | " if md else self.choice([",", ";", "\t"])
        cols = ["id", "name", head, "created", "visits"]
        if md:
            doc.add("| " + sep.join(cols) + " |\n|" + "---|" * len(cols) + "\n")
        else:
            doc.add(sep.join(cols) + "\n")
        for _ in range(self.rng.randint(2, 6)):
            fk = g.faker()
            region, num = self.phone_of()
            v = self.kv_value(region, num) if self.rng.random() < 0.8 else pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL)
            row = [N(str(self.rng.randint(10 ** 9, 10 ** 10 - 1)), "neg_order_id"), sep, fk.name().replace(sep.strip() or sep, " "), sep,
                   P("PHONE", v, "phone_table_named", region), sep,
                   N(str(int(g.rand_date().timestamp())), "neg_epoch"), sep, N(str(self.rng.randint(10 ** 6, 10 ** 10)), "neg_measure")]
            doc.add((["| "] if md else []) + row + ([" |"] if md else []) + ["\n"])

    def pasted_glued(self, doc: Doc) -> None:
        """Mobile numbers glued to CJK text; Japanese 090 mobiles; local prose with a local call word."""
        g = self.g
        x = self.rng.random()
        if x < 0.5:
            region = self.choice(["CN", "CN", "JP", "TW", "KR"])
            _, num = self.phone_of([region], {pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE_OR_MOBILE})
            pre, post = {"CN": ("请拨打", "咨询"), "JP": ("携帯", "までご連絡ください"), "TW": ("手機", "聯絡"),
                         "KR": ("휴대폰", "로 연락주세요")}[region]
            doc.add([g.faker({"CN": "zh_CN", "JP": "ja_JP", "TW": "zh_TW", "KR": "ko_KR"}[region]).sentence(), pre,
                     P("PHONE", self.digits_national(num), "phone_cjk_national", region), post])
            return
        region = self.choice(["TR", "IL", "AU", "IE", "IN", "DE", "GB", "JP", "TR", "IL"])
        types = {pn.PhoneNumberType.TOLL_FREE} if region in ("AU", "IE", "IN", "DE", "GB") else None
        _, num = self.phone_of([region], types)
        nat = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
        lead = {
            "TR": ["Randevu için telefon ", "Bize ulaşın: ", "Numaramız ", "Cep telefonu: "],
            "IL": ["התקשרו אלינו ", "טלפון: ", "חייגו "],
            "AU": ["Freecall ", "Call us on ", "Phone "], "IE": ["Freephone ", "Call ", "Tel "],
            "IN": ["Toll free ", "Call ", "Helpline "], "DE": ["Kostenlose Hotline ", "Rufen Sie an: ", "Telefon "],
            "GB": ["Freephone ", "Call ", "Tel "], "JP": ["お電話 ", "電話番号 ", "携帯 "],
        }[region]
        v = nat if self.rng.random() < 0.6 else self.digits_national(num)
        loc = {"TR": "tr_TR", "IL": "he_IL", "AU": "en_AU", "IE": "en_IE", "IN": "en_IN", "DE": "de_DE", "GB": "en_GB",
               "JP": "ja_JP"}[region]
        doc.add([g.faker(loc).sentence(), " ", self.choice(lead), P("PHONE", v, "phone_local_prose", region), ". "])
        if self.rng.random() < 0.5:
            doc.add(g.negative(exclude=("table",))[0])

    def pasted_intl(self, doc: Doc) -> None:
        """`+90(346)591-8813x5165`, `+49(4)1509458275`, `+44(0)306 9990505`, `071 123 4513 ext. 7635`."""
        g = self.g
        region, num = self.phone_of(["TR", "DE", "GB", "FR", "IT", "NL", "AT", "CH", "IN", "BR", "MX", "ES"])
        intl = pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL)
        cc, *groups = intl.split(" ")
        ext = self.choice(["", "", f"x{self.rng.randint(1, 9999)}", f" ext. {self.rng.randint(1, 9999)}"])
        if len(groups) >= 2 and self.rng.random() < 0.6:
            v = f"{cc}({groups[0]}){'-'.join(groups[1:]) if self.rng.random() < 0.5 else ''.join(groups[1:])}{ext}"
        elif region in ("GB", "DE", "AT", "CH", "NL") and self.rng.random() < 0.5:
            v = f"{cc}(0){' '.join(groups)}{ext}"
        else:
            nat = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
            v = nat + (ext or f" ext. {self.rng.randint(1, 9999)}")
            doc.add([self.choice(["Tel: ", "Phone ", "call ", "Telefon: "]), P("PHONE", v, "phone_paren_ext", region), "\n"])
            return
        doc.add([self.choice(["", "Phone: ", "Office ", "→ ", "Kontakt "]), P("PHONE", v, "phone_paren_ext", region), "\n"])

    def pasted(self) -> tuple[Doc, str]:
        doc = Doc()
        getattr(self, self.choice(["pasted_kv", "pasted_table", "pasted_glued", "pasted_intl"]))(doc)
        if self.rng.random() < 0.5:
            doc.add("\n")
            doc.add(self.g.neg_measure())
        return doc, "pasted"

    def negatives_only(self) -> tuple[Doc, str]:
        g = self.g
        doc = Doc()
        fk = g.faker()
        kinds = self.rng.choice(["email", "phone", "mixed"])
        for _ in range(self.rng.randint(2, 5)):
            if kinds == "email":
                cat = self.rng.choice(EMAIL_LOOKALIKE_NEGS)
            else:
                cat = self.rng.choice(NEG_CATS)
            doc.add(getattr(g, "neg_" + cat)())
            doc.add(self.rng.choice(["\n", "; ", " ", f" {fk.sentence()}\n"]))
        return doc, "negatives_only"


TEMPLATES = [
    ("sentence", 0.40), ("log", 0.08), ("json_crm", 0.12), ("json_ticket", 0.07), ("email_body", 0.06),
    ("ticket_text", 0.05), ("csv", 0.04), ("md_table", 0.03), ("chat", 0.07), ("negatives_only", 0.08),
    ("pasted", 0.12),
]


EXT_RE = re.compile(r"(?:,? ?(?:ext\.?|Ext\.|extension|Durchwahl|x) ?| ?#)\d+$")


def check_phone(value: str, region: str) -> None:
    """Every gold phone is valid for its region by libphonenumber's rules (by construction; this
    guards the formatting code)."""
    v = "".join(str(unicodedata.digit(c)) if c.isdigit() else "+" if c == "＋" else c for c in value)
    v = EXT_RE.sub("", v)
    if v.startswith("00"):  # international call prefix used in most of the world
        v = "+" + v[2:]
    if v.isdigit() and not v.startswith("0"):  # wa.me digits (E.164 without the plus), or national digits
        if pn.is_valid_number(pn.parse(v, region)):
            return
        v = "+" + v
    n = pn.parse(v, region)
    assert pn.is_valid_number(n), (value, region)


def check(text: str, doc: Doc) -> None:
    b = text.encode("utf-8")
    assert len(b) == doc.nbytes
    prev_end = -1
    for s in doc.spans:
        assert 0 <= s["start"] < s["end"] <= len(b)
        assert s["start"] >= prev_end, "gold spans overlap"
        prev_end = s["end"]
        v = b[s["start"]:s["end"]].decode("utf-8")  # on char boundaries
        if s["kind"] == "PHONE":
            check_phone(v, s["region"])


def generate(n_lines: int, seed: int):
    g = Gen(seed)
    docs = Docs(g)
    names = [t for t, _ in TEMPLATES]
    weights = [w for _, w in TEMPLATES]
    for _ in range(n_lines):
        name = g.rng.choices(names, weights)[0]
        doc, src = getattr(docs, name)()
        text = doc.text()
        check(text, doc)
        yield {"text": text, "spans": doc.spans, "negatives": doc.negs, "src": src}


PINNED = {"faker": "40.54.0", "phonenumbers": "9.0.43"}


def warn_on_other_versions() -> None:
    import faker

    have = {"faker": faker.VERSION, "phonenumbers": pn.__version__}
    for name, want in PINNED.items():
        if have[name] != want:
            print(f"warning: {name} {have[name]} is not the pinned {want} (tests/data/requirements.txt): "
                  "the output will differ from the committed corpus", file=sys.stderr)


def main() -> None:
    warn_on_other_versions()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("corpus.jsonl")))
    ap.add_argument("--lines", type=int, default=N_LINES)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    stats: dict[str, int] = {}
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for rec in generate(args.lines, args.seed):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            stats["lines"] = stats.get("lines", 0) + 1
            for s in rec["spans"]:
                stats[s["kind"]] = stats.get(s["kind"], 0) + 1
            stats["negatives"] = stats.get("negatives", 0) + len(rec["negatives"])
            if not rec["spans"]:
                stats["lines_without_pii"] = stats.get("lines_without_pii", 0) + 1
    print(json.dumps(stats), file=sys.stderr)


if __name__ == "__main__":
    main()
