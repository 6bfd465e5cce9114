#!/usr/bin/env bash
# The README's test command (`npm test`): type check, lint, then the whole test suite against a real
# Kafka broker and Redis, which it provides itself when none is configured (see docs/development.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$root/scripts/run-node.sh" "$root/scripts/test.ts" "$@"
