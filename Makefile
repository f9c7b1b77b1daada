# Picard — see README.md. `make run` serves with embedded defaults;
# `make test` provisions PostgreSQL+pgvector and runs every test.
.PHONY: run build test lint bench bench-100k bench-store locomo fmt

run:
	go run . serve

build:
	go build -o bin/picard .

test:
	bash scripts/test.sh

lint:
	gofmt -l . | (! grep .) && go vet ./... && bash scripts/lint.sh

# query_memory over MCP, end to end, 10k memories (bench-100k: 100k), both
# backends; prints p50/p99 and req/s at 1 and 50 connections.
bench:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go test -tags bench -run '^TestMCPBench$$' -v -count=1 -timeout 60m ./cmd/bench -args -bench-n 10000

bench-100k:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go test -tags bench -run '^TestMCPBench$$' -v -count=1 -timeout 240m ./cmd/bench -args -bench-n 100000

# the vector stores alone (dense search, no MCP)
bench-store:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/bench

# evidence recall@5/@10 on the LoCoMo dev split, embedded and pgvector
locomo:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/locomo -data ../shared/data/locomo-dev

fmt:
	gofmt -w .
