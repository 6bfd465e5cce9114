#!/usr/bin/env bash
# Runs a weir script (TypeScript, run directly by Node 24) after making sure Node and dependencies are there.
# The working directory is left as it is, so relative paths in the arguments keep their meaning.
set -euo pipefail
# shellcheck source=lib/setup.sh
source "$(dirname "$0")/lib/setup.sh"
weir_setup
exec node "$@"
