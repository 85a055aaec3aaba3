#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (committed; rerun after changing this).

Realistic MCP traffic with invented data only: example.org/example.com addresses, 555 numbers.
Inputs of `response_rewrite` start with a mode byte (see fuzz_targets/response_rewrite.rs):
0 = raw JSON body, 1 = raw SSE stream (then two cut bytes), 2-4 = generated from the bytes
that follow, 5 = raw body through the whole PiiLayer (then a content-type byte).
"""
import hashlib
import json
import os
import random
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
rng = random.Random(20240521)

EMAIL = "ana.lima@example.org"
EMAIL2 = "joao.silva@example.com"
PHONE = "+1 202-555-0143"
PHONE2 = "(202) 555-0199"


def j(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


MESSAGES = [
    {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": f"Ana Lima <{EMAIL}>, {PHONE}"}], "isError": False}},
    {"jsonrpc": "2.0", "id": 2, "result": {"content": [{"type": "text", "text": "see [EMAIL_1]"}],
                                           "structuredContent": {"email": EMAIL2, "phone": 2025550143}}},
    {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
                                                       {"type": "resource", "resource": {"uri": "file:///notes.txt", "text": f"call {PHONE2}"}},
                                                       {"type": "resource", "resource": {"uri": "file:///a.bin", "blob": "AAAA"}}]}},
    {"jsonrpc": "2.0", "id": 4, "error": {"code": -32000, "message": f"no such user {EMAIL}", "data": {"contact": PHONE}}},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "tok-1", "progress": 1, "total": 3, "message": f"mailing {EMAIL}"}},
    {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "logger": "crm", "data": {"to": EMAIL2}}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": f"{EMAIL} left"}},
    {"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": f"Summarize mail from {EMAIL}"}}],
        "_meta": {"progressToken": 5}, "maxTokens": 100}},
    {"jsonrpc": "2.0", "id": "srv-2", "method": "elicitation/create", "params": {"message": f"Confirm {PHONE}?",
                                                                                "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}},
    {"jsonrpc": "2.0", "id": 9, "method": "roots/list"},
    {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "send", "arguments": {"to": "[EMAIL_1]", "body": "re [PHONE_1]"}}},
]
TEXTS = [
    j(MESSAGES[0]),
    j([MESSAGES[0], MESSAGES[4], MESSAGES[7]]),
    '{"jsonrpc":"2.0","id":6,"result":{"content":[{"type":"text","text":"ana\\u0040example.org \\u002b1 202 555 0143"}]}}',
    '{"jsonrpc":"2.0","id":7,"result":{"n":12345678901234567890123,"f":1.0e5,"x":NaN,"y":-Infinity,"s":"\\ud83d"}}',
    '{"text":"ana@example.org","text":"nothing"}',
    '\ufeff{"jsonrpc":"2.0","id":8,"result":{}}',
    '[1, "caf\\u00e9", null, true, {"a": [ ]}]',
]
for m in MESSAGES:
    TEXTS.append(j(m))


def sse(msgs, eol="\n"):
    out = []
    for i, m in enumerate(msgs):
        out.append(f"id: {i}{eol}event: message{eol}data: {j(m)}{eol}{eol}")
    return ": keep-alive" + eol + eol + "".join(out)


SSE = [
    sse(MESSAGES[:2]),
    sse(MESSAGES[4:8], "\r\n"),
    "retry: 3000\n\ndata: " + j(MESSAGES[3]) + "\n\n",
    "data: {\"jsonrpc\":\"2.0\",\n" + "data: \"id\":1,\"result\":{\"t\":\"" + EMAIL + "\"}}\n\n",
    ": note for " + EMAIL + "\rid: 3\rdata: " + j(MESSAGES[5]) + "\r\r",
]

DETECT = [
    f"write to {EMAIL} or call {PHONE}",
    "Ana <ana.lima@example.org>, Joao: +44 20 7946 0958; fax 202.555.0143",
    "mailto:x@example.com?cc=y@example.org",
    "+1 ２０２ ５５５ ０１４３ and ١٢٣٤٥٦٧٨٩٠",
    "[EMAIL_1] [PHONE_2] [EMAIL_01] user@[192.0.2.1] zoë@example.org",
    "tel:+4915123456789, (555) 010-0199 x12",
]


def canonical(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def audit_log():
    prev = "0" * 64
    lines = []
    recs = [
        {"type": "policy", "policy_hash": "ab" * 32, "policy": "default = \"deny\"\n", "key_id": "k1"},
        {"type": "decision", "client": "anonymous", "scope": "cd" * 32, "server": "crm", "method": "tools/call", "tool": "send",
         "restored": [{"placeholder": "[EMAIL_1]", "kind": "EMAIL", "origins": ["crm"], "fingerprint": "ef" * 32, "rule_id": "r1", "allowed": True}],
         "decision": "allow", "rule_id": "r1", "policy_hash": "ab" * 32},
        {"type": "exchange", "client": "anonymous", "scope": "cd" * 32, "server": "crm", "method": "tools/call", "outcome": "ok", "duration_ms": 1.5},
    ]
    for seq, r in enumerate(recs, 1):
        r = {"seq": seq, "time": "2024-05-21T10:00:00.000Z", **r, "prev_hash": prev}
        h = hashlib.sha256(canonical(r).encode()).hexdigest()
        r["hash"] = h
        prev = h
        lines.append(j(r))
    return "\n".join(lines) + "\n"


def write(target, items):
    d = os.path.join(ROOT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for i, data in enumerate(items):
        if isinstance(data, str):
            data = data.encode()
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, f"seed-{i:02d}-{name}"), "wb") as f:
            f.write(data)


def randbytes(n):
    return bytes(rng.randrange(256) for _ in range(n))


write("json_parse", TEXTS)
write("response_rewrite",
      [b"\x00" + t.encode() for t in TEXTS]
      + [b"\x01\x07\x00" + s.encode() for s in SSE]
      + [bytes([5, k]) + t.encode() for k, t in enumerate(TEXTS[:4])]
      + [bytes([5, 1]) + SSE[0].encode(), bytes([5, 3]) + f"Error: {EMAIL} not found".encode()]
      + [bytes([m]) + randbytes(n) for m in (2, 3, 4) for n in (64, 256, 1024)])
write("request_restore", [randbytes(n) for n in (32, 128, 512, 1024, 2048, 4096)])
write("detect", DETECT)
log = audit_log()
write("audit_verify", [b"\x00" + log.encode(), b"\x00" + log[:-20].encode(), b"\x00" + (log + "{\"seq\":4}\n").encode()]
      + [b"\x01" + randbytes(n) for n in (16, 64, 256)])
print("seeds written to", ROOT)
