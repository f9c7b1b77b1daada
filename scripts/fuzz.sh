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
# Go 1.26's fuzz coordinator can report "context deadline exceeded" at the
# end of -fuzztime on a loaded machine although no input failed (Go issue
# 75804, fixed in Go 1.27). Such a run wrote no crasher: it is run again
# (twice at most). A run that writes a crasher, or fails any other way,
# fails at once.
crashers() { { find "${1#./}/testdata/fuzz/$2" -type f 2>/dev/null || true; } | sort; }
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  for attempt in 1 2 3; do
    printf '== fuzz %s %s (%s)\n' "$pkg" "$name" "$fuzztime" >&2
    before=$(crashers "$pkg" "$name")
    out=$(mktemp)
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; then
      rm -f "$out"
      break
    fi
    if [ "$(crashers "$pkg" "$name")" = "$before" ] && grep -q '^    context deadline exceeded$' "$out" && [ "$attempt" -lt 3 ]; then
      printf '== fuzz %s: the Go fuzz coordinator stopped with its own deadline and no crasher (Go issue 75804); again\n' "$name" >&2
      rm -f "$out"
      continue
    fi
    rm -f "$out"
    exit 1
  done
done
