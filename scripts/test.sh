#!/usr/bin/env bash
# npm test: the whole suite. Starts the local database cluster (scripts/cluster.sh) unless it
# is already running, runs unit and integration tests, and stops the cluster again if it
# started it. Extra arguments go to mocha (e.g. npm test -- --grep routing).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

[ -d node_modules ] || npm install --no-audit --no-fund || exit 1
# The CLI runs the compiled library (bin/shardkit.js -> dist/): build what the tests run.
npm run --silent build || exit 1

started=0
if ! bash scripts/cluster.sh status >/dev/null 2>&1; then
  started=1
  bash scripts/cluster.sh up || { bash scripts/cluster.sh down; exit 1; }
fi
stop_cluster() { if [ "$started" = 1 ]; then bash scripts/cluster.sh down; fi; }
trap stop_cluster EXIT

# A test that leaves work running keeps mocha from exiting; fail after 25 minutes instead of
# hanging CI (the suite takes 12-16 minutes on a 2-core machine).
timeout --kill-after=10 1500 node_modules/.bin/mocha 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' "$@"
status=$?
[ "$status" = 124 ] && echo "npm test: mocha did not exit within 25 minutes (a test left work running)" >&2
exit "$status"
