#!/usr/bin/env bash
# What one relayed call costs the gateway process, counted from outside with `perf stat`: CPU
# time and context switches per call, for several builds or settings of `serve` in front of the
# same upstream, driven by the same client (the rmcp client of benches/compare, or with --python
# the Python SDK's), interleaved in rounds.
# Latency figures on a shared 2-vCPU machine move by more than most changes do; these counts
# move far less, so they show whether a change removed work or wake-ups.
#
#   bash scripts/bench-wakeups.sh [--python] [--floor] [--calls N] [--rounds N] [--secs S] NAME=BIN[:ENV ...] ...
#     NAME=BIN            a `serve` binary to measure (this build: target/release/mcp-pii-gateway)
#     NAME=BIN:ENV        the same, started with the space-separated environment assignments ENV
#     --python            the Python SDK client and upstream of `bench-compare.sh --python` (4 KB
#                         results with four values); sequential calls only
#     --floor             also measure the TCP forwarder of `bench-compare.sh --floor`
#     --calls N           sequential calls per target per round (default 3000; 1000 with --python)
#     --rounds N          rounds (default 3)
#     --secs S            seconds of the 16-session closed loop per target per round (default 4)
#
# Needs `perf` (Debian: linux-perf) with permission to count another process's events.
# Prints one line per target, round and mode: client p50 (sequential) or calls/s (16 sessions),
# then CPU µs and context switches per call.
set -euo pipefail
cd "$(dirname "$0")/.."
calls="" rounds=3 secs=4 targets=() python=0 floor=0
while [ $# -gt 0 ]; do
  case $1 in
    --python) python=1 ;;
    --floor) floor=1 ;;
    --calls) calls=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --secs) secs=$2; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || { echo "usage: $0 [options] NAME=BIN[:ENV] ..." >&2; exit 2; }
[ -n "$calls" ] || { [ $python = 1 ] && calls=1000 || calls=3000; }
if [ $python = 1 ]; then
  py=.ci/venv/bin/python
  [ -x "$py" ] || py=.bench/venv/bin/python
  [ -x "$py" ] || { echo "no Python SDK venv: run bash scripts/bench-compare.sh --python once" >&2; exit 2; }
fi
command -v perf > /dev/null || { echo "perf is not installed (Debian: apt install linux-perf)" >&2; exit 2; }

cargo build --release --locked --example rmcp_upstream
client=$(cargo bench --locked --bench compare --no-run --message-format json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "compare" and m.get("executable"):
        print(m["executable"])')
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
run=.bench/wakeups
rm -rf "$run"; mkdir -p "$run"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1; see $run/*.log" >&2; exit 1
}

up=$(free_port)
if [ $python = 1 ]; then
  "$py" benches/compare/py_upstream.py --port "$up" > "$run/upstream.out" 2> "$run/upstream.log" &
else
  "$target_dir/release/examples/rmcp_upstream" http "127.0.0.1:$up" > "$run/upstream.out" 2> "$run/upstream.log" &
fi
pids+=($!)
wait_port "$up"
declare -A url pid
names=()
if [ $floor = 1 ]; then
  p=$(free_port)
  "$client" forward "127.0.0.1:$p" "127.0.0.1:$up" > "$run/forwarder.out" 2> "$run/forwarder.log" &
  pid[forwarder]=$! url[forwarder]=http://127.0.0.1:$p/mcp
  pids+=($!)
  names+=(forwarder)
  wait_port "$p"
fi
for t in "${targets[@]}"; do
  name=${t%%=*} rest=${t#*=}
  bin=${rest%%:*} envs=""
  [ "$bin" = "$rest" ] || envs=${rest#*:}
  p=$(free_port)
  printf 'listen = "127.0.0.1:%s"\n[[servers]]\nname = "up"\nurl = "http://127.0.0.1:%s/mcp"\n' "$p" "$up" > "$run/$name.toml"
  # shellcheck disable=SC2086
  env $envs "$bin" serve --config "$run/$name.toml" > "$run/$name.out" 2> >(cat > "$run/$name.log") &
  pid[$name]=$! url[$name]=http://127.0.0.1:$p/servers/up/mcp
  pids+=($!)
  names+=("$name")
  wait_port "$p"
done
modes=(sequential 16-sessions)
[ $python = 0 ] || modes=(sequential)

echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs; $( [ $python = 1 ] && echo "Python SDK, $calls sequential calls" || echo "$calls sequential calls, then 16 sessions for $secs s")"
printf '%-5s %-24s %-10s %16s %14s %18s\n' round target mode client "CPU µs/call" "switches/call"
for round in $(seq 1 "$rounds"); do
  for name in "${names[@]}"; do
    for mode in "${modes[@]}"; do
      if [ $mode = sequential ]; then
        args=(--calls "$calls" --rounds 1 --sessions "")
      else
        args=(--calls 1 --rounds 1 --sessions 16 --secs "$secs")
      fi
      perf stat -x, -e task-clock,context-switches -p "${pid[$name]}" -o "$run/stat.txt" &
      perf=$!
      sleep 0.2
      if [ $python = 1 ]; then
        row=$("$py" benches/compare/py_client.py --target "$name=${url[$name]}" --calls "$calls" --rounds 1 2>/dev/null | tail -1)
      else
        row=$("$client" --target "$name=${url[$name]}" "${args[@]}" 2>/dev/null | tail -1)
      fi
      kill -INT $perf; wait $perf 2>/dev/null || true
      # The client's row: | name | p50 | p99 | ... [| calls/s | ratio |]
      if [ $mode = sequential ]; then
        # The clients warm up first (200 calls, 100 with --python), inside the counted window.
        n=$(( calls + (python == 1 ? 100 : 200) )) shown="p50 $(echo "$row" | cut -d'|' -f3 | tr -d ' ') µs"
      else
        cps=$(echo "$row" | awk -F'|' '{print $(NF-2)}' | tr -d ' ')
        n=$(( cps * secs )) shown="$cps calls/s"
      fi
      ms=$(grep task-clock "$run/stat.txt" | cut -d, -f1)
      cs=$(grep context-switches "$run/stat.txt" | cut -d, -f1)
      awk -v r="$round" -v t="$name" -v m="$mode" -v s="$shown" -v ms="$ms" -v cs="$cs" -v n="$n" \
        'BEGIN { printf "%-5s %-24s %-10s %16s %14.0f %18.1f\n", r, t, m, s, ms * 1000 / n, cs / n }'
    done
  done
done
