// Package testpg gives tests the PostgreSQL+pgvector database started by
// scripts/pgvector-up.sh. Without PICARD_TEST_PG_DSN a test skips, except
// under CI=true where a missing database fails the run.
package testpg

import (
	"os"
	"testing"
)

// DSN returns the test database DSN or skips (fails under CI).
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("PICARD_TEST_PG_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("PICARD_TEST_PG_DSN is not set but CI=true: the pgvector database is required (run scripts/test.sh)")
		}
		tb.Skip("PICARD_TEST_PG_DSN not set; run scripts/test.sh to start PostgreSQL with pgvector")
	}
	return dsn
}
