package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// AccessLog is the per-memory access audit log: who read, changed or
// shared which memory, when, through which OAuth client. Owners read their
// part through the memory_access_log tool; the collection's API rules are
// admin-only (nil), so in the dashboard only superusers see it.
const AccessLog = "memory_access_log"

// AccessActions are the values of memory_access_log.action.
var AccessActions = []string{"read", "search_hit", "resource_read", "persona_use", "create", "update", "share", "delete", "import"}

func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		c := core.NewBaseCollection(AccessLog)
		useUUIDs(c)
		c.Fields.Add(
			// the memory may be gone since: keep its id as text
			&core.TextField{Name: "memory_id", Required: true, Max: 36},
			// the owner's entries go when the owner's account does
			&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			// the user who acted (may be the owner, may be deleted since)
			&core.TextField{Name: "actor", Required: true, Max: 36},
			&core.TextField{Name: "client_id", Max: 200},
			&core.SelectField{Name: "action", Values: AccessActions, MaxSelect: 1, Required: true},
			&core.DateField{Name: "at", Required: true},
		)
		timestamps(c)
		c.AddIndex("idx_access_log_owner", false, "owner, at, id", "")
		c.AddIndex("idx_access_log_memory", false, "memory_id, at", "")
		c.AddIndex("idx_access_log_at", false, "at", "")
		// admin only: nil rules
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(AccessLog)
		if err != nil {
			return err
		}
		return app.Delete(c)
	})
}
