#!/usr/bin/env python3
"""Interop check with the official MCP Python SDK client, directly against an upstream or through the gateway.

    python_client.py --url http://127.0.0.1:8080/servers/everything/mcp [--mode auto|session|stateless]
                     [--expect-tokenized] [--expect-era modern|legacy] [--header 'Name: value']... [--seed N]

--mode auto       the SDK's default: `server/discover` (2026-07-28, stateless), falling back to `initialize`
                  when the server is session-based (e.g. server-everything)
--mode session    `Client(mode="legacy")`: initialize + Mcp-Session-Id + GET stream (2025-11-25)
--mode stateless  `Client(mode="2026-07-28")`: stateless only, no fallback
--expect-tokenized  the URL is the gateway: PII in results must come back as stable placeholders
                  ([EMAIL_1], [PHONE_1]) and placeholders sent back must reach the server restored.
                  Without it (direct to an upstream) results must echo the raw values.

Test data is generated (Faker names on example.org/.com, phonenumbers example numbers): never a real person's.
Prints one line per check (PASS/FAIL/SKIP) and a summary `N passed, N failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import mcp_types as types
import phonenumbers
from faker import Faker

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

PLACEHOLDER = re.compile(r"\[(?P<kind>[A-Z][A-Z0-9_]*)_(?P<n>[1-9][0-9]*)\]")
MODES = {"auto": "auto", "session": "legacy", "stateless": "2026-07-28"}


def ascii_fold(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


def generate_people(seed: int, count: int) -> list[tuple[str, str]]:
    """(email, phone) pairs: Faker names on reserved example domains, libphonenumber example mobile numbers."""
    fake = Faker(["pt_BR", "en_GB", "de_DE"])
    fake.seed_instance(seed)
    regions = ["BR", "GB", "DE", "US", "FR", "PT"]
    out = []
    for i in range(count):
        local = ascii_fold(f"{fake.first_name()}.{fake.last_name()}").lower().replace(" ", "")
        local = re.sub(r"[^a-z0-9.]", "", local).strip(".") or f"user{i}"
        email = f"{local}@{['example.org', 'example.com', 'example.net'][i % 3]}"
        number = phonenumbers.example_number_for_type(
            regions[(seed + i) % len(regions)], phonenumbers.PhoneNumberType.MOBILE
        )
        phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        out.append((email, phone))
    return out


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}")
        return ok

    def skip(self, name: str, why: str) -> None:
        print(f"SKIP {name}: {why}")


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def dump(result: Any) -> str:
    return result.model_dump_json(by_alias=True) if hasattr(result, "model_dump_json") else json.dumps(result)


async def guarded(report: Report, name: str, fn: Callable[[], Awaitable[None]]) -> None:
    try:
        await fn()
    except Exception as exc:  # one broken step must not hide the others
        report.check(name, False, f"{type(exc).__name__}: {exc}")


async def run(args: argparse.Namespace) -> Report:
    report = Report()
    (email, phone), (email2, _phone2) = generate_people(args.seed, 2)
    tokenized = args.expect_tokenized
    elicitations: list[types.ElicitRequestParams] = []
    elicit_answer: dict[str, Any] = {}

    async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        elicitations.append(params)
        return types.ElicitResult(action="accept", content=dict(elicit_answer))

    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(args.timeout, read=args.timeout))
    transport = streamable_http_client(args.url, http_client=http)
    async with http, Client(transport, mode=MODES[args.mode], elicitation_callback=on_elicit) as client:
        era = "modern" if client.session.discover_result is not None else "legacy"
        print(f"INFO connected: mode={args.mode} protocol={client.protocol_version} era={era}")
        if args.expect_era:
            report.check(f"negotiated era is {args.expect_era}", era == args.expect_era, f"got {era}")

        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        report.check("tools/list includes echo", "echo" in names, f"tools: {sorted(names)}")
        if tokenized:
            report.check(
                "tools/list carries no raw test PII",
                email not in dump(tools) and phone not in dump(tools),
                "raw value in tool list",
            )

        message = f"Contact {email} or call {phone}."
        first: dict[str, str] = {}

        async def echo_pii() -> None:
            result = await client.call_tool("echo", {"message": message})
            text, raw = text_of(result), dump(result)
            if not tokenized:
                report.check("echo returns the raw message (direct)", text == f"Echo: {message}", repr(text))
                return
            report.check("echo result leaks no raw email/phone", email not in raw and phone not in raw, raw[:300])
            m = re.fullmatch(r"Echo: Contact (\[EMAIL_[1-9][0-9]*\]) or call (\[PHONE_[1-9][0-9]*\])\.", text)
            if report.check("echo result has [EMAIL_n] and [PHONE_n] in place", m is not None, repr(text)):
                assert m is not None
                first["email"], first["phone"], first["text"] = m.group(1), m.group(2), text

        await guarded(report, "echo PII", echo_pii)

        async def echo_placeholders_back() -> None:
            if not tokenized:
                literal = "Echo: [EMAIL_1] stays literal"
                result = await client.call_tool("echo", {"message": "[EMAIL_1] stays literal"})
                report.check("echo of placeholder-like text is literal (direct)", text_of(result) == literal,
                             repr(text_of(result)))
                return
            if not first:
                report.skip("placeholder round trip", "no placeholders from the first echo")
                return
            # Restored toward the server, echoed as the real values, tokenized again: same placeholders.
            back = f"Contact {first['email']} or call {first['phone']}."
            result = await client.call_tool("echo", {"message": back})
            report.check("echoing placeholders returns the same placeholders", text_of(result) == first["text"],
                         f"{text_of(result)!r} != {first['text']!r}")
            again = await client.call_tool("echo", {"message": email})
            report.check("same email again gets the same placeholder", text_of(again) == f"Echo: {first['email']}",
                         repr(text_of(again)))
            other = await client.call_tool("echo", {"message": email2})
            m = PLACEHOLDER.search(text_of(other))
            report.check(
                "a different email gets a different placeholder",
                m is not None and m.group(0) != first["email"] and email2 not in dump(other),
                repr(text_of(other)),
            )

        await guarded(report, "placeholder round trip", echo_placeholders_back)

        async def unknown_placeholder() -> None:
            if not tokenized:
                report.skip("unknown placeholder is rejected", "direct mode")
                return
            bogus = "[EMAIL_987654]"
            try:
                result = await client.call_tool("echo", {"message": f"mail {bogus}"})
            except MCPError as exc:
                report.check("unknown placeholder is rejected with a JSON-RPC error naming it",
                             bogus in str(exc.error.message) + json.dumps(exc.error.data), str(exc.error.message))
                return
            report.check("unknown placeholder is rejected with a JSON-RPC error naming it", False,
                         f"request was forwarded: {text_of(result)!r}")

        await guarded(report, "unknown placeholder", unknown_placeholder)

        async def elicitation_round_trip() -> None:
            if "send_report" not in names:
                report.skip("elicitation round trip (send_report)", "upstream has no send_report tool")
                return
            answer = first.get("email", email) if tokenized else email
            elicit_answer["email"] = answer
            result = await client.call_tool("send_report", {"topic": "q3"})
            report.check("elicitation request reached the client", len(elicitations) >= 1, "no elicitation")
            report.check("send_report result", text_of(result) == f"report on q3 sent to {answer}",
                         f"{text_of(result)!r}, expected address {answer!r}")
            if tokenized:
                report.check("send_report result leaks no raw email", email not in dump(result), dump(result)[:300])

        await guarded(report, "elicitation round trip", elicitation_round_trip)

        async def elicitation_with_pii() -> None:
            if "confirm_contact" not in names:
                report.skip("elicitation message carrying an address", "upstream has no confirm_contact tool")
                return
            sent = first.get("email", email) if tokenized else email
            elicit_answer.clear()
            elicit_answer["confirm"] = True
            before = len(elicitations)
            result = await client.call_tool("confirm_contact", {"email": sent})
            asked = elicitations[before].message if len(elicitations) > before else None
            report.check("elicitation message shows the address as the client knows it",
                         asked == f"Send the report to {sent}?", repr(asked))
            report.check("confirm_contact result", text_of(result) == f"confirmed {sent}", repr(text_of(result)))

        await guarded(report, "elicitation message carrying an address", elicitation_with_pii)

        # What the client sends: the placeholder through the gateway, the raw address directly. Stateless
        # clients mirror these values into headers (Mcp-Param-Email, Mcp-Name) that the server compares with
        # the body, so the gateway must restore the headers too or the server answers -32020.
        sent = first.get("email", email) if tokenized else email

        async def param_header_tool() -> None:
            if "lookup_contact" not in names:
                report.skip("tool argument mirrored in Mcp-Param-Email", "upstream has no lookup_contact tool")
                return
            result = await client.call_tool("lookup_contact", {"email": sent})
            report.check("tool argument mirrored in Mcp-Param-Email", text_of(result) == f"found {sent}",
                         f"{text_of(result)!r} (is_error={result.is_error})")

        await guarded(report, "tool argument mirrored in Mcp-Param-Email", param_header_tool)

        templates = await client.list_resource_templates()
        if any(t.uri_template == "contact://{email}" for t in templates.resource_templates):

            async def resource_uri() -> None:
                result = await client.read_resource(f"contact://{sent}")
                contents = result.contents[0]
                text = getattr(contents, "text", None)
                report.check("resources/read with the address in the URI (Mcp-Name)",
                             text == f"Contact card for {sent}" and str(contents.uri) == f"contact://{sent}",
                             f"uri={contents.uri!r} text={text!r}")
                if tokenized:
                    report.check("resources/read result leaks no raw email", email not in dump(result),
                                 dump(result)[:300])

            await guarded(report, "resources/read with the address in the URI (Mcp-Name)", resource_uri)
        else:
            report.skip("resources/read with the address in the URI (Mcp-Name)", "no contact://{email} template")

        prompts = await client.list_prompts()
        if any(p.name == "write_to" for p in prompts.prompts):

            async def prompt_argument() -> None:
                result = await client.get_prompt("write_to", {"email": sent})
                content = result.messages[0].content
                text = content.text if isinstance(content, types.TextContent) else None
                report.check("prompts/get with the address as argument", text == f"Write a short note to {sent}.",
                             repr(text))

            await guarded(report, "prompts/get with the address as argument", prompt_argument)
        else:
            report.skip("prompts/get with the address as argument", "upstream has no write_to prompt")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=sorted(MODES), default="auto")
    parser.add_argument("--expect-tokenized", action="store_true")
    parser.add_argument("--expect-era", choices=["modern", "legacy"])
    parser.add_argument("--header", action="append", default=[], help="extra HTTP header 'Name: value'")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    label = f"python_client {args.mode} {'via-gateway' if args.expect_tokenized else 'direct'} {args.url}"
    try:
        report = asyncio.run(run(args))
    except Exception as exc:  # connect/handshake failures
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # anyio wraps the real cause in task-group exception groups
        print(f"FAIL connect: {type(exc).__name__}: {exc}")
        print(f"RESULT {label}: 0 passed, 1 failed")
        return 1
    print(f"RESULT {label}: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
