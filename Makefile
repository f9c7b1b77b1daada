# Picard — see README.md. `make run` serves with embedded defaults;
# `make test` provisions PostgreSQL+pgvector and runs every test.
.PHONY: run build test lint bench locomo fmt loadbench

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

# MCP hot-path load bench against a bare mcp-go server (see README,
# "Performance"). Pass flags with ARGS, e.g. make loadbench ARGS="-n 10000 -d 5s".
loadbench:
	go run ./cmd/loadbench $(ARGS)
