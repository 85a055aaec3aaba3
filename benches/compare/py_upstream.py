#!/usr/bin/env python3
"""Upstream for `scripts/bench-compare.sh --python`: the official Python SDK (mcp 2.x) serving one tool,
`report(seed)`, whose result is about 4 KB of text holding four values (two example.com addresses and
two 555-01xx numbers, all fictional), over Streamable HTTP with sessions, answering `application/json`.

Usage: py_upstream.py [--host 127.0.0.1] [--port 3012]     (endpoint http://HOST:PORT/mcp)
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer

WORDS = ["order", "shipped", "invoice", "customer", "support", "ticket", "update", "status"]

mcp = MCPServer("bench-report", log_level="WARNING")


def report_text(seed: int) -> str:
    parts: list[str] = []
    size, i = 0, seed
    values = [
        f"contact user{seed % 3}@example.com",
        f"call +1 202-555-01{seed % 100:02d}",
        f"cc team{seed % 5}@example.com",
        f"fax +1 202-555-01{(seed + 7) % 100:02d}",
    ]
    while size < 4000:
        w = WORDS[i % len(WORDS)]
        if i - seed in (70, 200, 330, 460):
            w = values[(i - seed - 70) // 130]
        parts.append(w)
        size += len(w) + 1
        i += 1
    return " ".join(parts)


@mcp.tool()
def report(seed: int) -> str:
    """A 4 KB report with two addresses and two phone numbers."""
    return report_text(seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3012)
    args = parser.parse_args()
    mcp.run(transport="streamable-http", host=args.host, port=args.port, json_response=True)


if __name__ == "__main__":
    main()
