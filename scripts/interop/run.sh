#!/usr/bin/env bash
# Interop matrix with the official MCP Python SDK client, against real upstreams, directly and through
# the gateway.
#
#   scripts/interop/run.sh [--gateway on|off|auto] [--direct on|off] [--stdio on|off]
#   (env: INTEROP_GATEWAY=on|off|auto, GATEWAY_BIN=path, GATEWAY_EXTRA_TOML='...toml lines...')
#
# Upstreams (started here on free loopback ports, stopped on exit):
#   everything  @modelcontextprotocol/server-everything (session-based protocol only, <= 2025-11-25)
#   pyup        scripts/interop/py_upstream.py (Python SDK: 2026-07-28 stateless AND session-based)
#   rmcp        $RMCP_UPSTREAM_BIN if set (an rmcp Streamable HTTP server taking `http ADDR`, e.g. the
#               lead's examples/demo_upstream), else skipped
#   everything-stdio, pyup-stdio   the same two servers as child processes of the gateway (stdio
#               upstreams; gateway leg only, unless --stdio off)
# Client modes per upstream: auto (SDK default: discover, fall back to initialize), session, stateless.
# Direct runs expect raw values; gateway runs (`mcp-pii-gateway serve`, upstream NAME at
# /servers/NAME/mcp) add --expect-tokenized. Prints each run's RESULT line and a total
# `N passed, N failed`; exits 1 on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/interop/lib.sh
source "$here/lib.sh"

gateway_mode="${INTEROP_GATEWAY:-auto}"
direct=on
stdio=on
while [ $# -gt 0 ]; do
  case "$1" in
    --gateway) gateway_mode="$2"; shift 2 ;;
    --direct) direct="$2"; shift 2 ;;
    --stdio) stdio="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
interop_require_tools

ev_port="$(free_port)"; py_port="$(free_port)"
start_everything "$ev_port"
start_py_upstream "$py_port"
upstreams=("everything=http://127.0.0.1:$ev_port/mcp" "pyup=http://127.0.0.1:$py_port/mcp")
if [ -n "${RMCP_UPSTREAM_BIN:-}" ]; then
  rm_port="$(free_port)"
  start_bg rmcp "$rm_port" "$RMCP_UPSTREAM_BIN" http "127.0.0.1:$rm_port"
  upstreams+=("rmcp=http://127.0.0.1:$rm_port/mcp")
fi

# "upstream mode expected-era" rows ("-": no era expectation). everything cannot speak 2026-07-28, so it
# has no stateless row.
matrix=(
  "everything auto legacy" "everything session legacy"
  "pyup auto modern" "pyup session legacy" "pyup stateless modern"
)
[ -n "${RMCP_UPSTREAM_BIN:-}" ] && matrix+=("rmcp auto modern" "rmcp session legacy" "rmcp stateless modern")

run_client() { # URL MODE ERA|- [extra args]
  local out rc=0 era_args=()
  [ "$3" = - ] || era_args=(--expect-era "$3")
  out="$("$PY" "$here/python_client.py" --url "$1" --mode "$2" "${era_args[@]}" "${@:4}" 2>&1)" || rc=$?
  tally_run "$out" "$rc"
}
url_of() { local pair; for pair in "${upstreams[@]}"; do [ "${pair%%=*}" = "$1" ] && echo "${pair#*=}"; done; }

if [ "$direct" = on ]; then
  echo "== direct to upstreams"
  for row in "${matrix[@]}"; do
    read -r name mode era <<<"$row"
    run_client "$(url_of "$name")" "$mode" "$era"
  done
fi

if gateway_wanted "$gateway_mode"; then
  gw_port="$(free_port)"
  gw_upstreams=("${upstreams[@]}")
  gw_matrix=("${matrix[@]}")
  if [ "$stdio" = on ]; then
    # How the gateway bridges a stateless client to a stdio child is its own business: no era rows.
    gw_upstreams+=("everything-stdio=stdio" "pyup-stdio=stdio")
    gw_matrix+=("everything-stdio auto -" "everything-stdio session legacy"
      "pyup-stdio auto -" "pyup-stdio session legacy" "pyup-stdio stateless -")
  fi
  write_gateway_config "$INTEROP_LOGDIR/gateway.toml" "$gw_port" "${gw_upstreams[@]}"
  start_gateway "$gw_port" "$INTEROP_LOGDIR/gateway.toml"
  echo "== through the gateway ($GATEWAY_BIN, config $INTEROP_LOGDIR/gateway.toml)"
  for row in "${gw_matrix[@]}"; do
    read -r name mode era <<<"$row"
    run_client "http://127.0.0.1:$gw_port/servers/$name/mcp" "$mode" "$era" --expect-tokenized
  done
else
  echo "== through the gateway: SKIPPED (gateway mode '$gateway_mode', binary $GATEWAY_BIN)"
fi

echo "INTEROP TOTAL: $total_pass passed, $total_fail failed (logs: $INTEROP_LOGDIR)"
[ "$total_fail" = 0 ] && [ "$runs_failed" = 0 ]
