# Picard — see README.md. `make run` serves with embedded defaults;
# `make test` provisions PostgreSQL+pgvector and runs every test.
.PHONY: run build test lint bench locomo fmt fuzz reliability loadbench

run:
	go run . serve

build:
	go build -o bin/picard .

test:
	bash scripts/test.sh

lint:
	gofmt -l . | (! grep .) && go vet ./... && bash scripts/lint.sh

bench:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/bench

locomo:
	go run ./cmd/locomo -data ../shared/data/locomo-dev

fmt:
	gofmt -w .

# every fuzz target for FUZZTIME each (default 1m); CI runs 5s each
fuzz:
	bash scripts/fuzz.sh

# fault scenarios at full length (kill -9 under 20 writers, 30 s pgvector
# outage, 50 connections x 120 s soak); CI runs a short form in go test
reliability:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/reliability -clients 20 -duration 10s -outage 30s -soak 120s -soak-clients 50
# MCP hot-path load bench against a bare mcp-go server (see README,
# "Performance"). Pass flags with ARGS, e.g. make loadbench ARGS="-n 10000 -d 5s".
loadbench:
	go run ./cmd/loadbench $(ARGS)
