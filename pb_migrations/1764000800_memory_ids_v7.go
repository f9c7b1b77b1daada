package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// Memory ids written by the service are UUID v7 from now on; the id field
// accepts them (and the v4 ids already stored) so the dashboard can still
// save a memory record.
func init() {
	setPattern := func(app core.App, pattern string) error {
		col, err := app.FindCollectionByNameOrId(Memories)
		if err != nil {
			return err
		}
		id, _ := col.Fields.GetByName(core.FieldNameId).(*core.TextField)
		if id == nil {
			return nil
		}
		id.Pattern = pattern
		return app.Save(col)
	}
	m.Register(func(app core.App) error {
		return setPattern(app, MemoryIDPattern)
	}, func(app core.App) error {
		return setPattern(app, UUIDPattern)
	})
}
