# Shared helpers for scripts/interop/run.sh and scripts/conformance.sh; `source` it (bash).
# Starts upstreams and the gateway on free loopback ports and stops exactly the processes it started.
# shellcheck source=scripts/interop/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

INTEROP_PIDS=()
INTEROP_LOGDIR="${INTEROP_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/mcp-interop.XXXXXX")}"
export INTEROP_LOGDIR

interop_cleanup() {
  local pid
  for pid in "${INTEROP_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${INTEROP_PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  INTEROP_PIDS=()
}
trap interop_cleanup EXIT
trap 'exit 130' INT TERM

interop_require_tools() {
  local f
  for f in "$PY" "$NODE" "$CONFORMANCE" "$EVERYTHING"; do
    [ -e "$f" ] || { echo "missing $f: run scripts/install-test-deps.sh first" >&2; exit 1; }
  done
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID NAME: wait until PORT accepts connections, failing if PID dies or 20 s pass.
wait_port() {
  local port="$1" pid="$2" name="$3" i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited before listening on $port; log $INTEROP_LOGDIR/$name.log:" >&2
      tail -20 "$INTEROP_LOGDIR/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "$name did not listen on $port within 20 s; log $INTEROP_LOGDIR/$name.log" >&2
  return 1
}

# start_bg NAME PORT CMD...: run CMD in its own process group, log to $INTEROP_LOGDIR/NAME.log.
start_bg() {
  local name="$1" port="$2"
  shift 2
  setsid "$@" >"$INTEROP_LOGDIR/$name.log" 2>&1 &
  local pid=$!
  INTEROP_PIDS+=("$pid")
  wait_port "$port" "$pid" "$name"
}

start_everything() { # PORT -> server-everything (session-based only) at http://127.0.0.1:PORT/mcp
  PORT="$1" start_bg everything "$1" "$NODE" "$EVERYTHING" streamableHttp
}

start_py_upstream() { # PORT -> Python SDK upstream (both eras, conformance fixtures) at /mcp
  start_bg pyup "$1" "$PY" "$PY_UPSTREAM" --port "$1"
}

# write_gateway_config FILE LISTEN_PORT ENTRY...: one [[servers]] table per ENTRY, which is either
# NAME=http://... (Streamable HTTP upstream) or NAME=stdio (a child process: the command line comes from
# the array named stdio_cmd_NAME with '-' turned into '_'), plus $GATEWAY_EXTRA_TOML verbatim (policy, scope...).
write_gateway_config() {
  local file="$1" port="$2" pair name
  shift 2
  {
    echo "listen = \"127.0.0.1:$port\""
    printf '%s\n' "${GATEWAY_EXTRA_TOML:-}"
    for pair in "$@"; do
      name="${pair%%=*}"
      printf '\n[[servers]]\nname = "%s"\n' "$name"
      if [ "${pair#*=}" = stdio ]; then
        local -n cmd="stdio_cmd_${name//-/_}"
        # JSON strings are valid TOML basic strings.
        "$PY" -c 'import json,sys; print("command = " + json.dumps(sys.argv[1])); print("args = " + json.dumps(sys.argv[2:]))' "${cmd[@]}"
        unset -n cmd
      else
        printf 'url = "%s"\n' "${pair#*=}"
      fi
    done
  } >"$file"
}

# Child-process upstreams the gateway can spawn (used by NAME=stdio entries).
# shellcheck disable=SC2034
stdio_cmd_everything_stdio=("$NODE" "$EVERYTHING" stdio)
# shellcheck disable=SC2034
stdio_cmd_pyup_stdio=("$PY" "$PY_UPSTREAM" --stdio)

start_gateway() { # PORT CONFIG -> mcp-pii-gateway serve; upstream NAME at http://127.0.0.1:PORT/servers/NAME/mcp
  [ -x "$GATEWAY_BIN" ] || { echo "gateway binary not found: $GATEWAY_BIN (set GATEWAY_BIN or cargo build)" >&2; return 1; }
  start_bg gateway "$1" "$GATEWAY_BIN" serve --config "$2"
}

# gateway_wanted MODE: MODE is on|off|auto; auto = on when the binary exists and has `serve`
# (a shared CARGO_TARGET_DIR may hold an older build without it).
gateway_wanted() {
  case "$1" in
    on) return 0 ;;
    off) return 1 ;;
    auto) [ -x "$GATEWAY_BIN" ] && "$GATEWAY_BIN" serve --help >/dev/null 2>&1 ;;
    *) echo "gateway mode must be on, off or auto, not '$1'" >&2; exit 2 ;;
  esac
}

# Client runs' tally: a run prints FAIL/SKIP lines and one "RESULT ...: P passed, F failed" line.
total_pass=0; total_fail=0; runs_failed=0
tally_run() { # OUTPUT EXIT_CODE -> prints its failures and result line, adds to the totals
  local out=$1 rc=$2
  echo "$out" | grep -E '^(FAIL|SKIP)' | sed 's/^/    /' || true
  local line; line="$(echo "$out" | grep '^RESULT' | tail -1)"
  echo "  ${line:-RESULT missing (exit $rc): $(echo "$out" | tail -3 | tr '\n' ' ')}"
  local p f
  p="$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')"
  f="$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')"
  total_pass=$((total_pass + ${p:-0})); total_fail=$((total_fail + ${f:-1}))
  [ "$rc" = 0 ] || runs_failed=$((runs_failed + 1))
}
