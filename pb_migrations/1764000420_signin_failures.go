package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// OAuthSignInFailures holds failed sign-ins at /authorize, so the
// sign-in throttle holds across restarts and across replicas sharing the
// database. Keys are SHA-256 hashes (no usernames or addresses stored);
// rows older than the throttle window are deleted as new ones arrive.
// Admin-only (nil rules).
const OAuthSignInFailures = "oauth_signin_failures"

func init() {
	m.Register(func(app core.App) error {
		c := core.NewBaseCollection(OAuthSignInFailures)
		useUUIDs(c)
		c.Fields.Add(
			&core.TextField{Name: "bucket", Required: true, Max: 32},
			&core.TextField{Name: "key_hash", Required: true, Max: 64},
			&core.DateField{Name: "at", Required: true},
		)
		timestamps(c)
		c.AddIndex("idx_signin_failures_key", false, "bucket, key_hash, at", "")
		c.AddIndex("idx_signin_failures_at", false, "bucket, at", "")
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(OAuthSignInFailures)
		if err != nil {
			return err
		}
		return app.Delete(c)
	})
}
