package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/testpg"
)

// TestReliabilityShort is `make reliability` in a short, fixed-length
// form: kill -9 under writes (embedded and pgvector), a pgvector outage
// under load, Fernet key rotation under writes, and a soak; every acknowledged write must be there and
// searchable afterwards, with no 5xx and no panic.
func TestReliabilityShort(t *testing.T) {
	dsn := testpg.DSN(t)
	var out bytes.Buffer
	ok, err := Run(context.Background(), &out, Options{
		DSN: dsn, Clients: 10, SoakConn: 10, Duration: 3 * time.Second, Outage: 5 * time.Second, Soak: 10 * time.Second, Dir: t.TempDir(),
	})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("a scenario lost acknowledged writes, answered 5xx, panicked or could not run (table above)")
	}
	for _, s := range []string{"kill -9 under writes (embedded)", "kill -9 under writes (pgvector)", "vector store outage (pgvector)", "fernet key rotation under writes", "soak"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("scenario %q missing from the table", s)
		}
	}
}
