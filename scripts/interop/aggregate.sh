#!/usr/bin/env bash
# Interop check of the aggregated endpoint /mcp with the official MCP Python SDK client
# (scripts/interop/aggregate.py), in the SDK's default (auto) mode and in legacy mode.
#
#   scripts/interop/aggregate.sh        (env: GATEWAY_BIN=path)
#
# Upstreams, all Python SDK servers (scripts/interop/py_crm_mail.py), each with 50 filler tools:
#   crm    Streamable HTTP, lookup_customer(id) returns a generated customer's email and phone
#   mail   stdio child of the gateway; send_email writes what it receives to $INTEROP_LOGDIR/mail-*.jsonl
#   paste  Streamable HTTP, also send_email (to $INTEROP_LOGDIR/paste.jsonl); no flow reaches it
# Two gateways: one with [aggregate] expose = "all" (default), one with expose = "search". Both allow
# EMAIL and PHONE from crm to mail/send_email only (cross_server = "deny") and reveal email.domain,
# phone.country and same_person. Prints each run's RESULT line and `AGGREGATE TOTAL: N passed, N failed`;
# exits 1 on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/interop/lib.sh
source "$here/lib.sh"
interop_require_tools
[ -x "$GATEWAY_BIN" ] || { echo "gateway binary not found: $GATEWAY_BIN (set GATEWAY_BIN or cargo build)" >&2; exit 1; }

crm_port="$(free_port)"; paste_port="$(free_port)"
start_bg crm "$crm_port" "$PY" "$here/py_crm_mail.py" --role crm --transport http "$crm_port"
start_bg paste "$paste_port" "$PY" "$here/py_crm_mail.py" --role mail --transport http "$paste_port" \
  --received "$INTEROP_LOGDIR/paste.jsonl"

policy='[policy]
cross_server = "deny"
reveal = ["email.domain", "phone.country", "same_person"]
[[policy.flows]]
id = "crm-to-mail"
from = "crm"
to = "mail/send_email"
kinds = ["EMAIL", "PHONE"]'

run_client() { # URL MODE EXPOSE CUSTOMER MAIL_FILE
  local out rc=0
  out="$("$PY" "$here/aggregate.py" --url "$1" --mode "$2" --expose "$3" --customer "$4" \
    --mail-received "$5" --paste-received "$INTEROP_LOGDIR/paste.jsonl" 2>&1)" || rc=$?
  echo "$out" >>"$INTEROP_LOGDIR/aggregate-client.log"
  tally_run "$out" "$rc"
}

customer=1
for expose in all search; do
  port="$(free_port)"
  mail_file="$INTEROP_LOGDIR/mail-$expose.jsonl"
  # shellcheck disable=SC2034  # read by write_gateway_config through a nameref
  stdio_cmd_mail=("$PY" "$here/py_crm_mail.py" --role mail --transport stdio --received "$mail_file")
  GATEWAY_EXTRA_TOML="$policy
[aggregate]
expose = \"$expose\"" write_gateway_config "$INTEROP_LOGDIR/gateway-$expose.toml" "$port" \
    "crm=http://127.0.0.1:$crm_port/mcp" "mail=stdio" "paste=http://127.0.0.1:$paste_port/mcp"
  start_bg "gateway-$expose" "$port" "$GATEWAY_BIN" serve --config "$INTEROP_LOGDIR/gateway-$expose.toml"
  echo "== /mcp with expose = \"$expose\" ($GATEWAY_BIN, config $INTEROP_LOGDIR/gateway-$expose.toml)"
  for mode in auto session; do
    run_client "http://127.0.0.1:$port/mcp" "$mode" "$expose" "$customer" "$mail_file"
    customer=$((customer + 1))
  done
done

echo "AGGREGATE TOTAL: $total_pass passed, $total_fail failed (logs: $INTEROP_LOGDIR)"
[ "$total_fail" = 0 ] && [ "$runs_failed" = 0 ]
