#!/usr/bin/env bash
# Official MCP conformance suite (server scenarios) against real upstreams directly and through the
# gateway: the gateway must pass every check the upstream passes on its own.
#
#   scripts/conformance.sh [--gateway on|off|auto] [--upstream pyup|everything|all] [--suite active|all|pending]
#                          [--scenario NAME] [--stdio on|off] [--aggregate on|off]
#   (env: CONFORMANCE_GATEWAY=on|off|auto, GATEWAY_BIN=path, GATEWAY_EXTRA_TOML='...toml lines...')
#
# Upstreams, started on free loopback ports and stopped on exit:
#   pyup        scripts/interop/py_upstream.py: Python SDK server with the suite's fixtures (passes it all)
#   everything  @modelcontextprotocol/server-everything (passes the fixture-independent scenarios)
#   pyup-stdio, everything-stdio  the same servers as stdio child processes of the gateway (gateway leg
#               only, compared with the direct HTTP run of the same server; --stdio off skips them)
# The gateway leg also runs the suite against the aggregated endpoint /mcp (unless --aggregate off): one
# more gateway per upstream, with that upstream as its only server and `[aggregate] unprefixed` set to
# it, so the fixtures keep their names; compared with the direct run of the same upstream.
# --gateway auto (default) runs the gateway leg when $GATEWAY_BIN exists; `on` makes a missing or
# failing gateway an error. Prints both pass counts per upstream; exits 1 on any regression.
# Needs scripts/install-test-deps.sh first. Result JSON stays in the printed log dir.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/interop/lib.sh
source "$here/interop/lib.sh"

gateway_mode="${CONFORMANCE_GATEWAY:-auto}"
which=all
stdio=on
aggregate=on
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --gateway) gateway_mode="$2"; shift 2 ;;
    --upstream) which="$2"; shift 2 ;;
    --stdio) stdio="$2"; shift 2 ;;
    --aggregate) aggregate="$2"; shift 2 ;;
    --suite|--scenario) extra+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
interop_require_tools

upstreams=()
case "$which" in
  pyup|all) port="$(free_port)"; start_py_upstream "$port"; upstreams+=("pyup=http://127.0.0.1:$port/mcp") ;;&
  everything|all) port="$(free_port)"; start_everything "$port"; upstreams+=("everything=http://127.0.0.1:$port/mcp") ;;
  pyup) ;;
  *) echo "--upstream must be pyup, everything or all" >&2; exit 2 ;;
esac

run_suite() { # URL OUTDIR
  # The CLI exits 1 when any check fails; the verdict comes from the JSON it writes.
  "$NODE" "$CONFORMANCE" server --url "$1" -o "$2" "${extra[@]}" >"$2.log" 2>&1 || true
  [ -n "$(ls -A "$2" 2>/dev/null)" ] || { echo "conformance wrote no results for $1; see $2.log" >&2; tail -5 "$2.log" >&2; return 1; }
}

use_gateway=0
gw_upstreams=("${upstreams[@]}")
if gateway_wanted "$gateway_mode"; then
  if [ "$stdio" = on ]; then
    for pair in "${upstreams[@]}"; do gw_upstreams+=("${pair%%=*}-stdio=stdio"); done
  fi
  gw_port="$(free_port)"
  write_gateway_config "$INTEROP_LOGDIR/gateway.toml" "$gw_port" "${gw_upstreams[@]}"
  start_gateway "$gw_port" "$INTEROP_LOGDIR/gateway.toml"
  use_gateway=1
fi
agg_urls=()
if [ "$use_gateway" = 1 ] && [ "$aggregate" = on ]; then
  for pair in "${upstreams[@]}"; do
    name="${pair%%=*}"; agg_port="$(free_port)"
    GATEWAY_EXTRA_TOML="${GATEWAY_EXTRA_TOML:-}
[aggregate]
unprefixed = \"$name\"" write_gateway_config "$INTEROP_LOGDIR/gateway-mcp-$name.toml" "$agg_port" "$pair"
    start_bg "gateway-mcp-$name" "$agg_port" "$GATEWAY_BIN" serve --config "$INTEROP_LOGDIR/gateway-mcp-$name.toml"
    agg_urls+=("$name=http://127.0.0.1:$agg_port/mcp")
  done
fi

summary() { "$PY" "$here/interop/conformance_compare.py" summary "$1"; }
status=0
for pair in "${upstreams[@]}"; do
  name="${pair%%=*}"; url="${pair#*=}"
  run_suite "$url" "$INTEROP_LOGDIR/direct-$name"
  echo "== $name direct ($url): $(summary "$INTEROP_LOGDIR/direct-$name")"
done
if [ "$use_gateway" = 1 ]; then
  for pair in "${gw_upstreams[@]}"; do
    name="${pair%%=*}"; baseline="${name%-stdio}"
    gw_url="http://127.0.0.1:$gw_port/servers/$name/mcp"
    run_suite "$gw_url" "$INTEROP_LOGDIR/gateway-$name" || { status=1; continue; }
    echo "== $name via gateway ($gw_url): $(summary "$INTEROP_LOGDIR/gateway-$name") (baseline: $baseline direct)"
    "$PY" "$here/interop/conformance_compare.py" compare "$INTEROP_LOGDIR/direct-$baseline" \
      "$INTEROP_LOGDIR/gateway-$name" || status=1
  done
  for pair in "${agg_urls[@]}"; do
    name="${pair%%=*}"; agg_url="${pair#*=}"
    run_suite "$agg_url" "$INTEROP_LOGDIR/mcp-$name" || { status=1; continue; }
    echo "== $name via gateway /mcp ($agg_url, unprefixed): $(summary "$INTEROP_LOGDIR/mcp-$name") (baseline: $name direct)"
    "$PY" "$here/interop/conformance_compare.py" compare "$INTEROP_LOGDIR/direct-$name" \
      "$INTEROP_LOGDIR/mcp-$name" || status=1
  done
else
  echo "== via gateway: SKIPPED (gateway mode '$gateway_mode', binary $GATEWAY_BIN)"
fi
echo "CONFORMANCE: $([ "$status" = 0 ] && echo OK || echo REGRESSIONS) (results: $INTEROP_LOGDIR)"
exit "$status"
