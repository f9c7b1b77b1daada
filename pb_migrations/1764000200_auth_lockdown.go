package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// Users sign in only through Picard's /authorize pages (throttled there);
// PocketBase's own password endpoint for users would sidestep that
// throttle, so it is off. Superusers keep the dashboard sign-in, behind
// PocketBase's rate limiter.
func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		users.PasswordAuth.Enabled = false
		users.AuthRule = nil
		if err := app.Save(users); err != nil {
			return err
		}
		settings := app.Settings()
		settings.RateLimits.Enabled = true
		settings.RateLimits.Rules = []core.RateLimitRule{
			{Label: "*:auth", MaxRequests: 5, Duration: 60},
		}
		return app.Save(settings)
	}, func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		users.PasswordAuth.Enabled = true
		rule := ""
		users.AuthRule = &rule
		return app.Save(users)
	})
}
