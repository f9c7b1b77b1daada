package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"strings"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// OwnerVersionColumns are the columns of a memory whose update moves its
// owner's counter (OwnerVersions): every column a get_memories page reads,
// shows or selects by (id, owner, text, permission, sharing, expiry,
// created, updated). An update of none of them, such as the indexer
// marking memories ready (index_status, index_error), leaves the owner's
// cached pages current; until this migration every update of a memory
// bumped the counter, so each indexer pass emptied its owners' pages.
var OwnerVersionColumns = []string{"id", "owner", "text", "permission", "shared_users", "shared_groups", "expires_at", "created", "updated"}

// ownerVersionUpdateSQL creates the update trigger (OwnerVersionTriggers[1])
// on OwnerVersionColumns only. SQLite fires an AFTER UPDATE OF trigger when
// the UPDATE's SET names one of the columns, whether or not its value
// changes: a PocketBase save sets every column, so it always bumps.
func ownerVersionUpdateSQL() string {
	return "CREATE TRIGGER IF NOT EXISTS " + OwnerVersionTriggers[1] +
		" AFTER UPDATE OF " + strings.Join(OwnerVersionColumns, ", ") + " ON " + Memories +
		" BEGIN " + bumpOwner("NEW.owner") +
		" UPDATE " + OwnerVersions + " SET version = version + 1 WHERE OLD.owner IS NOT NEW.owner AND owner = OLD.owner;" +
		" END"
}

// ownerVersionsShownSQL is OwnerVersionsSQL with the update trigger on
// OwnerVersionColumns only.
func ownerVersionsShownSQL() []string {
	qs := OwnerVersionsSQL()
	for i, q := range qs {
		if strings.Contains(q, " TRIGGER IF NOT EXISTS "+OwnerVersionTriggers[1]+" ") {
			qs[i] = ownerVersionUpdateSQL()
		}
	}
	return qs
}

// EnsureOwnerVersionsShown creates OwnerVersions and its triggers, the
// update trigger on OwnerVersionColumns only, where any is missing (a
// collection dropped and made again loses its triggers). A trigger that
// exists is left as it is.
func EnsureOwnerVersionsShown(app core.App) error {
	for _, q := range ownerVersionsShownSQL() {
		if _, err := app.DB().NewQuery(q).Execute(); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	replace := func(app core.App, create func(core.App) error) error {
		if _, err := app.DB().NewQuery("DROP TRIGGER IF EXISTS " + OwnerVersionTriggers[1]).Execute(); err != nil {
			return err
		}
		return create(app)
	}
	m.Register(func(app core.App) error {
		return replace(app, EnsureOwnerVersionsShown)
	}, func(app core.App) error {
		return replace(app, EnsureOwnerVersions) // every update bumps again
	})
}
