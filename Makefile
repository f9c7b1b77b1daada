# Picard — see README.md. `make run` serves with embedded defaults;
# `make test` provisions PostgreSQL+pgvector and runs every test.
.PHONY: run build test lint bench bench-100k bench-store locomo locomo-fused fmt fuzz reliability loadbench

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
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/bench $(ARGS)

# evidence recall@5/@10 on the LoCoMo dev split, embedded and pgvector
locomo:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/locomo -data ../shared/data/locomo-dev

# keyword, dense and fused recall side by side on the dev split, with
# stand-in semantic embedders served on loopback through the OpenAI API:
# simulated (independent errors, about the published recall of a real
# embedder), half simulated half lsa, and lsa alone (keyword's own errors)
locomo-fused:
	go build -o bin/locomo ./cmd/locomo
	for e in "-embedder simulated" "-embedder simulated -sim-lsa 0.5" "-embedder lsa"; do ./bin/locomo -data ../shared/data/locomo-dev -mode compare $$e $(ARGS) | grep -v '^[1-5] '; done

fmt:
	gofmt -w .

# every fuzz target for FUZZTIME each (default 1m); CI runs 5s each
fuzz:
	bash scripts/fuzz.sh

# fault scenarios at full length (kill -9 under 20 writers, 30 s pgvector
# outage, 50 connections x 120 s soak); CI runs a short form in go test
reliability:
	PICARD_TEST_PG_DSN="$$(bash scripts/pgvector-up.sh)" go run ./cmd/reliability -clients 20 -duration 10s -outage 30s -soak 120s -soak-clients 50 -soak-seed 50000 -max-rss-growth 10
# MCP hot-path load bench against a bare mcp-go server (see README,
# "Performance"). Pass flags with ARGS, e.g. make loadbench ARGS="-n 10000 -d 5s".
loadbench:
	go run ./cmd/loadbench $(ARGS)
