package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// UserDisabled is the users field an admin ticks in the dashboard to
// deactivate an account: its grants are revoked, its access tokens stop
// working, and it cannot sign in or be connected again until unticked.
const UserDisabled = "disabled"

func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		users.Fields.Add(&core.BoolField{Name: UserDisabled})
		return app.Save(users)
	}, func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		users.Fields.RemoveByName(UserDisabled)
		return app.Save(users)
	})
}
