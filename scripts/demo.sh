#!/usr/bin/env bash
# The README's demo command (`npm run demo`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$root/scripts/run-node.sh" "$root/scripts/demo.ts" "$@"
