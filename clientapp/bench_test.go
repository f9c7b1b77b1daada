package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkPages measures whole pages (session, DB, MCP to an in-process
// Picard, template) beside the bare MCP call the page is built on, in the
// same run: compare the two, not absolute numbers.
//
//	go test -run '^$' -bench Pages ./clientapp/
func BenchmarkPages(b *testing.B) {
	e := start(b, false, nil, nil)
	e.register()
	br := e.browser()
	br.signup("bench")
	br.connect()
	for i := range 20 {
		br.create(fmt.Sprintf("benchmark memory %d about sailing", i), "private", "")
	}
	u, _ := e.app.store.UserByUsername(context.Background(), "bench")
	for _, path := range []string{"/memories", "/", "/search?query=sailing"} {
		b.Run("page "+path, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(path); p.Status != http.StatusOK {
					b.Fatalf("%s: %d", path, p.Status)
				}
			}
		})
	}
	b.Run("bare MCP get_memories", func(b *testing.B) {
		for b.Loop() {
			if err := e.app.mcp.Call(context.Background(), u.ID, "get_memories", map[string]any{"limit": 20}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
