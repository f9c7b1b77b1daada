package audit_test

import (
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/audit"
)

// TestMigrationKeepsOldEntries: entries written one row per memory (the
// log before memory_access_events) are all listed after the migration,
// with their fields, in the owner's log and in the per-memory view admins
// read; new entries land next to them; reverting the migration puts every
// entry back in the old table.
func TestMigrationKeepsOldEntries(t *testing.T) {
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	owner := newOwner(t, app)
	runner := core.NewMigrationsRunner(app, core.AppMigrations)
	// back to before 1764000700_access_log_calls (and the ones after it)
	since := 0
	for _, m := range core.AppMigrations.Items() {
		if m.File >= "1764000700" { // migration files sort by their timestamp
			since++
		}
	}
	if _, err := runner.Down(since); err != nil {
		t.Fatal(err)
	}
	old := []audit.Entry{
		{MemoryID: "00000000-0000-4000-8000-000000000001", ActorID: owner.Id, ClientID: "app-a", Action: audit.ActionCreate},
		{MemoryID: "00000000-0000-4000-8000-000000000001", ActorID: "bob", ClientID: "app-b", Action: audit.ActionSearchHit},
		{MemoryID: "00000000-0000-4000-8000-000000000002", ActorID: owner.Id, ClientID: "app-a", Action: audit.ActionRead},
	}
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, e := range old {
		at := base.Add(time.Duration(i) * time.Minute).Format("2006-01-02 15:04:05.000Z")
		if _, err := app.DB().Insert(pb_migrations.AccessLog, dbx.Params{
			"id": "00000000-0000-4000-8000-00000000010" + string(rune('0'+i)), "memory_id": e.MemoryID, "owner": owner.Id,
			"actor": e.ActorID, "client_id": e.ClientID, "action": e.Action, "at": at, "created": at, "updated": at,
		}).Execute(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runner.Up(); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Register(app, audit.Config{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	log.Record(audit.Entry{MemoryID: "00000000-0000-4000-8000-000000000002", OwnerID: owner.Id, ActorID: owner.Id, ClientID: "app-a", Action: audit.ActionExport})
	p, err := log.List(owner.Id, audit.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 4 || p.Entries[0].Action != audit.ActionExport {
		t.Fatalf("three old entries and the new export, newest first: %+v", p.Entries)
	}
	for i, e := range old {
		g := p.Entries[3-i]
		if g.MemoryID != e.MemoryID || g.ActorID != e.ActorID || g.ClientID != e.ClientID || g.Action != e.Action || !g.At.Equal(base.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("old entry %d: got %+v, want %+v", i, g, e)
		}
	}
	var inView int
	if err := app.DB().Select("count(*)").From(pb_migrations.AccessLog).Where(dbx.HashExp{"memory_id": old[0].MemoryID}).Row(&inView); err != nil || inView != 2 {
		t.Fatalf("the admins' per-memory view lists memory 1 twice: %d %v", inView, err)
	}
	if _, err := runner.Down(since); err != nil {
		t.Fatal(err)
	}
	var back int
	if err := app.DB().Select("count(*)").From(pb_migrations.AccessLog).Row(&back); err != nil || back != 3 {
		t.Fatalf("reverted: the three old entries are back in the old table (exports have no place there): %d %v", back, err)
	}
}

func newOwner(t *testing.T, app core.App) *core.Record {
	t.Helper()
	col, _ := app.FindCollectionByNameOrId(pb_migrations.Users)
	owner := core.NewRecord(col)
	owner.SetEmail("owner@picard.test")
	owner.Set("username", "owner")
	owner.SetRandomPassword()
	if err := app.Save(owner); err != nil {
		t.Fatal(err)
	}
	return owner
}
