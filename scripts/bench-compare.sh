#!/usr/bin/env bash
# Side-by-side latency and throughput, as a user measures them: one upstream, reached directly,
# through mcp-proxy 0.6.0 and through this gateway (`serve`, release build, default logging), by
# the same real client, interleaved in one run. Prints a Markdown table.
#
#   bash scripts/bench-compare.sh [options]
#     --python            Python SDK client and Python SDK upstream (4 KB results with four
#                         values, sessions, application/json) instead of rmcp on both ends
#     --calls N           sequential calls per target per round (default 2000; 1000 with --python)
#     --rounds N          rounds (default 5)
#     --sessions A,B      concurrent sessions for the throughput runs (default 16,64; rmcp only)
#     --secs S            seconds per target per throughput run (default 10)
#     --no-proxy          leave out mcp-proxy
#     --floor             add a TCP forwarder (bytes copied both ways, nothing parsed): what one
#                         more process on the path costs on this machine, the floor of any proxy
#     --also NAME=ENV     one more gateway process, started with the environment assignments in
#                         ENV (space-separated), e.g. --also 'gateway warn=RUST_LOG=warn'
#     --also-bin NAME=BIN one more gateway process running another build of the gateway (say,
#                         the previous commit's, built aside), e.g. --also-bin 'before=/tmp/gw-old'
#     --serve-args ARGS   extra arguments of every `serve` (e.g. '--runtime per-core')
#     --also-args NAME=ARGS one more gateway process of this build with extra `serve` arguments
#
# Installs what it needs into .bench/ (git-ignored): mcp-proxy 0.6.0 with `cargo install`, and for
# --python the Python packages of scripts/interop/requirements.txt in a venv, unless .ci/venv exists.
# Both proxies' stderr go through a pipe to a file in .bench/run/, as under a process supervisor.
# Not run by CI: it takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench=$root/.bench
run=$bench/run
rm -rf "$run"
mkdir -p "$run"

python=0 calls="" rounds=5 sessions=16,64 secs=10 proxy=1 floor=0
also=() also_bin=() also_args=() serve_args=""
while [ $# -gt 0 ]; do
  case $1 in
    --python) python=1 ;;
    --calls) calls=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --secs) secs=$2; shift ;;
    --no-proxy) proxy=0 ;;
    --floor) floor=1 ;;
    --also) also+=("$2"); shift ;;
    --also-bin) also_bin+=("$2"); shift ;;
    --also-args) also_args+=("$2"); shift ;;
    --serve-args) serve_args=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$calls" ] || { [ $python = 1 ] && calls=1000 || calls=2000; }

mcp_proxy=$bench/tools/bin/mcp-proxy
if [ $proxy = 1 ] && [ ! -x "$mcp_proxy" ]; then
  echo "== installing mcp-proxy 0.6.0 into $bench/tools"
  cargo install --locked --version 0.6.0 mcp-proxy --root "$bench/tools"
fi
if [ $python = 1 ]; then
  py=$root/.ci/venv/bin/python
  if [ ! -x "$py" ]; then
    py=$bench/venv/bin/python
    if [ ! -x "$py" ]; then
      echo "== installing the Python SDK into $bench/venv"
      python3 -m venv "$bench/venv"
      "$bench/venv/bin/pip" install -q -r scripts/interop/requirements.txt
    fi
  fi
fi

echo "== building (release)"
cargo build --release --locked --bin mcp-pii-gateway --example rmcp_upstream
compare=$(cargo bench --locked --bench compare --no-run --message-format=json |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "compare":
        print(m["executable"])')
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
gateway=$target_dir/release/mcp-pii-gateway

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1; see $run/*.log" >&2
  exit 1
}
# start NAME CMD...: runs CMD with stderr through a pipe into $run/NAME.log.
start() {
  local name=$1; shift
  "$@" > "$run/$name.out" 2> >(cat > "$run/$name.log") &
  pids+=($!)
}

up_port=$(free_port)
if [ $python = 1 ]; then
  start upstream "$py" benches/compare/py_upstream.py --port "$up_port"
  tool=report
else
  start upstream "$target_dir/release/examples/rmcp_upstream" http "127.0.0.1:$up_port"
  tool=echo
fi
wait_port "$up_port"
up_url=http://127.0.0.1:$up_port/mcp
targets=(--target "direct=$up_url")

if [ $proxy = 1 ]; then
  mp_port=$(free_port)
  cat > "$run/mcp-proxy.toml" <<TOML
[proxy]
name = "bench"
[proxy.listen]
host = "127.0.0.1"
port = $mp_port
[[backends]]
name = "up"
transport = "http"
url = "$up_url"
TOML
  start mcp-proxy "$mcp_proxy" --config "$run/mcp-proxy.toml"
  wait_port "$mp_port"
  targets+=(--target "mcp-proxy 0.6.0=http://127.0.0.1:$mp_port/#up/$tool")
fi

if [ $floor = 1 ]; then
  fw_port=$(free_port)
  start forwarder "$compare" forward "127.0.0.1:$fw_port" "127.0.0.1:$up_port"
  wait_port "$fw_port"
  targets+=(--target "tcp forwarder=http://127.0.0.1:$fw_port/mcp")
fi

# gateway NAME BIN ARGS [ENV...]: one `serve` process of BIN, with the extra arguments ARGS, in
# front of the upstream.
gateway() {
  local name=$1 bin=$2 args=$3; shift 3
  local port; port=$(free_port)
  local file=$run/gateway-$port.toml
  printf 'listen = "127.0.0.1:%s"\n[[servers]]\nname = "up"\nurl = "%s"\n' "$port" "$up_url" > "$file"
  # shellcheck disable=SC2086
  start "gateway-$port" env "$@" "$bin" serve --config "$file" $args
  wait_port "$port"
  targets+=(--target "$name=http://127.0.0.1:$port/servers/up/mcp")
}
gateway "mcp-pii-gateway" "$gateway" "$serve_args"
for a in "${also[@]}"; do
  # shellcheck disable=SC2086
  gateway "${a%%=*}" "$gateway" "$serve_args" ${a#*=}
done
for a in "${also_args[@]}"; do
  gateway "${a%%=*}" "$gateway" "${a#*=}"
done
for a in "${also_bin[@]}"; do
  gateway "${a%%=*}" "${a#*=}" "$serve_args"
done

echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -sr)"
if [ $python = 1 ]; then
  "$py" benches/compare/py_client.py "${targets[@]}" --calls "$calls" --rounds "$rounds"
else
  "$compare" "${targets[@]}" --calls "$calls" --rounds "$rounds" --sessions "$sessions" --secs "$secs"
fi
