package pb_migrations_test

import (
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/pb_migrations"
)

// TestOwnerVersions: after the migrations every insert, update and delete
// of a memory moves its owner's counter (both owners' when the memory
// changes hands) and no other owner's, and every update and delete, but
// not an insert, its changed counter; the triggers survive PocketBase
// altering the memories table (a field added from the dashboard);
// reverting the migration removes the table and its triggers, applying it
// again brings them back.
func TestOwnerVersions(t *testing.T) {
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	users, err := app.FindCollectionByNameOrId(pb_migrations.Users)
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, name := range []string{"alice", "bob", "carol"} {
		u := core.NewRecord(users)
		u.Set("email", name+"@example.com")
		u.Set("username", name)
		u.SetPassword("correct horse battery staple")
		if err := app.Save(u); err != nil {
			t.Fatal(err)
		}
		owners = append(owners, u.Id)
	}
	counter := func(col, owner string) int64 {
		t.Helper()
		var v int64
		err := app.DB().NewQuery("SELECT coalesce((SELECT " + col + " FROM " + pb_migrations.OwnerVersions + " WHERE owner = {:o}), 0)").Bind(dbx.Params{"o": owner}).Row(&v)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	exec := func(q string, args dbx.Params) {
		t.Helper()
		if _, err := app.DB().NewQuery(q).Bind(args).Execute(); err != nil {
			t.Fatal(err)
		}
	}
	// movedOf runs a statement and says which owners' col counters moved
	movedOf := func(col, q string, args dbx.Params) [3]bool {
		t.Helper()
		var before [3]int64
		for i, o := range owners {
			before[i] = counter(col, o)
		}
		exec(q, args)
		var out [3]bool
		for i, o := range owners {
			out[i] = counter(col, o) != before[i]
		}
		return out
	}
	moved := func(q string, args dbx.Params) [3]bool { return movedOf("version", q, args) }
	changedMoved := func(q string, args dbx.Params) [3]bool { return movedOf(pb_migrations.OwnerChangedColumn, q, args) }
	insert := "INSERT INTO " + pb_migrations.Memories + " (id, owner, text, permission) VALUES ({:id}, {:o}, 'x', 'private')"
	cases := func(a, b string) []struct {
		what        string
		q           string
		args        dbx.Params
		want        [3]bool // version counters that move
		wantChanged [3]bool // changed counters that move
	} {
		return []struct {
			what        string
			q           string
			args        dbx.Params
			want        [3]bool
			wantChanged [3]bool
		}{
			// (the version pass runs first: every owner's row exists when
			// the changed counters are watched)
			{"insert", insert, dbx.Params{"id": "m1", "o": a}, [3]bool{true, false, false}, [3]bool{false, false, false}},
			{"insert of another owner's", insert, dbx.Params{"id": "m2", "o": b}, [3]bool{false, true, false}, [3]bool{false, false, false}},
			{"another insert", insert, dbx.Params{"id": "m3", "o": a}, [3]bool{true, false, false}, [3]bool{false, false, false}},
			{"update", "UPDATE memories SET text = 'y' WHERE id = 'm1'", nil, [3]bool{true, false, false}, [3]bool{true, false, false}},
			{"owner change", "UPDATE memories SET owner = {:o} WHERE id = 'm1'", dbx.Params{"o": b}, [3]bool{true, true, false}, [3]bool{true, true, false}},
			{"marked ready", "UPDATE memories SET index_status = 'ready', index_error = '' WHERE id = 'm1'", nil, [3]bool{false, false, false}, [3]bool{false, false, false}},
			{"marked pending", "UPDATE memories SET index_status = 'pending' WHERE id = 'm1'", nil, [3]bool{false, false, false}, [3]bool{false, false, false}},
			{"expiry set", "UPDATE memories SET expires_at = '2030-01-01 00:00:00.000Z' WHERE id = 'm1'", nil, [3]bool{false, true, false}, [3]bool{false, true, false}},
			{"shared", "UPDATE memories SET permission = 'public', shared_users = '[\"x\"]', shared_groups = '[\"y\"]' WHERE id = 'm1'", nil, [3]bool{false, true, false}, [3]bool{false, true, false}},
			{"delete", "DELETE FROM memories WHERE id = 'm2'", nil, [3]bool{false, true, false}, [3]bool{false, true, false}},
			{"delete of alice's", "DELETE FROM memories WHERE id = 'm3'", nil, [3]bool{true, false, false}, [3]bool{true, false, false}},
			{"delete of all", "DELETE FROM memories", nil, [3]bool{false, true, false}, [3]bool{false, true, false}},
		}
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, tc := range cases(owners[0], owners[1]) {
			if got := moved(tc.q, tc.args); got != tc.want {
				t.Fatalf("%s: counters of alice, bob, carol moved %v, want %v", tc.what, got, tc.want)
			}
		}
		exec("DELETE FROM memories", nil)
		for _, tc := range cases(owners[0], owners[1]) {
			if got := changedMoved(tc.q, tc.args); got != tc.wantChanged {
				t.Fatalf("%s: changed counters of alice, bob, carol moved %v, want %v", tc.what, got, tc.wantChanged)
			}
		}
		// every column a get_memories page reads moves the counter, even
		// set to its own value (a PocketBase save sets every column)
		exec(insert, dbx.Params{"id": "m4", "o": owners[0]})
		for _, col := range pb_migrations.OwnerVersionColumns {
			if got := moved("UPDATE memories SET "+col+" = "+col+" WHERE id = 'm4'", nil); got != [3]bool{true, false, false} {
				t.Fatalf("update of %s: counters of alice, bob, carol moved %v, want alice's only", col, got)
			}
		}
		exec("DELETE FROM memories", nil)
	}
	t.Run("after the migrations", check)

	t.Run("after a field is added to memories", func(t *testing.T) {
		col, err := app.FindCollectionByNameOrId(pb_migrations.Memories)
		if err != nil {
			t.Fatal(err)
		}
		col.Fields.Add(&core.TextField{Name: "dashboard_note"})
		if err := app.Save(col); err != nil {
			t.Fatal(err)
		}
		check(t)
		col.Fields.RemoveByName("dashboard_note")
		if err := app.Save(col); err != nil {
			t.Fatalf("a field no trigger names can be removed again: %v", err)
		}
		check(t)
	})

	// reverted reverts the last n migrations, writes alice's memory m5 and
	// runs what with it, then applies them again and checks the triggers
	reverted := func(t *testing.T, n int, what func(t *testing.T)) {
		t.Helper()
		runner := core.NewMigrationsRunner(app, core.AppMigrations)
		if _, err := runner.Down(n); err != nil {
			t.Fatal(err)
		}
		exec(insert, dbx.Params{"id": "m5", "o": owners[0]})
		what(t)
		exec("DELETE FROM memories", nil)
		if _, err := runner.Up(); err != nil {
			t.Fatal(err)
		}
		check(t)
	}
	t.Run("reverting the changed counter", func(t *testing.T) {
		reverted(t, 1, func(t *testing.T) {
			if got := changedMoved("UPDATE memories SET text = 'z' WHERE id = 'm5'", nil); got != [3]bool{false, false, false} {
				t.Fatalf("after reverting it the changed counter still moves: %v", got)
			}
			if got := moved("UPDATE memories SET text = 'w' WHERE id = 'm5'", nil); got != [3]bool{true, false, false} {
				t.Fatalf("after reverting it the version counter stops: moved %v", got)
			}
		})
	})
	t.Run("reverting the shown-columns trigger", func(t *testing.T) {
		reverted(t, 2, func(t *testing.T) {
			if got := moved("UPDATE memories SET index_status = 'ready' WHERE id = 'm5'", nil); got != [3]bool{true, false, false} {
				t.Fatalf("after reverting it every update moves the counter again: moved %v", got)
			}
		})
	})

	objects := func() int {
		t.Helper()
		var n int
		if err := app.DB().NewQuery("SELECT count(*) FROM sqlite_master WHERE name = {:t} OR (type = 'trigger' AND name LIKE 'memories_owner_version_%')").
			Bind(dbx.Params{"t": pb_migrations.OwnerVersions}).Row(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	runner := core.NewMigrationsRunner(app, core.AppMigrations)
	since := 0
	for _, m := range core.AppMigrations.Items() {
		if m.File >= "1764000900" {
			since++
		}
	}
	if _, err := runner.Down(since); err != nil {
		t.Fatal(err)
	}
	if n := objects(); n != 0 {
		t.Fatalf("after the revert: %d of the counter's table and triggers left", n)
	}
	exec(insert, dbx.Params{"id": "m3", "o": owners[2]}) // untracked
	exec("DELETE FROM memories WHERE id = 'm3'", nil)
	if _, err := runner.Up(); err != nil {
		t.Fatal(err)
	}
	if n := objects(); n != 1+len(pb_migrations.OwnerVersionTriggers) {
		t.Fatalf("after applying it again: %d of the counter's table and triggers", n)
	}
	t.Run("after the migration is applied again", check)
}
