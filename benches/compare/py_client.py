#!/usr/bin/env python3
"""Client of `scripts/bench-compare.sh --python`: the official Python SDK client (mcp 2.x, session mode)
measuring several endpoints in front of the same upstream, interleaved in one run.

Usage: py_client.py --target NAME=URL[#TOOL] ... [--calls 1000] [--rounds 5]
Each target gets one session; each round every target makes `--calls` sequential `tools/call`
(`report`, or TOOL), the order rotating between rounds. The first target is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def pct(sorted_us: list[float], p: float) -> float:
    return sorted_us[round((len(sorted_us) - 1) * p)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    targets = []
    for t in args.target:
        name, rest = t.split("=", 1)
        url, _, tool = rest.partition("#")
        targets.append((name, url, tool or "report"))

    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _name, url, _tool in targets:
            http = await stack.enter_async_context(httpx2.AsyncClient(timeout=httpx2.Timeout(30)))
            client = await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), mode="legacy"))
            clients.append(client)
        size = 0
        for client, (_n, _u, tool) in zip(clients, targets):
            for i in range(100):
                r = await client.call_tool(tool, {"seed": i})
            size = len(r.content[0].text)
        lat: list[list[float]] = [[] for _ in targets]
        for rnd in range(args.rounds):
            for k in range(len(targets)):
                i = (k + rnd) % len(targets)
                client, tool = clients[i], targets[i][2]
                for j in range(args.calls):
                    t = time.perf_counter()
                    r = await client.call_tool(tool, {"seed": j % 16})
                    lat[i].append((time.perf_counter() - t) * 1e6)
                    assert not r.is_error, r
    for v in lat:
        v.sort()
    print(f"Python SDK client: {args.rounds} rounds x {args.calls} sequential tools/call per target "
          f"(one session each), {size}-byte results")
    print("| target | p50 µs | p99 µs | added p50 | added p99 |")
    print("|---|---:|---:|---:|---:|")
    b50, b99 = pct(lat[0], 0.5), pct(lat[0], 0.99)
    for i, (name, _u, _t) in enumerate(targets):
        p50, p99 = pct(lat[i], 0.5), pct(lat[i], 0.99)
        if i == 0:
            print(f"| {name} | {p50:.0f} | {p99:.0f} | – | – |")
        else:
            print(f"| {name} | {p50:.0f} | {p99:.0f} | {p50 - b50:+.0f} µs | {p99 - b99:+.0f} µs |")


if __name__ == "__main__":
    asyncio.run(main())
