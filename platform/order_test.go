package platform_test

import (
	"fmt"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/memories"
)

// Memories written faster than the clock's millisecond list newest first in
// the order they were written (random ids used to order such ties by chance,
// which also scrambled temporal context).
func TestSameMillisecondWritesKeepTheirOrder(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	const n = 60
	var ids []string
	sameMillisecond := 0
	var last int64
	for i := range n {
		m, err := s.C.Memories.Submit(t.Context(), alice.ID, memories.SubmitInput{Text: fmt.Sprintf("note %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if !memories.IsUUID(m.ID) || m.ID[14] != '7' {
			t.Fatalf("memory id %q is not a UUID v7", m.ID)
		}
		c := m.Created.UnixMilli()
		if c == last {
			sameMillisecond++
		}
		last = c
		ids = append(ids, m.ID)
	}
	got := list(t, s, alice, map[string]any{"limit": 100})
	if len(got) != n {
		t.Fatalf("want %d memories, got %d", n, len(got))
	}
	for i, m := range got {
		if want := ids[n-1-i]; m.ID != want {
			t.Fatalf("position %d: got %s (%q), want the memory written %d-th (%s); %d writes shared a millisecond with the one before",
				i, m.ID, m.Text, n-i, want, sameMillisecond)
		}
	}
	t.Logf("%d of %d writes shared a millisecond with the one before", sameMillisecond, n)
}
