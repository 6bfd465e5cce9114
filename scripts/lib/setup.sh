# shellcheck shell=bash
# Puts a suitable Node first on PATH and makes node_modules match package-lock.json.
# Sourced by every entry script (test, demo, bench, worker), so each works on a bare host.
# shellcheck source=node.sh
source "$(dirname "${BASH_SOURCE[0]}")/node.sh"

weir_setup() {
  local root node_dir stamp want
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  node_dir="$(weir_node_dir)" || exit 1
  [ -n "$node_dir" ] || weir_die "no usable Node.js found"
  export PATH="$node_dir:$PATH"
  export WEIR_NODE="$node_dir/node"
  stamp="$root/node_modules/.weir-install-stamp"
  want="$(node -v) $(cksum <"$root/package-lock.json" | awk '{print $1}')"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    weir_log "installing npm dependencies (npm ci) with Node $(node -v)"
    (cd "$root" && npm ci --no-fund --no-audit --loglevel=error >&2) || weir_die "npm ci failed"
    printf '%s' "$want" >"$stamp"
  fi
}
