#!/usr/bin/env bash
# Runs golangci-lint with the repository's .golangci.yml, installing the
# pinned version through the Go module proxy when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.15.0
bin="$(go env GOPATH)/bin/golangci-lint"
if ! [ -x "$bin" ] || ! "$bin" version 2>/dev/null | grep -q "${version#v}"; then
  echo "installing golangci-lint $version (first run only)" >&2
  go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
# several checkouts on one machine share the linter's lock: wait for it
"$bin" run --allow-serial-runners ./...
