#!/usr/bin/env bash
# Runs a weir script (TypeScript, run directly by Node 24) after making sure Node and dependencies are there.
set -euo pipefail
# shellcheck source=lib/setup.sh
source "$(dirname "$0")/lib/setup.sh"
weir_setup
cd "$(dirname "$0")/.."
exec node "$@"
