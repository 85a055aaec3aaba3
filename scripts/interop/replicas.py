#!/usr/bin/env python3
"""Two gateway replicas on one Redis vault, driven by the official MCP Python SDK client.

    replicas.py --gateway-bin PATH --redis-url redis://127.0.0.1:PORT --redis-cli-port PORT

Starts the Python SDK upstream (py_upstream.py, session-based Streamable HTTP) and two `serve`
processes sharing one Redis vault. The client's HTTP transport sends each request to the other
replica in turn, so one MCP session (initialize on one, calls, GET stream, DELETE) runs across
both. Checks: the same placeholders from either replica; a placeholder minted on one is restored
by the other; Redis stopped: clear errors, no raw value, /healthz 503; Redis back: calls succeed
without restarting a gateway; a restarted replica still resolves earlier placeholders.
Test data is generated (Faker on example.org). Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx2
from faker import Faker

from mcp import Client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE)_[1-9][0-9]*\]")
FAILED: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        FAILED.append(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answered at {url}")


def vault_up(port: int) -> str:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    return next((l.split()[1] for l in text.splitlines() if l.startswith("mcp_gateway_vault_up ")), "?")


def healthz(port: int) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code


class Replica:
    def __init__(self, bin: str, config: Path, env: dict[str, str], port: int, name: str):
        self.bin, self.config, self.env, self.port, self.name = bin, config, env, port, name
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.gettempdir()) / f"replica-{name}-{os.getpid()}.log"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--config", str(self.config)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica, as a load balancer without stickiness would."""

    def __init__(self, ports: list[int]):
        self.ports, self.i, self.inner = ports, 0, httpx2.AsyncHTTPTransport()
        self.used: list[int] = []

    async def handle_async_request(self, request):
        port = self.ports[self.i % len(self.ports)]
        self.i += 1
        self.used.append(port)
        request.url = request.url.copy_with(port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def text_of(result) -> str:
    text = "".join(getattr(c, "text", "") for c in result.content)
    return text.removeprefix("Echo: ")


async def session(ports: list[int], calls) -> list[str]:
    rr = RoundRobin(ports)
    http = httpx2.AsyncClient(transport=rr, headers={"x-agent-run": "run-1"}, timeout=httpx2.Timeout(20))
    url = f"http://127.0.0.1:{ports[0]}/servers/py/mcp"
    out: list[str] = []
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        for message in calls:
            result = await client.call_tool("echo", {"message": message})
            out.append(text_of(result) if not result.is_error else "ERROR " + text_of(result))
    check("the session's requests went to both replicas", set(rr.used) == set(ports), f"ports used: {rr.used}")
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway-bin", required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    args = ap.parse_args()

    fake = Faker("en_US")
    fake.seed_instance(7)
    emails = [f"{fake.user_name()}.{i}@example.org" for i in range(4)]

    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "py_upstream.py"), "--port", str(up_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    tmp = Path(tempfile.mkdtemp(prefix="replicas-"))
    template = (
        f"""listen = "127.0.0.1:LISTEN_PORT"
[scope]
header = "x-agent-run"
[vault]
backend = "redis"
url = "{args.redis_url}"
command_timeout = "300ms"
connect_timeout = "300ms"
[[servers]]
name = "py"
url = "http://127.0.0.1:{up_port}/mcp"
"""
    )
    env = dict(os.environ, MCP_PII_VAULT_KEY=secrets.token_hex(32), RUST_LOG="warn", NO_COLOR="1")
    ports = [free_port(), free_port()]
    replicas = []
    for p, n in zip(ports, "ab"):
        config = tmp / f"gateway-{n}.toml"
        config.write_text(template.replace("LISTEN_PORT", str(p)).replace("[scope]", f'replica_id = "{n}"\n[scope]'))
        replicas.append(Replica(args.gateway_bin, config, dict(env), p, n))
    try:
        wait_http(f"http://127.0.0.1:{up_port}/mcp")
        for r in replicas:
            r.start()

        # One session across both replicas; the same value gets the same placeholder on each.
        out = await session(ports, [f"write to {emails[0]}", f"again {emails[0]}", f"and {emails[1]}", "[EMAIL_1]", "[EMAIL_2] too"])
        check("replica A and B tokenize alike", out[0] == "write to [EMAIL_1]" and out[1] == "again [EMAIL_1]", str(out))
        check("a new value continues the numbering", out[2] == "and [EMAIL_2]", str(out))
        check("a placeholder is restored by either replica", out[3] == "[EMAIL_1]" and out[4] == "[EMAIL_2] too", str(out))
        check("no raw value reached the client", not any(e in "".join(out) for e in emails), str(out))

        # Redis stops: clear errors, nothing raw, both replicas unhealthy.
        # (Redis persists, as it must in a deployment: SHUTDOWN SAVE, and it comes back with its data.)
        subprocess.run(["redis-cli", "-p", str(args.redis_port), "shutdown", "save"], capture_output=True)
        await asyncio.sleep(2.5)
        check("/healthz answers 503 on both replicas", [healthz(p) for p in ports] == [503, 503], str([healthz(p) for p in ports]))
        check("/metrics shows the vault down", [vault_up(p) for p in ports] == ["0", "0"], str([vault_up(p) for p in ports]))
        try:
            out = await session(ports, [f"new value {emails[2]}"])
            failed = out[0].startswith("ERROR")
            check("a new value is withheld with an error while Redis is down", failed, str(out))
            check("the error holds no raw value", emails[2] not in out[0], out[0])
        except Exception as e:  # the SDK raises when initialize itself fails
            check("the outage surfaces as an error, not a raw value", emails[2] not in str(e), str(e))
        # Redis back (the test harness restarts it on the same port): calls succeed again.
        print("WAIT redis-restart", flush=True)
        sys.stdin.readline()
        deadline = time.time() + 20
        while time.time() < deadline and [healthz(p) for p in ports] != [200, 200]:
            await asyncio.sleep(0.2)
        check("/healthz answers 200 again without a restart", [healthz(p) for p in ports] == [200, 200])
        check("/metrics shows the vault up again", [vault_up(p) for p in ports] == ["1", "1"], str([vault_up(p) for p in ports]))
        out = await session(ports, [f"back {emails[3]}", "[EMAIL_1] now"])
        check("calls succeed again after Redis is back", out[0] == "back [EMAIL_3]" and out[1] == "[EMAIL_1] now", str(out))

        # A replica restarts: placeholders issued before still resolve (from Redis).
        before = out[0].split("back ", 1)[1]
        replicas[0].stop()
        replicas[0].start()
        out = await session([ports[0], ports[0]], [before])
        check("a restarted replica restores an earlier placeholder", out[0] == before, str(out))
    finally:
        for r in replicas:
            r.stop()
        upstream.terminate()
    logs = "".join(r.log.read_text(errors="replace") for r in replicas if r.log.exists())
    check("no raw value in the gateways' logs", not any(e in logs for e in emails), "raw value in a log")
    print(f"{len(FAILED)} failed" + (f": {FAILED}" if FAILED else ""))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    asyncio.run(main())
