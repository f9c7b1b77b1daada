package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// OwnerVersions counts, per owner, the changes of that owner's memories:
// SQLite triggers on the memories table bump the owner's row in the same
// transaction as the insert, update or delete, whichever connection,
// process or path made it (the tools, the dashboard, an import, `keys
// rotate`, raw SQL). An update that moves a memory to another owner bumps
// both. The get_memories page cache uses it to keep an owner's pages
// across other owners' writes and the access log's flushes.
//
// A counter starts at a random value, so a row deleted by hand and
// created again does not repeat the values it had; it only grows.
// It is not a PocketBase collection: nothing but the triggers writes it.
const OwnerVersions = "memory_owner_versions"

// OwnerVersionTriggers are the names of the triggers that keep
// OwnerVersions.
var OwnerVersionTriggers = []string{"memories_owner_version_insert", "memories_owner_version_update", "memories_owner_version_delete"}

// bumpOwner is the UPSERT a trigger runs for one owner expression.
func bumpOwner(owner string) string {
	return "INSERT INTO " + OwnerVersions + " (owner, version) VALUES (" + owner + ", abs(random() % 1000000000000))" +
		" ON CONFLICT (owner) DO UPDATE SET version = version + 1;"
}

// OwnerVersionsSQL creates OwnerVersions and its triggers where they are
// missing (the statements are idempotent).
func OwnerVersionsSQL() []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + OwnerVersions + " (owner TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID",
		"CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[0] + " AFTER INSERT ON " + Memories +
			" BEGIN " + bumpOwner("NEW.owner") + " END",
		"CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[1] + " AFTER UPDATE ON " + Memories +
			" BEGIN " + bumpOwner("NEW.owner") +
			" UPDATE " + OwnerVersions + " SET version = version + 1 WHERE OLD.owner IS NOT NEW.owner AND owner = OLD.owner;" +
			" END",
		"CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[2] + " AFTER DELETE ON " + Memories +
			" BEGIN " + bumpOwner("OLD.owner") + " END",
	}
}

// EnsureOwnerVersions creates OwnerVersions and its triggers if any is
// missing (a collection dropped and made again loses its triggers).
func EnsureOwnerVersions(app core.App) error {
	for _, q := range OwnerVersionsSQL() {
		if _, err := app.DB().NewQuery(q).Execute(); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	m.Register(EnsureOwnerVersions, func(app core.App) error {
		for _, q := range []string{
			"DROP TRIGGER IF EXISTS " + OwnerVersionTriggers[0],
			"DROP TRIGGER IF EXISTS " + OwnerVersionTriggers[1],
			"DROP TRIGGER IF EXISTS " + OwnerVersionTriggers[2],
			"DROP TABLE IF EXISTS " + OwnerVersions,
		} {
			if _, err := app.DB().NewQuery(q).Execute(); err != nil {
				return err
			}
		}
		return nil
	})
}
