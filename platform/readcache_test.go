package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestReadCachesNeverServeStale: reads keep decrypted texts in a cache and
// run prepared statements, yet every change shows on the next read: an
// update through the tools, a re-encryption written behind the server's
// back (another replica, `keys rotate`), a delete, and a memory unshared
// from a reader, through get_memories, the memory:// resource and
// query_memory.
func TestReadCachesNeverServeStale(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	cl := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	ac, bc := connect(t, s, alice), connect(t, s, bob)

	own := submit(t, s, alice, map[string]any{"text": "cache first version about lighthouses"})
	shared := submit(t, s, alice, map[string]any{"text": "cache shared note about lighthouses", "permission": "shared", "shared_with": []string{bob.ID}})

	listed := func(u picardtest.User) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, m := range list(t, s, u, map[string]any{"limit": 100}) {
			out[m.ID] = m.Text
		}
		return out
	}
	resource := func(c interface {
		ReadResource(context.Context, mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error)
	}, id string) (string, error) {
		t.Helper()
		rr := mcp.ReadResourceRequest{}
		rr.Params.URI = "memory://" + id
		res, err := c.ReadResource(context.Background(), rr)
		if err != nil {
			return "", err
		}
		if len(res.Contents) != 1 {
			t.Fatalf("memory://%s: %d contents", id, len(res.Contents))
		}
		return res.Contents[0].(mcp.TextResourceContents).Text, nil
	}
	// warm reads everything twice, so the next reads can come from the caches
	warm := func(t *testing.T, bobReadsShared bool) {
		t.Helper()
		for range 2 {
			listed(alice)
			if _, err := resource(ac, own.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := resource(bc, shared.ID); bobReadsShared && err != nil {
				t.Fatalf("bob reads the memory shared with him: %v", err)
			}
		}
	}

	warm(t, true)
	if got := listed(alice)[own.ID]; got != "cache first version about lighthouses" {
		t.Fatalf("get_memories before any change: %q", got)
	}

	t.Run("update through the tool", func(t *testing.T) {
		r := s.Tool(alice, "update_memory", map[string]any{"memory_id": own.ID, "text": "cache second version about lighthouses"})
		if r.Status != http.StatusOK {
			t.Fatalf("update_memory: %d %s", r.Status, r.Body)
		}
		if got := listed(alice)[own.ID]; got != "cache second version about lighthouses" {
			t.Fatalf("get_memories after update: %q", got)
		}
		if got, err := resource(ac, own.ID); err != nil || !strings.Contains(got, "cache second version") {
			t.Fatalf("memory:// after update: %q %v", got, err)
		}
	})

	t.Run("row rewritten behind the server's back", func(t *testing.T) {
		warm(t, true)
		tok, err := s.C.Cipher.Encrypt("cache third version written elsewhere")
		if err != nil {
			t.Fatal(err)
		}
		// no hook runs: only the token in the row changes
		if _, err := s.App.NonconcurrentDB().Update(pb_migrations.Memories, dbx.Params{"text": tok}, dbx.HashExp{"id": own.ID}).Execute(); err != nil {
			t.Fatal(err)
		}
		if got := listed(alice)[own.ID]; got != "cache third version written elsewhere" {
			t.Fatalf("get_memories after a direct rewrite: %q", got)
		}
		if got, err := resource(ac, own.ID); err != nil || !strings.Contains(got, "cache third version") {
			t.Fatalf("memory:// after a direct rewrite: %q %v", got, err)
		}
	})

	t.Run("unshared memory is gone for the reader", func(t *testing.T) {
		warm(t, true)
		if hits := ids(search(t, s, bob, "lighthouses", nil)); !hits[shared.ID] {
			t.Fatalf("bob finds the shared memory before unsharing: %v", hits)
		}
		r := s.Tool(alice, "modify_permissions", map[string]any{"memory_id": shared.ID, "permission": "private"})
		if r.Status != http.StatusOK {
			t.Fatalf("modify_permissions: %d %s", r.Status, r.Body)
		}
		if _, err := resource(bc, shared.ID); err == nil {
			t.Fatal("bob still reads a memory no longer shared with him")
		}
		if hits := ids(search(t, s, bob, "lighthouses", nil)); hits[shared.ID] {
			t.Fatal("query_memory still returns the unshared memory to bob")
		}
		if _, ok := listed(bob)[shared.ID]; ok {
			t.Fatal("get_memories lists alice's memory to bob")
		}
		if got, err := resource(ac, shared.ID); err != nil || !strings.Contains(got, "cache shared note") {
			t.Fatalf("the owner still reads it: %q %v", got, err)
		}
	})

	t.Run("deleted memory is gone", func(t *testing.T) {
		warm(t, false)
		r := s.Tool(alice, "delete_memory", map[string]any{"memory_id": own.ID})
		if r.Status != http.StatusOK {
			t.Fatalf("delete_memory: %d %s", r.Status, r.Body)
		}
		if _, ok := listed(alice)[own.ID]; ok {
			t.Fatal("get_memories lists a deleted memory")
		}
		if _, err := resource(ac, own.ID); err == nil {
			t.Fatal("memory:// serves a deleted memory")
		}
	})
}

// TestGetMemoriesPagesEveryMemoryOnce: walking get_memories page by page
// (newest and oldest first, with and without a permission filter) returns
// every live memory exactly once and in order, also when several memories
// share the same creation time (the cursor's id tie-break), and never an
// expired one; each page is read off the owner's (created, id) index with
// no sort.
func TestGetMemoriesPagesEveryMemoryOnce(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	cl := s.RegisterClient(s.SuperuserToken())
	alice := s.UserToken(cl, "alice")
	var want []string
	public := map[string]bool{}
	for i := range 11 {
		perm := "private"
		if i%3 == 0 {
			perm = "public"
		}
		m := submit(t, s, alice, map[string]any{"text": fmt.Sprintf("page memory %d", i), "permission": perm})
		want = append(want, m.ID)
		public[m.ID] = perm == "public"
	}
	expiring := submit(t, s, alice, map[string]any{"text": "page memory that expires", "expiration_date": clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	// five memories share one creation time: only the id orders them
	tie := "2026-01-01 00:00:00.000Z"
	if _, err := s.App.NonconcurrentDB().Update(pb_migrations.Memories, dbx.Params{"created": tie}, dbx.In("id", want[2], want[3], want[4], want[5], want[6])).Execute(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)       // the expiring one is gone
	alice = s.UserToken(cl, "alice") // and so is the first token

	type row struct {
		Created string `db:"created"`
		ID      string `db:"id"`
	}
	var rows []row
	if err := s.App.DB().NewQuery("SELECT created, id FROM memories WHERE owner = {:o} AND id != {:x}").Bind(dbx.Params{"o": alice.ID, "x": expiring.ID}).All(&rows); err != nil {
		t.Fatal(err)
	}
	newest := make([]row, len(rows))
	copy(newest, rows)
	slices.SortFunc(newest, func(a, b row) int {
		if c := strings.Compare(b.Created, a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, tc := range []struct {
		sort, permission string
	}{{"newest", ""}, {"oldest", ""}, {"newest", "public"}, {"oldest", "public"}} {
		t.Run(tc.sort+"/"+tc.permission, func(t *testing.T) {
			var expect []string
			for _, r := range newest {
				if tc.permission == "" || public[r.ID] {
					expect = append(expect, r.ID)
				}
			}
			if tc.sort == "oldest" {
				slices.Reverse(expect)
			}
			var got []string
			cursor := ""
			for range 20 {
				args := map[string]any{"limit": 2, "sort": tc.sort}
				if tc.permission != "" {
					args["permission"] = tc.permission
				}
				if cursor != "" {
					args["cursor"] = cursor
				}
				page := s.Tool(alice, "get_memories", args)
				if page.Status != http.StatusOK {
					t.Fatalf("get_memories: %d %s", page.Status, page.Body)
				}
				var res struct {
					Memories   []memory `json:"memories"`
					NextCursor string   `json:"next_cursor"`
				}
				page.JSON(t, &res)
				for _, m := range res.Memories {
					got = append(got, m.ID)
				}
				if cursor = res.NextCursor; cursor == "" {
					break
				}
			}
			if !slices.Equal(got, expect) {
				t.Fatalf("pages gave\n%v\nwant\n%v", got, expect)
			}
		})
	}

	var plan []struct {
		Detail string `db:"detail"`
	}
	q := "EXPLAIN QUERY PLAN SELECT id FROM memories WHERE owner = +{:o} AND (expires_at = '' OR expires_at > +{:n}) AND (created, id) < (+{:c}, +{:i}) ORDER BY created DESC, id DESC LIMIT 21"
	if err := s.App.DB().NewQuery(q).Bind(dbx.Params{"o": alice.ID, "n": tie, "c": tie, "i": want[0]}).All(&plan); err != nil {
		t.Fatal(err)
	}
	for _, p := range plan {
		if !strings.Contains(p.Detail, pb_migrations.MemoriesPageIndex) || strings.Contains(p.Detail, "TEMP B-TREE") {
			t.Fatalf("a page is not a plain range of %s: %+v", pb_migrations.MemoriesPageIndex, plan)
		}
	}
}

// TestToolResultOnTheWire: the raw /mcp answer to tools/call (stateful
// and stateless) is one valid JSON-RPC response whose structured content
// is the tool's answer and whose text is the same JSON, for a large
// get_memories page full of characters JSON must escape, and for a tool
// error; no placeholder of Picard's result splicing ever leaks.
func TestToolResultOnTheWire(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateless=%v", stateless), func(t *testing.T) {
			opts := picardtest.Options{}
			if stateless {
				opts.Env = map[string]string{"PICARD_MCP_STATELESS": "true"}
			}
			s := picardtest.Start(t, opts)
			cl := s.RegisterClient(s.SuperuserToken())
			alice := s.UserToken(cl, "alice")
			texts := map[string]bool{}
			for i := range 30 {
				text := fmt.Sprintf("wire %d: \"quotes\", back\\slash, <tags> & \u2028 line\nbreak, émoji 🚀, tab\t %s", i, strings.Repeat("x", i*20))
				submit(t, s, alice, map[string]any{"text": text})
				texts[text] = true
			}
			h := map[string]string{"Authorization": "Bearer " + alice.Access, "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
			if !stateless {
				r := s.Do("POST", "/mcp", h, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}`)
				if r.Status != http.StatusOK || r.Header.Get("Mcp-Session-Id") == "" {
					t.Fatalf("initialize: %d %s", r.Status, r.Body)
				}
				h["Mcp-Session-Id"] = r.Header.Get("Mcp-Session-Id")
			}
			call := func(id int, args string) (raw []byte, res struct {
				Content []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"content"`
				StructuredContent json.RawMessage `json:"structuredContent"`
				IsError           bool            `json:"isError"`
			}) {
				t.Helper()
				r := s.Do("POST", "/mcp", h, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_memories","arguments":%s}}`, id, args))
				if r.Status != http.StatusOK {
					t.Fatalf("tools/call: %d %s", r.Status, r.Body)
				}
				if bytes.Contains(r.Body, []byte("picard-result-")) {
					t.Fatalf("a placeholder leaked: %s", r.Body)
				}
				var msg struct {
					JSONRPC string          `json:"jsonrpc"`
					ID      int             `json:"id"`
					Result  json.RawMessage `json:"result"`
				}
				dec := json.NewDecoder(bytes.NewReader(r.Body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&msg); err != nil || msg.JSONRPC != "2.0" || msg.ID != id {
					t.Fatalf("not one JSON-RPC response (%v): %s", err, r.Body)
				}
				if err := json.Unmarshal(msg.Result, &res); err != nil {
					t.Fatalf("result: %v", err)
				}
				return r.Body, res
			}

			_, res := call(7, `{"limit":100}`)
			if res.IsError || len(res.Content) != 1 || res.Content[0].Type != "text" {
				t.Fatalf("result: %+v", res)
			}
			var structured, fromText struct {
				Memories []memory `json:"memories"`
			}
			if err := json.Unmarshal(res.StructuredContent, &structured); err != nil {
				t.Fatalf("structured content: %v", err)
			}
			if err := json.Unmarshal([]byte(res.Content[0].Text), &fromText); err != nil {
				t.Fatalf("text is not the JSON: %v", err)
			}
			var a, b any
			_ = json.Unmarshal(res.StructuredContent, &a)
			_ = json.Unmarshal([]byte(res.Content[0].Text), &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatal("structured content and text differ")
			}
			if len(structured.Memories) != 30 {
				t.Fatalf("want 30 memories, got %d", len(structured.Memories))
			}
			for _, m := range structured.Memories {
				if !texts[m.Text] {
					t.Fatalf("text changed on the way: %q", m.Text)
				}
			}

			_, res = call(8, `{"limit":1000}`)
			if !res.IsError || len(res.Content) != 1 || !strings.Contains(res.Content[0].Text, "limit") || res.StructuredContent != nil {
				t.Fatalf("a bad limit is a tool error naming it: %+v", res)
			}
		})
	}
}
