package platform_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/audit"
)

type accessPage struct {
	Entries    []audit.Entry `json:"entries"`
	NextCursor string        `json:"next_cursor"`
}

func accessLog(t *testing.T, s *picardtest.Server, u picardtest.User, data map[string]any) accessPage {
	t.Helper()
	if data == nil {
		data = map[string]any{}
	}
	r := s.Tool(u, "memory_access_log", data)
	if r.Status != http.StatusOK {
		t.Fatalf("memory_access_log: %d %s", r.Status, r.Body)
	}
	var p accessPage
	r.JSON(t, &p)
	return p
}

// has reports whether the page holds an entry of action on memory by actor through client.
func has(p accessPage, action, memoryID, actorID, clientID string) bool {
	for _, e := range p.Entries {
		if e.Action == action && e.MemoryID == memoryID && e.ActorID == actorID && e.ClientID == clientID {
			return true
		}
	}
	return false
}

// TestAccessLogShowsOwnerWhoTouchedWhat: reads and writes by the owner and
// by another user (shared and public memories, through tools, resources and
// personas) show up in the owner's log with the reader's id and client; the
// other user sees none of it.
func TestAccessLogShowsOwnerWhoTouchedWhat(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	aliceApp, bobApp := s.RegisterClient(su), s.RegisterClient(su)
	alice, bob := s.UserToken(aliceApp, "alice"), s.UserToken(bobApp, "bob")

	private := submit(t, s, alice, map[string]any{"text": "my private diary about kayaks"})
	shared := submit(t, s, alice, map[string]any{"text": "plum cake recipe for bob", "permission": "shared", "shared_with": []string{bob.ID}})
	public := submit(t, s, alice, map[string]any{"text": "alice loves sailing and kayaks", "permission": "public"})

	list(t, s, alice, nil) // owner reads
	if got := search(t, s, bob, "plum cake", map[string]any{"limit": 1}); len(got) != 1 || got[0].ID != shared.ID {
		t.Fatalf("bob finds the shared memory, got %+v", got)
	}
	if r := s.Tool(bob, "query_user", map[string]any{"user_id": alice.ID, "query": "what does alice like?"}); r.Status != http.StatusOK {
		t.Fatalf("query_user: %d %s", r.Status, r.Body)
	}
	bc := connect(t, s, bob)
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "memory://" + public.ID
	if _, err := bc.ReadResource(context.Background(), rr); err != nil {
		t.Fatal(err)
	}
	if r := s.Tool(alice, "modify_permissions", map[string]any{"memory_id": private.ID, "permission": "shared", "shared_with": []string{bob.ID}}); r.Status != http.StatusOK {
		t.Fatal(string(r.Body))
	}
	if r := s.Tool(alice, "update_memory", map[string]any{"memory_id": private.ID, "text": "my diary"}); r.Status != http.StatusOK {
		t.Fatal(string(r.Body))
	}
	if r := s.Tool(alice, "delete_memory", map[string]any{"memory_id": private.ID}); r.Status != http.StatusOK {
		t.Fatal(string(r.Body))
	}

	exp := s.Do("GET", "/api/memories/export", map[string]string{"Authorization": "Bearer " + alice.Access}, nil)
	edited := strings.Replace(string(exp.Body), "plum cake recipe for bob", "plum cake recipe, revised", 1)
	if r := importOwner(s, alice, []byte(edited)); r.Status != http.StatusOK {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}

	log := accessLog(t, s, alice, map[string]any{"limit": 100})
	for _, c := range []struct {
		action, memory, actor, client string
	}{
		{audit.ActionCreate, private.ID, alice.ID, aliceApp.ID},
		{audit.ActionRead, shared.ID, alice.ID, aliceApp.ID},
		{audit.ActionSearchHit, shared.ID, bob.ID, bobApp.ID},
		{audit.ActionPersonaUse, public.ID, bob.ID, bobApp.ID},
		{audit.ActionResourceRead, public.ID, bob.ID, bobApp.ID},
		{audit.ActionShare, private.ID, alice.ID, aliceApp.ID},
		{audit.ActionUpdate, private.ID, alice.ID, aliceApp.ID},
		{audit.ActionDelete, private.ID, alice.ID, aliceApp.ID},
		{audit.ActionImport, shared.ID, alice.ID, aliceApp.ID},
		{audit.ActionExport, shared.ID, alice.ID, aliceApp.ID},
		{audit.ActionExport, public.ID, alice.ID, aliceApp.ID},
	} {
		if !has(log, c.action, c.memory, c.actor, c.client) {
			t.Errorf("alice's log lacks %s of %s by %s via %s; log: %+v", c.action, c.memory, c.actor, c.client, log.Entries)
		}
	}
	for i := 1; i < len(log.Entries); i++ {
		if log.Entries[i].At.After(log.Entries[i-1].At) {
			t.Fatalf("newest first")
		}
	}
	for _, e := range log.Entries {
		if e.ActorID == bob.ID && e.Actor != "bob" {
			t.Fatalf("entries name the actor: %+v", e)
		}
	}
	// one memory's log, paged
	one := accessLog(t, s, alice, map[string]any{"memory_id": private.ID, "limit": 2})
	if len(one.Entries) != 2 || one.NextCursor == "" || one.Entries[0].Action != audit.ActionDelete {
		t.Fatalf("per-memory page: %+v", one)
	}
	rest := accessLog(t, s, alice, map[string]any{"memory_id": private.ID, "limit": 100, "cursor": one.NextCursor})
	if len(rest.Entries) != 3 || rest.Entries[0].Action != audit.ActionShare || rest.Entries[2].Action != audit.ActionCreate {
		t.Fatalf("second page holds share, alice's listing and create, got %+v", rest.Entries)
	}

	// bob sees only entries about his own memories: none, even asking by id
	if p := accessLog(t, s, bob, nil); len(p.Entries) != 0 {
		t.Fatalf("bob must not see alice's log, got %+v", p.Entries)
	}
	if p := accessLog(t, s, bob, map[string]any{"memory_id": shared.ID}); len(p.Entries) != 0 {
		t.Fatalf("bob must not see the log of a memory shared with him, got %+v", p.Entries)
	}
	// the collection is admin-only in PocketBase's API
	if r := s.Do("GET", "/api/collections/"+pb_migrations.AccessLog+"/records", map[string]string{"Authorization": "Bearer " + alice.Access}, nil); r.Status == http.StatusOK && len(r.Body) > 0 && string(r.Body) != "" {
		var res struct {
			Items []any `json:"items"`
		}
		r.JSON(t, &res)
		if len(res.Items) != 0 {
			t.Fatalf("the records API must not list the log to users: %s", r.Body)
		}
	}
	if r := s.Do("GET", "/api/collections/"+pb_migrations.AccessLog+"/records", map[string]string{"Authorization": su}, nil); r.Status != http.StatusOK {
		t.Fatalf("superusers read the log in the dashboard/API: %d %s", r.Status, r.Body)
	}
	if r := s.Tool(alice, "memory_access_log", map[string]any{"cursor": "bogus"}); r.Status != http.StatusBadRequest {
		t.Fatalf("bad cursor is a 400: %d %s", r.Status, r.Body)
	}
}

// TestAccessLogRetentionAndShutdown: entries older than
// PICARD_AUDIT_RETENTION are purged, newer ones kept; entries still queued
// when the app shuts down are written.
func TestAccessLogRetentionAndShutdown(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now, Env: map[string]string{"PICARD_AUDIT_RETENTION": "30d"}})
	cl := s.RegisterClient(s.SuperuserToken())
	alice := s.UserToken(cl, "alice")
	old := submit(t, s, alice, map[string]any{"text": "an old memory"})
	clk.Advance(31 * 24 * time.Hour)
	alice = s.UserToken(cl, "alice") // the first token expired meanwhile
	recent := submit(t, s, alice, map[string]any{"text": "a recent memory"})
	if err := s.C.Audit.Flush(); err != nil {
		t.Fatal(err)
	}
	n, err := s.C.Audit.Purge(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("purge removes the one entry older than 30 days: n=%d err=%v", n, err)
	}
	p := accessLog(t, s, alice, nil)
	if len(p.Entries) != 1 || p.Entries[0].MemoryID != recent.ID || has(p, audit.ActionCreate, old.ID, alice.ID, "") {
		t.Fatalf("only the recent entry is left: %+v", p.Entries)
	}

	// queued entries survive a graceful shutdown
	s.C.Audit.Record(audit.Entry{MemoryID: old.ID, OwnerID: alice.ID, ActorID: alice.ID, Action: audit.ActionRead})
	s.C.Audit.Close()
	var count int
	if err := s.App.DB().Select("count(*)").From(pb_migrations.AccessLog).Row(&count); err != nil || count != 2 {
		t.Fatalf("the queued entry was written at shutdown: count=%d err=%v", count, err)
	}
}

// TestAccessLogWritesBacklog: a backlog of several batches (the writer
// fell behind a read-heavy load) is written in full by one Flush, every
// entry with its own fields.
func TestAccessLogWritesBacklog(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	cl := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	m := submit(t, s, alice, map[string]any{"text": "alice's memory"})
	if err := s.C.Audit.Flush(); err != nil {
		t.Fatal(err)
	}
	const n = 1234
	// one millisecond apart: the owner's list is newest first, and entries
	// recorded in the same millisecond have no order among themselves
	base := time.Now().UTC().Add(-time.Hour)
	for i := range n {
		s.C.Audit.Record(audit.Entry{MemoryID: m.ID, OwnerID: alice.ID, ActorID: bob.ID, ClientID: fmt.Sprintf("c%d", i), Action: audit.ActionSearchHit, At: base.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := s.C.Audit.Flush(); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := s.App.DB().Select("count(distinct client_id)").From(pb_migrations.AccessLog).
		Where(dbx.HashExp{"memory_id": m.ID, "owner": alice.ID, "actor": bob.ID, "action": audit.ActionSearchHit}).Row(&count); err != nil || count != n {
		t.Fatalf("%d distinct entries written, want %d (err %v)", count, n, err)
	}
	p := accessLog(t, s, alice, map[string]any{"memory_id": m.ID})
	if !has(p, audit.ActionSearchHit, m.ID, bob.ID, fmt.Sprintf("c%d", n-1)) {
		t.Fatalf("the newest entry is listed for the owner: %+v", p.Entries[:1])
	}
}
