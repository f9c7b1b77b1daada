package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"strings"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// OwnerChangedColumn is a second counter per owner in OwnerVersions,
// moved by the update (of OwnerVersionColumns) and delete triggers only:
// it says whether any of the owner's existing memories changed, where
// version also counts the memories added. A memory read for a search (the
// search-hit cache) stays current across its owner's new memories, which
// add rows but change none; a get_memories page, which lists them, keeps
// following version. Like version, it starts at a random value when the
// owner's row is made by a trigger.
const OwnerChangedColumn = "changed"

// randomStart is the first value of a counter made by a trigger.
const randomStart = "abs(random() % 1000000000000)"

// OwnerChangedBump is the SET clause by which the update and delete
// triggers move OwnerChangedColumn; memories' ownerVersions recognises
// those triggers by it.
const OwnerChangedBump = OwnerChangedColumn + " = " + OwnerChangedColumn + " + 1"

// OwnerChangedTriggers is how many of OwnerVersionTriggers move
// OwnerChangedColumn (the update and delete ones).
const OwnerChangedTriggers = 2

// upsertOwner is the UPSERT a trigger runs for one owner expression: a new
// row starts both counters at random values, an existing one is set.
func upsertOwner(owner, set string) string {
	return "INSERT INTO " + OwnerVersions + " (owner, version, " + OwnerChangedColumn + ") VALUES (" + owner + ", " + randomStart + ", " + randomStart + ")" +
		" ON CONFLICT (owner) DO UPDATE SET " + set + ";"
}

// ownerVersionsChangedSQL creates OwnerVersions with both counters and
// its three triggers where they are missing.
func ownerVersionsChangedSQL() []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + OwnerVersions + " (owner TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL, " +
			OwnerChangedColumn + " INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
		"CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[0] + " AFTER INSERT ON " + Memories +
			" BEGIN " + upsertOwner("NEW.owner", "version = version + 1") + " END",
		"CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[1] + " AFTER UPDATE OF " + strings.Join(OwnerVersionColumns, ", ") + " ON " + Memories +
			" BEGIN " + upsertOwner("NEW.owner", "version = version + 1, "+OwnerChangedBump) +
			" UPDATE " + OwnerVersions + " SET version = version + 1, " + OwnerChangedBump +
			" WHERE OLD.owner IS NOT NEW.owner AND owner = OLD.owner;" +
			" END",
		"CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[2] + " AFTER DELETE ON " + Memories +
			" BEGIN " + upsertOwner("OLD.owner", "version = version + 1, "+OwnerChangedBump) + " END",
	}
}

// addChangedColumn adds OwnerChangedColumn to an OwnerVersions made before
// it (existing owners start at 0; the counter only grows from there).
func addChangedColumn(app core.App) error {
	var n int
	if err := app.DB().NewQuery("SELECT count(*) FROM pragma_table_info('" + OwnerVersions + "') WHERE name = '" + OwnerChangedColumn + "'").Row(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := app.DB().NewQuery("ALTER TABLE " + OwnerVersions + " ADD COLUMN " + OwnerChangedColumn + " INTEGER NOT NULL DEFAULT 0").Execute()
	return err
}

// EnsureOwnerVersionsChanged creates OwnerVersions with both counters and
// its triggers where any is missing (a collection dropped and made again
// loses its triggers); triggers that exist are left as they are (the
// search-hit cache trusts the changed counter only where the triggers
// that move it exist: see memories' ownerVersions).
func EnsureOwnerVersionsChanged(app core.App) error {
	qs := ownerVersionsChangedSQL()
	if _, err := app.DB().NewQuery(qs[0]).Execute(); err != nil {
		return err
	}
	if err := addChangedColumn(app); err != nil {
		return err
	}
	for _, q := range qs[1:] {
		if _, err := app.DB().NewQuery(q).Execute(); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	dropTriggers := func(app core.App) error {
		for _, name := range OwnerVersionTriggers {
			if _, err := app.DB().NewQuery("DROP TRIGGER IF EXISTS " + name).Execute(); err != nil {
				return err
			}
		}
		return nil
	}
	m.Register(func(app core.App) error {
		if err := dropTriggers(app); err != nil {
			return err
		}
		return EnsureOwnerVersionsChanged(app)
	}, func(app core.App) error {
		// the column stays (nothing reads it without the triggers)
		if err := dropTriggers(app); err != nil {
			return err
		}
		return EnsureOwnerVersionsShown(app)
	})
}
