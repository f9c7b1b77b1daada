package oauth

import (
	"log/slog"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// bindUserState ends a user's grants when an admin deactivates the
// account (users.disabled) or the password changes (a reset, or
// "log out everywhere", both of which renew PocketBase's token key):
// refresh tokens stop working at once and access tokens at their next use
// in this process (DefaultRevocationRecheck in another).
func (s *Server) bindUserState(app core.App) {
	app.OnRecordAfterUpdateSuccess(pb_migrations.Users).BindFunc(func(e *core.RecordEvent) error {
		old := e.Record.Original()
		disabled := e.Record.GetBool(pb_migrations.UserDisabled) && !old.GetBool(pb_migrations.UserDisabled)
		rekeyed := e.Record.TokenKey() != old.TokenKey()
		if disabled || rekeyed {
			if err := s.RevokeUserGrants(e.App, e.Record.Id); err != nil {
				// the hook runs after the save: log loudly, the token
				// check below still refuses a disabled user
				slog.Error("oauth: revoke the grants of a changed user", "user", e.Record.Id, "error", err)
			}
		}
		return e.Next()
	})
}

// RevokeUserGrants ends every token family of userID.
func (s *Server) RevokeUserGrants(app core.App, userID string) error {
	_, err := app.DB().Update(pb_migrations.OAuthGrants, dbx.Params{"revoked": true},
		dbx.NewExp("[[user]] = {:u} AND revoked = false", dbx.Params{"u": userID})).Execute()
	s.verified.invalidate()
	return err
}

// userDisabled reports whether an admin deactivated user.
func userDisabled(user *core.Record) bool {
	return user != nil && user.GetBool(pb_migrations.UserDisabled)
}
