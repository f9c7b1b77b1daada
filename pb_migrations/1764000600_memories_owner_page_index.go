package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// MemoriesPageIndex serves get_memories' pages: one owner's memories in
// (created, id) order, so a page is read straight off the index, in order,
// from the cursor on, with no sort (the id tie-break needed a temporary
// B-tree with the old (owner, created) index) and no scan of the earlier
// pages. It replaces idx_memories_owner_created, which it covers.
const MemoriesPageIndex = "idx_memories_owner_created_id"

func init() {
	m.Register(func(app core.App) error {
		col, err := app.FindCollectionByNameOrId(Memories)
		if err != nil {
			return err
		}
		col.RemoveIndex("idx_memories_owner_created")
		col.AddIndex(MemoriesPageIndex, false, "owner, created, id", "")
		return app.Save(col)
	}, func(app core.App) error {
		col, err := app.FindCollectionByNameOrId(Memories)
		if err != nil {
			return err
		}
		col.RemoveIndex(MemoriesPageIndex)
		col.AddIndex("idx_memories_owner_created", false, "owner, created", "")
		return app.Save(col)
	})
}
