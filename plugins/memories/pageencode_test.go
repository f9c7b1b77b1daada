package memories_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/memories"
)

// TestCachedPagesEncodeAsWhole: a get_memories page served from the page
// cache carries its JSON, which the MCP fast path splices into the answer
// as the structured result and, quoted, as the text content. A page made
// again from its cached copy after new memories (refreshPage) reuses the
// encoded memories it kept; its bytes must still be exactly what
// encoding/json gives for the page, and the quoted form exactly that JSON
// as a JSON string. Texts with characters JSON escapes (quotes, <, >, &,
// U+2028, control characters) and ones it does not (accents, emoji);
// pages with and without a next cursor; an old page encoded before the
// refresh (its pieces reused) and one never encoded (not linked: pages
// refreshed again and again while only REST reads them must not hold a
// chain of older pages).
func TestCachedPagesEncodeAsWhole(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	texts := []string{`plain %d`, `"quoted" %d & <b>bold</b>`, "line\u2028sep %d\ttab\x01", `café 😀 %d \ back\slash`}
	n := 0
	add := func(k int) {
		t.Helper()
		for range k {
			r := s.Tool(alice, "submit_memory", map[string]any{"text": fmt.Sprintf(texts[n%len(texts)], n), "permission": "public"})
			if r.Status != 200 {
				t.Fatalf("submit: %d %s", r.Status, r.Body)
			}
			n++
		}
	}
	check := func(t *testing.T, in memories.ListInput, encodeFirst bool) *memories.ListResult {
		t.Helper()
		if !encodeFirst {
			add(1) // the page listed next is made anew, and nobody encodes it
		}
		before := s.C.Memories.PageRefreshes()
		page, err := s.C.Memories.List(alice.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if encodeFirst {
			if _, _, ok := page.Encoded(); !ok {
				t.Fatal("a page of the page cache carries no encoding")
			}
		}
		add(2)
		page, err = s.C.Memories.List(alice.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if s.C.Memories.PageRefreshes() == before {
			t.Fatal("the page was not made from its cached copy; the test does not reach the reuse")
		}
		// the reuse is taken from an encoded old page only: an old page
		// nobody encoded is not linked (no chain of encodings behind
		// pages refreshed while only REST reads them)
		if page.EncodingLinked() != encodeFirst {
			t.Fatalf("refreshed page linked to the old page's encoding: %v, want %v", page.EncodingLinked(), encodeFirst)
		}
		structured, quoted, ok := page.Encoded()
		if !ok {
			t.Fatal("a refreshed page carries no encoding")
		}
		want, err := json.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(structured, want) {
			t.Errorf("page JSON differs from encoding/json's:\n got %s\nwant %s", structured, want)
		}
		wantQ, err := json.Marshal(string(want))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(quoted, wantQ) {
			t.Errorf("quoted page differs from encoding/json's:\n got %s\nwant %s", quoted, wantQ)
		}
		var back memories.ListResult
		if err := json.Unmarshal(structured, &back); err != nil || len(back.Memories) != len(page.Memories) {
			t.Fatalf("page JSON does not read back: %v (%d memories, want %d)", err, len(back.Memories), len(page.Memories))
		}
		return page
	}
	add(9)
	cases := []struct {
		limit       int
		encodeFirst bool
		more        int // memories added before the case
		cursor      bool
	}{
		{5, true, 0, true},
		{5, false, 0, true},
		{20, true, 0, false}, // 13 memories, then 15: no next cursor
		{20, false, 10, true},
		{20, true, 0, true},
	}
	for _, c := range cases {
		add(c.more)
		t.Run(fmt.Sprintf("limit %d, %d memories, old page encoded %v", c.limit, n, c.encodeFirst), func(t *testing.T) {
			if page := check(t, memories.ListInput{Limit: c.limit}, c.encodeFirst); (page.NextCursor != "") != c.cursor {
				t.Fatalf("next cursor %q; the case wants one: %v", page.NextCursor, c.cursor)
			}
		})
	}
}
