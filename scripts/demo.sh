#!/usr/bin/env bash
# The README's demo command (`npm run demo`).
set -euo pipefail
exec bash "$(dirname "$0")/run-node.sh" scripts/demo.ts "$@"
