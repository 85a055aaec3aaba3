#!/usr/bin/env bash
# Install the interop/conformance test tools into project-local, gitignored dirs; idempotent and fast
# when already installed (a stamp of the pin files is compared, nothing is downloaded).
#
#   .ci/venv/  Python venv with the pins of scripts/interop/requirements.txt
#              (official MCP Python SDK `mcp`, `faker`, `phonenumbers`, ...)
#   .ci/node/  npm project from scripts/interop/node/package{,-lock}.json:
#              @modelcontextprotocol/server-everything, @modelcontextprotocol/conformance, node@22
#              (the conformance CLI needs Node >= 22; the `node` package ships the binary),
#              and for the code generator's tests typescript, @types/node, @modelcontextprotocol/sdk
#   redis-server, redis-cli  Debian package redis-server (the Redis vault's tests)
#
# Needs: python3 (>= 3.11) with venv, npm. On a bare Debian machine it apt-installs python3-venv / npm
# when they are missing and it runs as root. Prints the installed versions; `source scripts/interop/env.sh`
# gives the paths ($PY, $NODE, $CONFORMANCE, $EVERYTHING).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv=.ci/venv
nodedir=.ci/node
req=scripts/interop/requirements.txt
pkg=scripts/interop/node

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-test-deps: apt-get install $*" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "install-test-deps: missing $*; install it (root + apt-get needed to do it here)" >&2
    return 1
  fi
}

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# ---- Redis (the Redis vault's tests start their own redis-server on a free port)
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  echo "redis: $(redis-server --version | cut -d' ' -f3)"
else
  apt_install redis-server
  # The Debian package starts a system service; the tests run their own servers.
  (service redis-server stop || true) >/dev/null 2>&1
  echo "redis: installed $(redis-server --version | cut -d' ' -f3)"
fi

# ---- Python
py_stamp="$(stamp_of "$req")"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$py_stamp" ]; then
  echo "python: up to date ($venv)"
else
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "install-test-deps: python3 >= 3.11 required, found $(python3 --version 2>&1)" >&2; exit 1; }
  rm -rf "$venv"
  python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; apt_install python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
  echo "$py_stamp" > "$venv/.stamp"
  echo "python: installed into $venv"
fi

# ---- Node
node_stamp="$(stamp_of "$pkg/package.json" "$pkg/package-lock.json")"
if [ -x "$nodedir/node_modules/node/bin/node" ] && [ "$(cat "$nodedir/.stamp" 2>/dev/null)" = "$node_stamp" ]; then
  echo "node: up to date ($nodedir)"
else
  command -v npm >/dev/null || apt_install nodejs npm
  mkdir -p "$nodedir"
  cp "$pkg/package.json" "$pkg/package-lock.json" "$nodedir/"
  (cd "$nodedir" && npm ci --no-audit --no-fund --loglevel=error)
  [ -x "$nodedir/node_modules/node/bin/node" ] \
    || { echo "install-test-deps: node@22 binary missing (did npm skip the 'node' package's preinstall script?)" >&2; exit 1; }
  echo "$node_stamp" > "$nodedir/.stamp"
  echo "node: installed into $nodedir"
fi

# ---- What is there
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
print("  python", ".".join(map(str, __import__("sys").version_info[:3])),
      " ".join(f"{p}=={version(p)}" for p in ("mcp", "mcp-types", "faker", "phonenumbers")))
PY
ver() { sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$nodedir/node_modules/$1/package.json" | head -1; }
echo "  node $("$nodedir/node_modules/node/bin/node" --version)" \
  "@modelcontextprotocol/server-everything@$(ver @modelcontextprotocol/server-everything)" \
  "@modelcontextprotocol/conformance@$(ver @modelcontextprotocol/conformance)" \
  "@modelcontextprotocol/sdk@$(ver @modelcontextprotocol/sdk)" \
  "typescript@$(ver typescript)" "@types/node@$(ver @types/node)"
