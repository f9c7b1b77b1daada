package platform_test

import (
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/audit"
)

// BenchmarkAccessLog: what recording costs a tool call (Record, on the
// request path) and what the background writer spends per entry (Flush,
// off the request path) and per get_memories call (Flush500CallsOf20:
// divide by 500). Beside them, one get_memories call over REST on
// the same server, for scale:
//
//	go test -run '^$' -bench AccessLog ./platform/
func BenchmarkAccessLog(b *testing.B) {
	s := picardtest.Start(b, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	m := s.Tool(alice, "submit_memory", map[string]any{"text": "a memory to read"}).Map(b)
	id, _ := m["id"].(string)
	e := audit.Entry{MemoryID: id, OwnerID: alice.ID, ActorID: alice.ID, ClientID: "bench", Action: audit.ActionRead}
	b.Run("Record", func(b *testing.B) {
		for b.Loop() {
			s.C.Audit.Record(e)
		}
		_ = s.C.Audit.Flush()
	})
	b.Run("Flush500", func(b *testing.B) {
		batch := make([]audit.Entry, 500)
		for i := range batch {
			batch[i] = e
		}
		for b.Loop() {
			s.C.Audit.Record(batch...)
			if err := s.C.Audit.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Flush500CallsOf20", func(b *testing.B) {
		// what the writer spends per get_memories call: one event listing 20 memories
		ids := make([]string, 20)
		for i := range ids {
			ids[i] = id
		}
		for b.Loop() {
			for range 500 {
				s.C.Audit.RecordCall(e, append([]string(nil), ids...))
			}
			if err := s.C.Audit.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetMemoriesREST", func(b *testing.B) {
		for b.Loop() {
			if r := s.Tool(alice, "get_memories", map[string]any{}); r.Status != 200 {
				b.Fatal(r.Status)
			}
		}
	})
}
