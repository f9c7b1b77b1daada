#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 1m; CI: 5s). A crasher
# is written to the package's testdata/fuzz/<Target>/ and fails the run:
# commit it, it becomes a seed that `go test` replays from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-1m}
targets=(
  "./internal/strictjson FuzzDecode"
  "./plugins/oauth FuzzRedirectMatches"
  "./plugins/oauth FuzzClientMetadata"
  "./plugins/oauth FuzzCIMDURL"
  "./platform FuzzToolArguments"
  "./platform FuzzMCPFraming"
  "./platform FuzzOAuthEndpoints"
  "./platform FuzzBearerToken"
)
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  printf '== fuzz %s %s (%s)\n' "$pkg" "$name" "$fuzztime" >&2
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
done
