package platform_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestGetMemoriesPagesFollowNewMemories: a cached get_memories page whose
// owner has only added memories since is made again from its cached copy
// and the new memories that land on it. Every page of every listing
// (page sizes 1, 2 and 5; newest and oldest first; all memories and the
// public ones only) must still equal what data.db holds, after memories
// added at the top (submit_memory), in the middle of the timeline (an
// import with an older creation time), on the filtered permission and
// off it, and after a memory on a page expired.
func TestGetMemoriesPagesFollowNewMemories(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	perms := []string{"private", "public"}
	n := 0
	add := func(extra map[string]any) {
		t.Helper()
		data := map[string]any{"text": fmt.Sprintf("growing page %d", n), "permission": perms[n%2]}
		for k, v := range extra {
			data[k] = v
		}
		submit(t, s, alice, data)
		n++
	}
	for range 5 {
		add(nil)
	}
	add(map[string]any{"expiration_date": clk.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)})

	// truth: alice's unexpired memories read from data.db in a page's order
	truth := func(perm string, desc bool) []string {
		t.Helper()
		q := "SELECT id FROM " + pb_migrations.Memories + " WHERE owner = {:o} AND (expires_at = '' OR expires_at > {:now})"
		if perm != "" {
			q += " AND permission = {:p}"
		}
		order := "ASC"
		if desc {
			order = "DESC"
		}
		var ids []string
		err := s.App.DB().NewQuery(q + " ORDER BY created " + order + ", id " + order).
			Bind(dbx.Params{"o": alice.ID, "p": perm, "now": clk.Now().UTC().Format("2006-01-02 15:04:05.000Z")}).Column(&ids)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	page := func(args map[string]any) (ids []string, next string) {
		t.Helper()
		r := s.Tool(alice, "get_memories", args)
		if r.Status != http.StatusOK {
			t.Fatalf("get_memories %v: %d %s", args, r.Status, r.Body)
		}
		var res struct {
			Memories []struct {
				ID string `json:"id"`
			} `json:"memories"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Memories {
			ids = append(ids, m.ID)
		}
		return ids, res.NextCursor
	}
	check := func(step string) {
		t.Helper()
		for _, limit := range []int{1, 2, 5} {
			for _, sort := range []string{"newest", "oldest"} {
				for _, perm := range []string{"", "public"} {
					want := truth(perm, sort == "newest")
					var got []string
					args := map[string]any{"limit": limit, "sort": sort}
					if perm != "" {
						args["permission"] = perm
					}
					for p := 0; ; p++ {
						ids, next := page(args)
						if end := min(len(want), (p+1)*limit); p*limit > len(want) || !slices.Equal(ids, want[min(p*limit, len(want)):end]) {
							t.Fatalf("%s: limit %d, %s, permission %q: page %d is %v, data.db has %v", step, limit, sort, perm, p, ids, want)
						}
						got = append(got, ids...)
						if next == "" {
							break
						}
						args["cursor"] = next
					}
					if len(got) != len(want) {
						t.Fatalf("%s: limit %d, %s, permission %q: the pages hold %d memories, data.db %d", step, limit, sort, perm, len(got), len(want))
					}
				}
			}
		}
	}
	importAt := func(created time.Time, perm string) {
		t.Helper()
		line, _ := json.Marshal(map[string]any{"kind": "memory", "id": uuid.NewString(), "text": fmt.Sprintf("imported page %d", n),
			"permission": perm, "created": created.UTC().Format(time.RFC3339Nano), "updated": created.UTC().Format(time.RFC3339Nano)})
		n++
		if r := importOwner(s, alice, line); r.Status != http.StatusOK {
			t.Fatalf("import: %d %s", r.Status, r.Body)
		}
	}
	between := func() time.Time {
		t.Helper()
		var created []string
		if err := s.App.DB().NewQuery("SELECT created FROM " + pb_migrations.Memories + " WHERE owner = {:o} ORDER BY created DESC LIMIT 2").
			Bind(dbx.Params{"o": alice.ID}).Column(&created); err != nil || len(created) != 2 {
			t.Fatalf("the two newest memories: %v %v", created, err)
		}
		newest, _ := time.Parse("2006-01-02 15:04:05.000Z", created[0])
		second, _ := time.Parse("2006-01-02 15:04:05.000Z", created[1])
		if newest.Sub(second) < 2*time.Millisecond {
			clk.Advance(5 * time.Millisecond) // room between them: the next memory goes on top later
			add(nil)
			return newest.Add(2 * time.Millisecond)
		}
		return second.Add(newest.Sub(second) / 2).Truncate(time.Millisecond)
	}
	check("start")
	check("start, from the cache")
	for round := range 9 {
		switch round % 3 {
		case 0:
			add(nil)
		case 1:
			// between the two newest memories: on the first page, not on top
			importAt(between(), perms[round%2])
		case 2:
			add(nil)
			add(nil)
		}
		check(fmt.Sprintf("round %d", round))
	}
	clk.Advance(3 * time.Minute) // the memory with an expiry is gone
	check("after an expiry")
	add(nil)
	check("after an expiry and a new memory")
	if s.C.Memories.PageRefreshes() == 0 {
		t.Fatal("no page was made from its cached copy: the test did not reach refreshPage")
	}
	if got := len(truth("", true)); got != n-1 {
		t.Fatalf("data.db holds %d unexpired memories, want %d (all but the expired one)", got, n-1)
	}
}
