#!/usr/bin/env bash
# The README's test command (`npm test`): type check, lint, then the whole test suite against a real
# Kafka broker and Redis, which it provides itself when none is configured (see docs/development.md).
set -euo pipefail
exec bash "$(dirname "$0")/run-node.sh" scripts/test.ts "$@"
