package platform_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/faultproxy"
	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/internal/testpg"
	"github.com/picard-mcp/picard/vectorstore"
)

// newProxy puts a faultproxy in front of target for the test.
func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestVectorStoreOutage(t *testing.T) {
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
	ctx := context.Background()
	store, err := vectorstore.OpenPG(ctx, vectorstore.PGConfig{DSN: u.String(), Schema: testpg.Schema(t, dsn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	s := picardtest.Start(t, picardtest.Options{Vectors: store})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	before := submit(t, s, alice, map[string]any{"text": "The harbour lighthouse was repainted red last spring"})
	if got := search(t, s, alice, "lighthouse repainted", nil); len(got) != 1 {
		t.Fatalf("search before the outage: %+v", got)
	}

	proxy.Down()
	during := submit(t, s, alice, map[string]any{"text": "We hiked up the volcano at dawn and saw the crater lake"})
	if got := list(t, s, alice, nil); len(got) != 2 {
		t.Fatalf("the write during the outage must be stored: %+v", got)
	}
	r := s.Tool(alice, "query_memory", map[string]any{"query": "volcano crater"})
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "search temporarily unavailable") {
		t.Fatalf("search during the outage: want 503 search temporarily unavailable, got %d %s", r.Status, r.Body)
	}
	if r := s.Do("GET", "/readyz", nil, nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("readyz during the outage: %d %s", r.Status, r.Body)
	}
	if r := s.Tool(alice, "delete_memory", map[string]any{"memory_id": before.ID}); r.Status != http.StatusOK {
		t.Fatalf("delete during the outage: %d %s", r.Status, r.Body)
	}

	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	// no manual step: the reconciler indexes the pending memory and applies
	// the tombstone by itself
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.Tool(alice, "query_memory", map[string]any{"query": "volcano crater lake"})
		if r.Status == http.StatusOK && strings.Contains(string(r.Body), during.ID) {
			// the deleted memory is gone from the keyword index too (dense
			// search is off with the local embedder: no vectors are kept)
			kw, err := store.Keywords()
			if err != nil {
				t.Fatal(err)
			}
			n, err := kw.KeywordCount(ctx)
			if err == nil && n == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory written during the outage never became searchable: %d %s", r.Status, r.Body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if r := s.Do("GET", "/readyz", nil, nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after the outage: %d %s", r.Status, r.Body)
	}
}
