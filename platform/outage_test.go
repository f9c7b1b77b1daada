package platform_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/internal/testpg"
	"github.com/picard-mcp/picard/vectorstore"
)

// tcpProxy stands between Picard and PostgreSQL. Down closes the listener
// and every connection, so Picard sees exactly what it sees when the
// database server is stopped (connection refused); Up listens again on the
// same port. The real PostgreSQL keeps running for the other tests.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *tcpProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *tcpProxy) Up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

func TestVectorStoreOutage(t *testing.T) {
	dsn := testpg.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, u.Host)
	u.Host = proxy.addr
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

	proxy.Up(t)
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
