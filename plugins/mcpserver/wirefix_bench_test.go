package mcpserver

import (
	"strings"
	"testing"
)

// BenchmarkWireFixFor is what every POST to /mcp pays to learn that it
// needs no wire fix (a get_memories call), against a resources/read that
// does.
func BenchmarkWireFixFor(b *testing.B) {
	call := []byte(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"submit_memory","arguments":{"text":"` + strings.Repeat("a memory of some length ", 40) + `"}}}`)
	read := []byte(`{"jsonrpc":"2.0","id":12,"method":"resources/read","params":{"uri":"memory://00000000-0000-0000-0000-000000000000"}}`)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"tools-call-1KB", call}, {"resources-read", read}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = wireFixFor(bc.body, "application/json, text/event-stream")
			}
		})
	}
}
