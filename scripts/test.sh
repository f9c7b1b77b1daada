#!/usr/bin/env bash
# The README's test command (`make test`) runs this. It provisions what the
# tests need on a fresh Debian 12 machine (PostgreSQL 15 + pgvector, the
# linter), then runs the quality gates and every test with the race
# detector. Idempotent: a second run reuses what the first installed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

# Debian's package lists: refresh them when something must be installed
# (a fresh machine may have none, or old ones naming versions the mirror
# no longer has)
if ! [ -x /usr/bin/chromium ] || ! [ -f /usr/share/postgresql/15/extension/vector.control ] \
   || ! [ -f /usr/include/postgresql/15/server/postgres.h ] || [ -n "${PICARD_APT_UPDATE:-}" ]; then
  log "apt-get update"
  apt-get update -q >&2
fi

log "PostgreSQL + pgvector"
if ! PICARD_TEST_PG_DSN=$(bash scripts/pgvector-up.sh); then
  echo "test.sh: could not start PostgreSQL with pgvector (see above)" >&2
  exit 1
fi
export PICARD_TEST_PG_DSN
log "pgvector test database: $PICARD_TEST_PG_DSN"

log "Chromium (headless browser tests)"
if ! [ -x /usr/bin/chromium ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2 || {
    echo "test.sh: could not install chromium" >&2; exit 1; }
fi

log "npm packages for e2e/ (official MCP SDK, Inspector CLI, conformance runner, Node 22, playwright-core)"
if ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: npm is required for the e2e tests" >&2; exit 1
fi
if ! cmp -s e2e/package-lock.json e2e/node_modules/.picard-installed 2>/dev/null; then
  (cd e2e && npm ci --no-audit --no-fund >&2 && cp package-lock.json node_modules/.picard-installed)
fi

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi

log "go vet"
go vet ./...

log "golangci-lint"
bash scripts/lint.sh

log "go test -race (every package)"
mkdir -p .test-output
status=0
go test -race -count=1 -timeout 20m -v ./... > .test-output/go-test.log 2>&1 || status=$?
grep -E '^(ok|FAIL|---|panic:|\?)' .test-output/go-test.log | grep -vE '^\s' | grep -vE '^--- (PASS|SKIP)' || true
passed=$(grep -cE '^\s*--- PASS' .test-output/go-test.log || true)
failed=$(grep -cE '^\s*--- FAIL' .test-output/go-test.log || true)
skipped=$(grep -cE '^\s*--- SKIP' .test-output/go-test.log || true)
pg=$(grep -E '^\s*--- PASS' .test-output/go-test.log | grep -ciE 'pgvector|/pg|PG' || true)
if [ "$status" -ne 0 ]; then
  echo "go test failed; full log in .test-output/go-test.log" >&2
  grep -E -B2 -A20 '^\s*--- FAIL|^panic:' .test-output/go-test.log | head -200 >&2 || true
fi
if [ "$status" -eq 0 ]; then
  log "fuzz targets, ${FUZZTIME:-5s} each (make fuzz runs them longer)"
  FUZZTIME=${FUZZTIME:-5s} bash scripts/fuzz.sh > .test-output/fuzz.log 2>&1 || {
    status=$?; echo "fuzzing found a failure; see .test-output/fuzz.log and testdata/fuzz/" >&2
    grep -E -A15 -- '--- FAIL|panic:' .test-output/fuzz.log | head -60 >&2 || true; }
fi
echo "tests run against pgvector: $pg passed"
echo "go: $passed passed, $failed failed, $skipped skipped"
exit "$status"
