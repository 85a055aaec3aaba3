#!/usr/bin/env bash
# The compliance walkthrough of the README, for real: runs `serve` in front of two copies of the
# bundled demo server (crm and mail) with a flow policy and an audit log, drives a short agent
# session with curl (a lookup, an allowed email, a denied one), then runs `audit verify`,
# `audit replay` (recorded and stricter policy), `audit search`, and verifies an edited copy.
#
#   bash examples/compliance-walkthrough.sh            # builds the binary with cargo if needed
#   GATEWAY_BIN=path/to/mcp-pii-gateway bash examples/compliance-walkthrough.sh
#
# Needs curl. Everything happens in a temporary directory (kept when KEEP=1). The customers are
# the demo server's generated, fictional records (example.com, 555-01xx).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${GATEWAY_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet --bin mcp-pii-gateway)
  bin="$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/mcp-pii-gateway"
fi
command -v curl >/dev/null || { echo "compliance-walkthrough: curl is needed" >&2; exit 2; }
dir="$(mktemp -d)"
cleanup() { [ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null; wait 2>/dev/null || true; [ "${KEEP:-}" = 1 ] || rm -rf "$dir"; }
trap cleanup EXIT
cd "$dir"

# A generated key for this walkthrough only; a deployment keeps its key in a secret store.
export MCP_PII_AUDIT_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
cat > gateway.toml <<TOML
listen = "127.0.0.1:0"
[scope]
header = "x-agent-run"
[[servers]]
name = "crm"
command = "$bin"
args = ["demo-upstream"]
[[servers]]
name = "mail"
command = "$bin"
args = ["demo-upstream"]
env = { MCP_PII_DEMO_OUTBOX = "$dir/outbox.jsonl" }
[policy]
cross_server = "deny"
untracked_pii = "audit"
[[policy.flows]]
id = "crm-to-mail"
from = "crm"
to = "mail/send_email"
kinds = ["EMAIL"]
[audit]
path = "audit/gateway.jsonl"
TOML
printf 'cross_server = "deny"\nuntracked_pii = "deny"\n' > strict.toml

"$bin" serve --config gateway.toml 2> serve.log &
gw_pid=$!
for _ in $(seq 100); do grep -q "listening on http://" serve.log 2>/dev/null && break; sleep 0.1; done
addr="$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' serve.log | head -1)"
[ -n "$addr" ] || { cat serve.log >&2; exit 1; }

# One MCP session per server, as the sandbox would open them.
post() { # server session body -> response body (headers to $dir/headers)
  curl -sS -D headers -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H 'x-agent-run: run-1' ${2:+-H "mcp-session-id: $2"} --data "$3" "http://$addr/servers/$1/mcp"
}
session() {
  post "$1" "" '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"walkthrough","version":"1"}}}' >/dev/null
  local sid; sid="$(tr -d '\r' < headers | sed -n 's/^mcp-session-id: //Ip')"
  post "$1" "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
  echo "$sid"
}
crm="$(session crm)"; mail="$(session mail)"
say() { printf '\n$ %s\n' "$*"; }

echo "== an agent session through the gateway"
say "crm: lookup_customer 42"
post crm "$crm" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","arguments":{"id":42}}}' | grep -o '"text":"[^"]*"' | head -1
say "mail: send_email to [EMAIL_1] (flow crm-to-mail allows it)"
post mail "$mail" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send_email","arguments":{"to":"[EMAIL_1]","subject":"Your order"}}}' | grep -o '"text":"[^"]*"' | head -1
say "mail: send_email mentioning [PHONE_1] (no flow allows it)"
post mail "$mail" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"send_email","arguments":{"to":"ops","body":"call [PHONE_1]"}}}' | grep -o '"message":"[^"]*"' | head -1
kill -TERM "$gw_pid"; wait "$gw_pid" || true; gw_pid=
echo "mail's outbox holds $(wc -l < outbox.jsonl) email(s)"

echo; echo "== 1. is the log intact?"
say "mcp-pii-gateway audit verify audit/gateway.jsonl*"
"$bin" audit verify audit/gateway.jsonl*
head_anchor="$("$bin" audit verify --json audit/gateway.jsonl* | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%s:%s" % (r["last_seq"], r["head_hash"]))')"
say "mcp-pii-gateway audit verify audit/gateway.jsonl* --anchor $head_anchor"
"$bin" audit verify audit/gateway.jsonl* --anchor "$head_anchor"
sed '5s/"server":"mail"/"server":"crm"/' audit/gateway.jsonl > edited.jsonl
say "mcp-pii-gateway audit verify edited.jsonl      # decision 5's target edited: exit 1"
"$bin" audit verify edited.jsonl && { echo "an edited log verified" >&2; exit 1; } || true

echo; echo "== 2. does every decision follow from the recorded policy?"
say "mcp-pii-gateway audit replay audit/gateway.jsonl*"
"$bin" audit replay audit/gateway.jsonl*

echo; echo "== 3. what would a stricter policy have changed?"
say "mcp-pii-gateway audit replay audit/gateway.jsonl* --policy strict.toml      # exit 1"
"$bin" audit replay audit/gateway.jsonl* --policy strict.toml && { echo "the stricter policy changed nothing" >&2; exit 1; } || true

echo; echo "== 4. where did customer 42's address go?"
say "mcp-pii-gateway audit search audit/gateway.jsonl* --value-stdin <<< 'maria.garcia@example.com'"
"$bin" audit search audit/gateway.jsonl* --value-stdin <<< 'maria.garcia@example.com'
