#!/usr/bin/env bash
# The whole test suite: types, lint, then every test (real sandboxes, real Redis, SQLite and
# PostgreSQL). Ends with one "tests: N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
# The bwrap backend's launcher (a clone that skipped scripts/setup.sh has none yet).
bash scripts/build-launcher.sh || { echo "tests: 0 passed, 1 failed (launcher build: run scripts/setup.sh)"; exit 1; }

npx tsc -p tsconfig.json --noEmit || { echo "tests: 0 passed, 1 failed (type check)"; exit 1; }
npx eslint . || { echo "tests: 0 passed, 1 failed (lint)"; exit 1; }

# The docker backend's tests need Docker's daemon (started here when installed and not running) and
# the backend's local image (built unless it exists; a probe without it reports the backend missing).
if bash scripts/dockerd.sh; then
  npx tsx src/cli/main.ts doctor --build-image >/dev/null 2>&1 || true
fi

# CI runs all that proves the issues, the 5,000-run soak included (minutes); locally: npm run test:soak.
[ "${CI:-}" = true ] && export WARDEN_SOAK=1
report=$(mktemp)
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" || echo "tests: 0 passed, 1 failed (no report)"
rm -f "$report"
exit $status
