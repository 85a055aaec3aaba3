# Paths of the test tools installed by scripts/install-test-deps.sh; `source` it (bash).
# Every variable can be overridden from the environment.
_interop_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${INTEROP_ROOT:=$_interop_root}"
: "${PY:=$INTEROP_ROOT/.ci/venv/bin/python}"
: "${NODE:=$INTEROP_ROOT/.ci/node/node_modules/node/bin/node}"
: "${CONFORMANCE:=$INTEROP_ROOT/.ci/node/node_modules/@modelcontextprotocol/conformance/dist/index.js}"
: "${EVERYTHING:=$INTEROP_ROOT/.ci/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js}"
: "${PY_UPSTREAM:=$INTEROP_ROOT/scripts/interop/py_upstream.py}"
# The gateway binary: $GATEWAY_BIN, else the debug build in $CARGO_TARGET_DIR or target/.
: "${GATEWAY_BIN:=${CARGO_TARGET_DIR:-$INTEROP_ROOT/target}/debug/mcp-pii-gateway}"
export INTEROP_ROOT PY NODE CONFORMANCE EVERYTHING PY_UPSTREAM GATEWAY_BIN
unset _interop_root
