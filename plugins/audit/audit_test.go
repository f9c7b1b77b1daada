package audit_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/audit"
)

// TestBatchWriteKeepsEveryEntry: entries are written in multi-row
// statements (full chunks and a tail); every one of them comes back with
// its own fields, none lost or mixed up.
func TestBatchWriteKeepsEveryEntry(t *testing.T) {
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	col, _ := app.FindCollectionByNameOrId(pb_migrations.Users)
	owner := core.NewRecord(col)
	owner.SetEmail("owner@picard.test")
	owner.Set("username", "owner")
	owner.SetRandomPassword()
	if err := app.Save(owner); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Register(app, audit.Config{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 49, 50, 123} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			base := time.Date(2026, 1, n, 0, 0, 0, 0, time.UTC)
			want := map[string]audit.Entry{}
			for i := range n {
				e := audit.Entry{
					MemoryID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n*1000+i),
					OwnerID:  owner.Id, ActorID: fmt.Sprintf("actor-%d", i), ClientID: fmt.Sprintf("client-%d", i),
					Action: audit.ActionRead, At: base.Add(time.Duration(i) * time.Millisecond),
				}
				want[e.MemoryID] = e
				log.Record(e)
			}
			if err := log.Flush(); err != nil {
				t.Fatal(err)
			}
			got := map[string]audit.Entry{}
			cursor := ""
			for {
				p, err := log.List(owner.Id, audit.Query{Limit: 100, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Entries {
					if e.At.Before(base) || !e.At.Before(base.Add(24*time.Hour)) {
						continue // an earlier subtest's entry
					}
					got[e.MemoryID] = e
				}
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
			if len(got) != n {
				t.Fatalf("wrote %d entries, read back %d", n, len(got))
			}
			for id, w := range want {
				g := got[id]
				if g.ActorID != w.ActorID || g.ClientID != w.ClientID || g.Action != w.Action || g.OwnerID != w.OwnerID || !g.At.Equal(w.At) {
					t.Fatalf("entry %s: got %+v, want %+v", id, g, w)
				}
			}
		})
	}
}

// TestOneCallIsOneRow: the 20 memories of one call are one row of
// memory_access_events, and still 20 entries for the owner, in the call's
// order, paged across the row (cursors inside an event), and filterable
// by memory.
func TestOneCallIsOneRow(t *testing.T) {
	app, owner, log := newLogApp(t)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	log.Record(audit.Entry{MemoryID: "00000000-0000-4000-8000-000000000999", OwnerID: owner.Id, ActorID: owner.Id, Action: audit.ActionCreate, At: at.Add(-time.Second)})
	call := make([]audit.Entry, 20)
	for i := range call {
		call[i] = audit.Entry{MemoryID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), OwnerID: owner.Id, ActorID: owner.Id, ClientID: "app", Action: audit.ActionRead, At: at}
	}
	log.Record(call...)
	if err := log.Flush(); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := app.DB().Select("count(*)").From(pb_migrations.AccessEvents).Row(&rows); err != nil || rows != 2 {
		t.Fatalf("two calls, two rows: %d %v", rows, err)
	}
	var got []audit.Entry
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := log.List(owner.Id, audit.Query{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Entries...)
		if cursor = p.NextCursor; cursor == "" {
			if pages != 2 {
				t.Fatalf("21 entries in pages of 7: 3 pages, got %d", pages+1)
			}
			break
		}
	}
	if len(got) != 21 || got[20].Action != audit.ActionCreate {
		t.Fatalf("21 entries, the older create last: %d %+v", len(got), got)
	}
	for i, e := range got[:20] {
		if e.MemoryID != call[i].MemoryID || e.Action != audit.ActionRead || e.ClientID != "app" || !e.At.Equal(at) {
			t.Fatalf("entry %d: %+v, want %+v", i, e, call[i])
		}
	}
	p, err := log.List(owner.Id, audit.Query{Limit: 5, MemoryID: call[13].MemoryID})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].MemoryID != call[13].MemoryID || p.NextCursor != "" {
		t.Fatalf("one memory's log: %+v %v", p, err)
	}
}

// TestDeletedOwnerEntriesSkipped: entries about an owner deleted before
// the flush are dropped (nobody could read them), the rest of the batch
// is written, and the flush does not fail (it would retry forever).
func TestDeletedOwnerEntriesSkipped(t *testing.T) {
	_, owner, log := newLogApp(t)
	for i := range 120 {
		o := owner.Id
		if i%7 == 3 {
			o = "gone-owner-id"
		}
		log.Record(audit.Entry{MemoryID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), OwnerID: o, ActorID: fmt.Sprintf("a%d", i), Action: audit.ActionRead})
	}
	if err := log.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	p, err := log.List(owner.Id, audit.Query{Limit: 200})
	if err != nil || len(p.Entries) != 120-17 {
		t.Fatalf("want the %d entries of the live owner, got %d (%v)", 120-17, len(p.Entries), err)
	}
}

// TestRecordCall: a call recorded as one entry and its memory ids is one
// row, listed as one entry per memory with the call's fields, in order.
func TestRecordCall(t *testing.T) {
	app, owner, log := newLogApp(t)
	ids := []string{"00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}
	log.RecordCall(audit.Entry{OwnerID: owner.Id, ActorID: "reader", ClientID: "app", Action: audit.ActionSearchHit}, slices.Clone(ids))
	if err := log.Flush(); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := app.DB().Select("count(*)").From(pb_migrations.AccessEvents).Row(&rows); err != nil || rows != 1 {
		t.Fatalf("one row: %d %v", rows, err)
	}
	p, err := log.List(owner.Id, audit.Query{Limit: 10})
	if err != nil || len(p.Entries) != 3 {
		t.Fatalf("three entries: %+v %v", p, err)
	}
	for i, e := range p.Entries {
		if e.MemoryID != ids[i] || e.ActorID != "reader" || e.ClientID != "app" || e.Action != audit.ActionSearchHit || e.At.IsZero() {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
}

// newLogApp is a test app with an owner and the access log registered
// (flushed only by the test or on shutdown).
func newLogApp(t *testing.T) (*tests.TestApp, *core.Record, *audit.Log) {
	t.Helper()
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	owner := newOwner(t, app)
	log, err := audit.Register(app, audit.Config{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return app, owner, log
}
