#!/usr/bin/env python3
"""Interop check of the gateway's aggregated endpoint `/mcp` with the official MCP Python SDK client.

    aggregate.py --url http://127.0.0.1:8080/mcp --mail-received FILE --paste-received FILE
                 [--mode auto|session] [--expose all|search] [--customer N]

The gateway behind --url (see scripts/interop/aggregate.sh) serves three Python SDK servers
(scripts/interop/py_crm_mail.py): `crm` (lookup_customer), `mail` and `paste` (both send_email, writing
what they receive to --mail-received / --paste-received), each with 50 filler tools. Its policy lets
EMAIL and PHONE flow from crm to mail/send_email only (`cross_server = "deny"`) and reveals
email.domain, phone.country and same_person.

--mode auto     the SDK default (server/discover, which /mcp answers with -32601, then initialize)
--mode session  `Client(mode="legacy")`: initialize straight away
--expose all    tools/list holds every server's tools, prefixed `<server>__`, and the gateway's own
--expose search tools/list holds only the gateway's tools; upstream tools are called through call_tool
--customer N    the crm record used (another N per run keeps each run's delivery apart)

The customer's data is generated (py_crm_mail.customer); the script's own output must hold only
placeholders, which the last check verifies. Prints PASS/FAIL lines and `RESULT ...: N passed, N failed`;
exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import phonenumbers

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from py_crm_mail import customer  # noqa: E402
from python_client import Report, dump, guarded, text_of  # noqa: E402

MODES = {"auto": "auto", "session": "legacy"}
OWN = {"search_tools", "check_flow", "describe_placeholders", "call_tool"}
META_SERVER = "mcp-pii-gateway/server"


class Tee(io.TextIOBase):
    """stdout that also keeps what was written, so the script can check its own output."""

    def __init__(self, out: Any) -> None:
        self.out, self.kept = out, io.StringIO()

    def write(self, s: str) -> int:
        self.kept.write(s)
        return self.out.write(s)

    def flush(self) -> None:
        self.out.flush()


def received(path: str) -> list[dict[str, Any]]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


async def list_all_tools(client: Client) -> list[types.Tool]:
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


async def run(args: argparse.Namespace, report: Report) -> None:
    person = customer(args.customer)
    search_mode = args.expose == "search"
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(args.timeout, read=args.timeout))
    async with http, Client(streamable_http_client(args.url, http_client=http), mode=MODES[args.mode]) as client:
        print(f"INFO connected: mode={args.mode} protocol={client.protocol_version} expose={args.expose}")
        report.check("/mcp is session-based (auto mode falls back from server/discover to initialize)",
                     client.session.discover_result is None, f"discover_result {client.session.discover_result!r}")

        async def call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
            """An upstream tool: directly, or through call_tool with expose = "search"."""
            if search_mode and name not in OWN:
                return await client.call_tool("call_tool", {"name": name, "arguments": arguments})
            return await client.call_tool(name, arguments)

        tools = await list_all_tools(client)
        names = [t.name for t in tools]
        by_name = {t.name: t for t in tools}
        print(f"INFO tools/list: {len(names)} tools")
        if search_mode:
            report.check("tools/list holds only the gateway's tools and call_tool", set(names) == OWN,
                         f"{sorted(names)}")
        else:
            wanted = ["crm__lookup_customer", "mail__send_email", "paste__send_email", "search_tools", "check_flow",
                      "describe_placeholders"]
            missing = [n for n in wanted if n not in by_name]
            report.check("tools/list holds the prefixed upstream tools and the gateway's", not missing,
                         f"missing {missing}")
            report.check("tools/list holds 100+ tools", len(names) >= 100, f"{len(names)} tools")
            report.check("call_tool is listed only with expose = \"search\"", "call_tool" not in by_name, "listed")
            wrong = [
                t.name for t in tools
                if t.name not in OWN and (t.meta or {}).get(META_SERVER) != t.name.split("__", 1)[0]
            ]
            report.check(f"each upstream tool's _meta names its server ({META_SERVER})", not wrong, f"{wrong[:5]}")

        ph: dict[str, str] = {}

        async def lookup() -> None:
            result = await call("crm__lookup_customer", {"id": args.customer})
            raw = dump(result)
            report.check("lookup_customer result holds no raw email or phone",
                         person["email"] not in raw and person["phone"] not in raw, "raw value in result")
            sc = result.structured_content or {}
            email_ph, phone_ph = str(sc.get("email", "")), str(sc.get("phone", ""))
            ok = bool(re.fullmatch(r"\[EMAIL_[1-9][0-9]*\]", email_ph)) and bool(
                re.fullmatch(r"\[PHONE_[1-9][0-9]*\]", phone_ph))
            if report.check("lookup_customer gives [EMAIL_n] and [PHONE_n] in structured content", ok,
                            f"structured {sc!r}"):
                ph["email"], ph["phone"] = email_ph, phone_ph
            print(f"INFO lookup_customer: {json.dumps(sc)}")

        await guarded(report, "lookup_customer", lookup)
        if not ph:
            report.check("placeholders from crm", False, "no placeholders; later checks skipped")
            return

        async def check_flow() -> None:
            ok = await client.call_tool("check_flow", {"tool": "mail__send_email", "arguments": {"to": ph["email"]}})
            sc = ok.structured_content or {}
            print(f"INFO check_flow mail: {json.dumps(sc)}")
            rules = [p.get("rule_id") for p in sc.get("placeholders", [])]
            report.check("check_flow: mail__send_email allowed by rule crm-to-mail",
                         sc.get("allowed") is True and sc.get("rule_id") == "crm-to-mail" and rules == ["crm-to-mail"],
                         json.dumps(sc))
            no = await client.call_tool("check_flow", {"tool": "paste__send_email", "arguments": {"to": ph["email"]}})
            sc = no.structured_content or {}
            print(f"INFO check_flow paste: {json.dumps(sc)}")
            rules = [(p.get("allowed"), p.get("rule_id")) for p in sc.get("placeholders", [])]
            deny = "default:cross_server=deny"  # no flow reaches paste: the policy's default decides
            report.check("check_flow: paste__send_email not allowed, by the default rule, with a reason",
                         sc.get("allowed") is False and sc.get("rule_id") == deny and rules == [(False, deny)]
                         and ph["email"] in str(sc.get("reason")), json.dumps(sc))

        # Before any delivery: mail's answer holds the address too, which makes mail one of its origins.
        await guarded(report, "check_flow", check_flow)

        async def deliver_mail() -> None:
            before = len(received(args.mail_received))
            body = f"Call me back on {ph['phone']}."
            result = await call("mail__send_email", {"to": ph["email"], "subject": "Order", "body": body})
            report.check("send_email through mail succeeds", not result.is_error, text_of(result))
            got = received(args.mail_received)[before:]
            want = {"to": person["email"], "subject": "Order", "body": f"Call me back on {person['phone']}."}
            as_expected = [{k: g.get(k) == v for k, v in want.items()} for g in got]  # never the values
            report.check("mail received the real address and phone in place of the placeholders", got == [want],
                         f"{len(got)} message(s); fields as expected: {as_expected}")
            report.check("send_email's answer to the client is tokenized again",
                         text_of(result) == f"queued for {ph['email']}", text_of(result))

        await guarded(report, "send_email through mail", deliver_mail)

        async def refuse_paste() -> None:
            before = len(received(args.paste_received))
            try:
                result = await call("paste__send_email", {"to": ph["email"], "body": "hi"})
                refused, said = bool(result.is_error), text_of(result)
            except MCPError as exc:
                refused, said = True, f"{exc.error.message} {json.dumps(exc.error.data)}"
            print(f"INFO paste__send_email refused: {said}")
            report.check("send_email through paste is refused", refused, said)
            report.check("the refusal names the placeholder and not the value",
                         ph["email"] in said and person["email"] not in said, said)
            report.check("paste received nothing", len(received(args.paste_received)) == before,
                         f"{len(received(args.paste_received)) - before} message(s)")

        await guarded(report, "send_email through paste", refuse_paste)

        async def describe() -> None:
            r = await client.call_tool("describe_placeholders", {"placeholders": [ph["email"], ph["phone"]]})
            sc = r.structured_content or {}
            print(f"INFO describe_placeholders: {json.dumps(sc)}")
            facts = {f.get("placeholder"): f for f in sc.get("placeholders", [])}
            email_f, phone_f = facts.get(ph["email"], {}), facts.get(ph["phone"], {})
            domain = person["email"].rsplit("@", 1)[1]
            report.check("describe_placeholders gives the email's domain", email_f.get("domain") == domain,
                         json.dumps(email_f))
            country = phonenumbers.region_code_for_number(phonenumbers.parse(person["phone"]))
            report.check("describe_placeholders gives the phone's country", phone_f.get("country") == country,
                         json.dumps(phone_f))
            report.check("describe_placeholders holds no value",
                         person["email"] not in dump(r) and person["phone"] not in dump(r), "raw value")

        await guarded(report, "describe_placeholders", describe)

        async def search() -> None:
            r = await client.call_tool("search_tools", {"query": "send an email", "limit": 5})
            sc = r.structured_content or {}
            hits = [h.get("name") for h in sc.get("tools", [])]
            print(f"INFO search_tools('send an email') among {sc.get('total')}: {hits}")
            report.check("search_tools searches 100+ tools", (sc.get("total") or 0) >= 100, f"total {sc.get('total')}")
            # paste__send_email is the same tool on another server: equal score, after it in catalog order.
            report.check("search_tools('send an email') ranks mail__send_email first, paste__send_email next",
                         hits[:2] == ["mail__send_email", "paste__send_email"], f"ranking {hits}")

        await guarded(report, "search_tools", search)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=sorted(MODES), default="auto")
    parser.add_argument("--expose", choices=["all", "search"], default="all")
    parser.add_argument("--mail-received", required=True)
    parser.add_argument("--paste-received", required=True)
    parser.add_argument("--customer", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    tee = Tee(sys.stdout)
    sys.stdout = tee
    report = Report()
    label = f"aggregate {args.mode} expose={args.expose} {args.url}"
    try:
        asyncio.run(run(args, report))
    except Exception as exc:  # connect/handshake failures
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        report.check("connect", False, f"{type(exc).__name__}: {exc}")
    person = customer(args.customer)
    printed = tee.kept.getvalue()
    leaked = [k for k in ("email", "phone") if person[k] in printed]
    report.check("this script's output holds only placeholders", not leaked, f"raw {leaked} printed")
    print(f"RESULT {label}: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
