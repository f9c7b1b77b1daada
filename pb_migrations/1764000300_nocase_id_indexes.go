package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// NoCaseIDIndexed are the collections whose rows are created on the hot
// path. PocketBase checks that a new record's id is free with
// `id = ? COLLATE NOCASE` whenever the id field has a custom pattern (ours:
// UUIDs), which the primary key cannot answer: without an index of the same
// collation every insert scanned the whole table (see docs/performance.md).
var NoCaseIDIndexed = []string{Memories, OAuthTokens, OAuthGrants}

func noCaseIDIndex(name string) string { return "idx_" + name + "_id_nocase" }

func init() {
	m.Register(func(app core.App) error {
		for _, name := range NoCaseIDIndexed {
			col, err := app.FindCollectionByNameOrId(name)
			if err != nil {
				return err
			}
			col.AddIndex(noCaseIDIndex(name), false, "id COLLATE NOCASE", "")
			if err := app.Save(col); err != nil {
				return err
			}
		}
		return nil
	}, func(app core.App) error {
		for _, name := range NoCaseIDIndexed {
			col, err := app.FindCollectionByNameOrId(name)
			if err != nil {
				return err
			}
			col.RemoveIndex(noCaseIDIndex(name))
			if err := app.Save(col); err != nil {
				return err
			}
		}
		return nil
	})
}
