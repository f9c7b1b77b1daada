// Package testpg gives tests the PostgreSQL+pgvector database started by
// scripts/pgvector-up.sh. Without PICARD_TEST_PG_DSN a test skips, except
// under CI=true where a missing database fails the run.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// Schema creates a fresh schema for one test and drops it afterwards.
func Schema(tb testing.TB, dsn string) string {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	name := "t_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Logf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Logf("drop schema %s: %v", name, err)
		}
	})
	return name
}
