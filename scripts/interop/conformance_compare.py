#!/usr/bin/env python3
"""Compare conformance-suite results of an upstream run directly and through the gateway.

    conformance_compare.py summary DIR                 -> "P passed, F failed" of one `conformance server -o DIR` run
    conformance_compare.py compare DIRECT_DIR GW_DIR   -> every check that passes directly must pass via the gateway

Each run directory holds one `server-<scenario>-<timestamp>/checks.json` per scenario (a list of checks with
`id` and `status`). A check is keyed by (scenario, check id); SUCCESS counts as passed, FAILURE as failed.
`compare` prints regressions (pass direct, not via gateway) and gains (the other way) and exits 1 on any
regression or when the gateway run lacks a scenario the direct run passed.
"""

from __future__ import annotations

import json

# Checks where the suite itself reports optional behaviour as INFO (not a failure) and the gateway
# legitimately chooses the other option. Only these may go from SUCCESS directly to INFO via the
# gateway; anything else that stops passing is a regression.
OPTIONAL_INFO = {
    ("server-sse-multiple-streams", "server-sse-streams-functional"):
        "SSE streams are optional (SEP-1699): a stdio upstream's emulated Streamable HTTP, and the "
        "aggregated endpoint /mcp, answer with JSON when no notification or server request precedes "
        "the response",
}
import re
import sys
from pathlib import Path

STAMP = re.compile(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def load(run_dir: str) -> dict[tuple[str, str], str]:
    checks: dict[tuple[str, str], str] = {}
    for f in sorted(Path(run_dir).glob("*/checks.json")):
        scenario = STAMP.sub("", f.parent.name).removeprefix("server-")
        for check in json.loads(f.read_text()):
            checks[(scenario, str(check.get("id")))] = str(check.get("status"))
    return checks


def counts(checks: dict[tuple[str, str], str]) -> tuple[int, int]:
    passed = sum(1 for s in checks.values() if s == "SUCCESS")
    failed = sum(1 for s in checks.values() if s == "FAILURE")
    return passed, failed


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "summary":
        p, f = counts(load(argv[2]))
        print(f"{p} passed, {f} failed")
        return 0
    if len(argv) != 4 or argv[1] != "compare":
        print(__doc__, file=sys.stderr)
        return 2
    direct, gateway = load(argv[2]), load(argv[3])
    if not direct:
        print(f"no results in {argv[2]}")
        return 1
    regressions = sorted(
        k
        for k, s in direct.items()
        if s == "SUCCESS" and gateway.get(k) != "SUCCESS" and not (k in OPTIONAL_INFO and gateway.get(k) == "INFO")
    )
    for k in sorted(k for k in OPTIONAL_INFO if direct.get(k) == "SUCCESS" and gateway.get(k) == "INFO"):
        print(f"  note {k[0]} / {k[1]}: direct SUCCESS, gateway INFO ({OPTIONAL_INFO[k]})")
    gains = sorted(k for k, s in gateway.items() if s == "SUCCESS" and direct.get(k) != "SUCCESS")
    for scenario, check in regressions:
        print(f"  REGRESSION {scenario} / {check}: direct SUCCESS, gateway {gateway.get((scenario, check), 'MISSING')}")
    for scenario, check in gains:
        print(f"  gain {scenario} / {check}: direct {direct.get((scenario, check), 'MISSING')}, gateway SUCCESS")
    dp, df = counts(direct)
    gp, gf = counts(gateway)
    print(f"  direct {dp} passed, {df} failed | gateway {gp} passed, {gf} failed | {len(regressions)} regressions")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
