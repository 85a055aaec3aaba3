#!/usr/bin/env python3
"""Generates the benchmark inputs `benches/data/sparse.json` and `benches/data/dense.json`.

Run with:  python3 benches/data/gen_bench.py
Same pinned environment as tests/data/gen_corpus.py (Python 3.11.7, faker==40.54.0,
phonenumbers==9.0.43; see tests/data/requirements.txt), whose generators it reuses.

Each file is one JSON-RPC response carrying an MCP tool result of about 1 MB, shaped the way the
MCP spec recommends for structured output: `result.structuredContent` holds the records and
`result.content[0].text` holds the same object serialized as JSON text (for older clients).
- sparse.json: support tickets with long descriptions, ids, timestamps, amounts, versions, IPs,
  and one email or phone number per ~2 KB of JSON.
- dense.json: a contact list, one email or phone number per ~100 bytes of JSON.
All values are generated (Faker, reserved domains, libphonenumber example numbers); no real data.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "data"))

import gen_corpus as gc  # noqa: E402

TARGET = 1_000_000


def flat(frag) -> str:
    out = []
    for p in frag:
        if isinstance(p, list):
            out.append(flat(p))
        elif isinstance(p, (gc.P, gc.N)):
            out.append(p.value)
        else:
            out.append(p)
    return "".join(out)


def count_pii(frag) -> int:
    n = 0
    for p in frag:
        if isinstance(p, list):
            n += count_pii(p)
        elif isinstance(p, gc.P):
            n += 1
    return n


def tool_result(obj: dict, summary_key: str) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "content": [{"type": "text", "text": json.dumps(obj, ensure_ascii=False)}],
            "structuredContent": obj,
            "isError": False,
        },
    }


def size(v) -> int:
    return len(json.dumps(v, ensure_ascii=False).encode("utf-8"))


def sparse(g: gc.Gen) -> tuple[dict, int]:
    rng = g.rng
    tickets = []
    pii = 0
    # Each ticket's JSON appears twice (structuredContent and the text copy), so grow until the
    # whole result is about TARGET bytes.
    while True:
        fk = g.faker()
        desc = []
        while sum(len(x.encode()) for x in desc) < 1350:
            desc.append(fk.paragraph(nb_sentences=rng.randint(2, 5)))
            if rng.random() < 0.6:
                desc.append(flat(g.negative()[0]) + ".")
        if rng.random() < 0.5:
            frag = g.email_variant()[0]
        else:
            frag = g.phone_variant()[0]
        pii += count_pii(frag)
        desc.insert(rng.randint(0, len(desc)), flat(frag))
        d = g.rand_date()
        tickets.append({
            "id": rng.randint(100000, 9999999),
            "external_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "subject": fk.sentence(),
            "status": rng.choice(["open", "pending", "hold", "solved", "closed"]),
            "priority": rng.choice(["low", "normal", "high", "urgent"]),
            "description": " ".join(desc),
            "created_at": d.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": int(d.timestamp()) + rng.randint(0, 10 ** 6),
            "assignee_id": rng.randint(10 ** 9, 10 ** 10),
            "group": fk.company(),
            "tags": [fk.word() for _ in range(rng.randint(0, 4))],
            "metrics": {"reopens": rng.randint(0, 5), "replies": rng.randint(0, 40),
                        "first_reply_min": round(rng.uniform(0, 3000), 1), "csat": rng.choice([None, 1, 2, 3, 4, 5])},
            "client": {"app": "helpdesk-web", "version": f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                       "ip": f"198.51.100.{rng.randint(1, 254)}"},
        })
        obj = {"tickets": tickets, "count": len(tickets), "next_page": None}
        if len(tickets) % 20 == 0 and size(tool_result(obj, "tickets")) >= TARGET:
            return tool_result(obj, "tickets"), pii * 2


def dense(g: gc.Gen) -> tuple[dict, int]:
    rng = g.rng
    contacts = []
    pii = 0
    while True:
        fk = g.faker()
        email = g.email_plain().value
        frag, _ = g.phone_variant(bare=True)
        phone = [p for p in frag if isinstance(p, gc.P)][0].value
        pii += 2
        contacts.append({"id": rng.randint(1, 9999999), "name": fk.name(), "email": email, "phone": phone,
                         "company": fk.company(), "updated": g.rand_date().strftime("%Y-%m-%d")})
        obj = {"contacts": contacts, "total": len(contacts)}
        if len(contacts) % 50 == 0 and size(tool_result(obj, "contacts")) >= TARGET:
            return tool_result(obj, "contacts"), pii * 2


def main() -> None:
    g = gc.Gen(gc.SEED + 1)
    for name, fn in (("sparse.json", sparse), ("dense.json", dense)):
        v, pii = fn(g)
        data = json.dumps(v, ensure_ascii=False).encode("utf-8")
        (HERE / name).write_bytes(data + b"\n")
        print(f"{name}: {len(data)} bytes, {pii} PII values, one per {len(data) / pii:.0f} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
