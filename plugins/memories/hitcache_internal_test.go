package memories

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/platform/policy"
)

// TestCachedHitExpiresOnUse: a memory kept in the hit cache stays current
// as long as nothing writes (its expiry is no write), so every use checks
// its expiry against the clock: once past it, nobody sees it, the owner
// included.
func TestCachedHitExpiresOnUse(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	reg := policy.NewRegistry()
	if err := policy.RegisterBuiltins(reg); err != nil {
		t.Fatal(err)
	}
	s := &Service{policies: reg, now: func() time.Time { return now }}
	hc := newHitCache(nil, nil)
	exp := now.Add(time.Minute)
	hc.put(&cachedHit{m: Memory{ID: "m1", OwnerID: "alice", Permission: "public", Text: "x", ExpirationDate: &exp}}, dbVersion{data: 1})
	for _, viewer := range []string{"alice", "bob"} {
		h, ok := hc.get("m1", dbVersion{data: 1})
		if !ok || !s.memoryVisible(policy.Viewer{UserID: viewer}, &h.m) {
			t.Fatalf("%s: the memory is not served before its expiry (cached %v)", viewer, ok)
		}
	}
	now = now.Add(2 * time.Minute)
	for _, viewer := range []string{"alice", "bob"} {
		if h, ok := hc.get("m1", dbVersion{data: 1}); !ok || s.memoryVisible(policy.Viewer{UserID: viewer}, &h.m) {
			t.Fatalf("%s: the memory is served after its expiry (cached %v)", viewer, ok)
		}
	}
}

// TestHitCacheBounded: a memory put again (read at a new data version) is
// counted once; past the byte bound the least recently used memories go,
// never the whole cache.
func TestHitCacheBounded(t *testing.T) {
	hc := newHitCache(nil, nil)
	hit := func(id string, chars int) *cachedHit {
		return &cachedHit{m: Memory{ID: id, Text: strings.Repeat("x", chars)}}
	}
	for v := range int64(10_000) {
		hc.put(hit("m", 1000), dbVersion{data: v})
	}
	if _, ok := hc.get("m", dbVersion{data: 9_999}); !ok || hc.bytes.Load() > 2000 {
		t.Fatalf("one memory re-put 10,000 times: cached=%v, %d bytes counted", ok, hc.bytes.Load())
	}
	for i := range 2 * hitCacheBytes / 100_000 {
		hc.put(hit(fmt.Sprint("m", i), 100_000), dbVersion{data: 1})
	}
	if b := hc.bytes.Load(); b > hitCacheBytes || hc.c.Len() < hitCacheBytes/120_000 {
		t.Fatalf("past the bound: %d bytes in %d memories", b, hc.c.Len())
	}
}
