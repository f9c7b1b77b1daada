package platform_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/internal/testpg"
	"github.com/picard-mcp/picard/platform"
	"github.com/picard-mcp/picard/vectorstore"
)

// healthcheck runs `picard healthcheck --url base` the way the binary does
// (main exits 1 when Run returns an error).
func healthcheck(base string) error {
	return platform.Run([]string{"healthcheck", "--url", base, "--timeout", "10s"})
}

func TestHealthcheckReadyServer(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	if err := healthcheck(s.URL); err != nil {
		t.Fatalf("healthcheck against a ready server: %v", err)
	}
	// a trailing slash on --url is harmless
	if err := healthcheck(s.URL + "/"); err != nil {
		t.Fatalf("healthcheck with a trailing slash: %v", err)
	}
}

func TestHealthcheckStoppedServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	err = healthcheck("http://" + addr)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("healthcheck against a stopped server: want an unreachable error, got %v", err)
	}
}

func TestHealthcheckNotPicard(t *testing.T) {
	// something else answering on the port (a 404 page) is not "ready"
	s := picardtest.Start(t, picardtest.Options{})
	if err := healthcheck(s.URL + "/nothing-here"); err == nil {
		t.Fatal("healthcheck against a 404 page must fail")
	}
}

func TestHealthcheckVectorStoreDown(t *testing.T) {
	dsn := testpg.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, u.Host)
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	store, err := vectorstore.OpenPG(context.Background(), vectorstore.PGConfig{DSN: u.String(), Schema: testpg.Schema(t, dsn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := picardtest.Start(t, picardtest.Options{Vectors: store})

	if err := healthcheck(s.URL); err != nil {
		t.Fatalf("healthcheck before the outage: %v", err)
	}
	proxy.Down()
	err = healthcheck(s.URL)
	if err == nil || !strings.Contains(err.Error(), "vector_store") {
		t.Fatalf("healthcheck with the vector store down: want an error naming vector_store, got %v", err)
	}
	// once the database is back the probe turns healthy again by itself
	// (the pool may first hand out a connection the outage broke)
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for err := healthcheck(s.URL); err != nil; err = healthcheck(s.URL) {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck after the outage: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestHealthcheckIgnoresServerConfiguration(t *testing.T) {
	// the probe runs inside the server's container, with the server's
	// environment: it must neither validate nor use it (no database
	// connections of its own), so a setting the probe cannot satisfy
	// does not make a healthy server look unhealthy
	s := picardtest.Start(t, picardtest.Options{})
	t.Setenv("PICARD_VECTOR_DSN", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	t.Setenv("PICARD_EMBEDDER", "not-an-embedder")
	if err := healthcheck(s.URL); err != nil {
		t.Fatalf("healthcheck with an environment it cannot use: %v", err)
	}
	// while the same environment stops the server itself, naming the variable
	err := platform.Run([]string{"serve", "--http", "127.0.0.1:0", "--dir", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "PICARD_EMBEDDER") {
		t.Fatalf("serve with a bad PICARD_EMBEDDER: want a configuration error naming it, got %v", err)
	}
}
