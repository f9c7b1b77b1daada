package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"slices"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// AccessEvents holds the access log as it is written: one row per tool
// call (and owner) listing the memories the call touched in memory_ids (a
// JSON array). A get_memories page of 20 is one small row instead of 20
// rows of a four-index table. AccessLog (memory_access_log) is now a view
// of it with one row per memory, as before: what admins see in the
// dashboard. Both are admin-only (nil API rules).
const AccessEvents = "memory_access_events"

// accessLogView expands AccessEvents into one row per memory. Its id is the
// event's id and the memory's place in the event.
const accessLogView = "SELECT (e.id || '-' || j.key) AS id, CAST(j.value AS TEXT) AS memory_id, e.owner AS owner," +
	" e.actor AS actor, e.client_id AS client_id, e.action AS action, e.at AS at" +
	" FROM " + AccessEvents + " e, json_each(e.memory_ids) j"

func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		ev := core.NewBaseCollection(AccessEvents)
		// ids: PocketBase's 15 random characters; the old entries keep their UUIDs
		if id, ok := ev.Fields.GetByName(core.FieldNameId).(*core.TextField); ok {
			id.Min, id.Max, id.Pattern = 1, 36, `^[a-z0-9-]+$`
		}
		ev.Fields.Add(
			// the owner's entries go when the owner's account does
			&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			// the user who acted (may be the owner, may be deleted since)
			&core.TextField{Name: "actor", Required: true, Max: 36},
			&core.TextField{Name: "client_id", Max: 200},
			&core.SelectField{Name: "action", Values: slices.Concat(AccessActions, []string{"export"}), MaxSelect: 1, Required: true},
			&core.DateField{Name: "at", Required: true},
			// the memories (ids; they may be gone since), in the order the call returned them
			&core.JSONField{Name: "memory_ids", Required: true},
		)
		ev.AddIndex("idx_access_events_owner", false, "owner, at, id", "")
		ev.AddIndex("idx_access_events_at", false, "at", "")
		if err := app.Save(ev); err != nil {
			return err
		}
		// keep every entry: one event per old row
		if _, err := app.DB().NewQuery("INSERT INTO " + AccessEvents +
			" (id, owner, actor, client_id, action, at, memory_ids)" +
			" SELECT id, owner, actor, client_id, action, at, json_array(memory_id) FROM " + AccessLog).Execute(); err != nil {
			return err
		}
		old, err := app.FindCollectionByNameOrId(AccessLog)
		if err != nil {
			return err
		}
		if err := app.Delete(old); err != nil {
			return err
		}
		view := core.NewViewCollection(AccessLog)
		view.ViewQuery = accessLogView
		return app.Save(view)
	}, func(app core.App) error {
		view, err := app.FindCollectionByNameOrId(AccessLog)
		if err != nil {
			return err
		}
		if err := app.Delete(view); err != nil {
			return err
		}
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		c := core.NewBaseCollection(AccessLog)
		useUUIDs(c)
		c.Fields.Add(
			&core.TextField{Name: "memory_id", Required: true, Max: 36},
			&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.TextField{Name: "actor", Required: true, Max: 36},
			&core.TextField{Name: "client_id", Max: 200},
			&core.SelectField{Name: "action", Values: AccessActions, MaxSelect: 1, Required: true},
			&core.DateField{Name: "at", Required: true},
		)
		timestamps(c)
		c.AddIndex("idx_access_log_owner", false, "owner, at, id", "")
		c.AddIndex("idx_access_log_memory", false, "memory_id, at", "")
		c.AddIndex("idx_access_log_at", false, "at", "")
		if err := app.Save(c); err != nil {
			return err
		}
		// the old ids are UUIDs and events of one memory keep theirs; the others get new ones
		if _, err := app.DB().NewQuery("INSERT INTO " + AccessLog +
			" (id, memory_id, owner, actor, client_id, action, at, created, updated)" +
			" SELECT CASE WHEN json_array_length(e.memory_ids) = 1 AND length(e.id) = 36 THEN e.id ELSE lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-a' || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))) END," +
			" CAST(j.value AS TEXT), e.owner, e.actor, e.client_id, e.action, e.at, e.at, e.at" +
			" FROM " + AccessEvents + " e, json_each(e.memory_ids) j WHERE e.action != 'export'").Execute(); err != nil {
			return err
		}
		ev, err := app.FindCollectionByNameOrId(AccessEvents)
		if err != nil {
			return err
		}
		return app.Delete(ev)
	})
}
