package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// Collections of the browser authorization flow.
const (
	OAuthCodes    = "oauth_codes"
	OAuthConsents = "oauth_consents"
	OAuthSessions = "oauth_sessions"
	OAuthSecrets  = "oauth_secrets"
)

// The authorization-code flow: codes, remembered consent, browser sessions,
// a server secret for CSRF tokens, and the client fields that dynamic
// registration (RFC 7591) and client ID metadata documents need.
func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		clients, err := app.FindCollectionByNameOrId(OAuthClients)
		if err != nil {
			return err
		}
		clients.Fields.Add(
			// how the client came to be: admin, dynamic (RFC 7591) or cimd
			&core.TextField{Name: "source", Max: 16},
			&core.TextField{Name: "token_endpoint_auth_method", Max: 32},
			// the client_id URL of a client ID metadata document
			&core.TextField{Name: "metadata_url", Max: 2048},
			&core.DateField{Name: "metadata_fetched"},
		)
		clients.AddIndex("idx_clients_metadata_url", true, "metadata_url", "metadata_url != ''")
		if err := app.Save(clients); err != nil {
			return err
		}

		grants, err := app.FindCollectionByNameOrId(OAuthGrants)
		if err != nil {
			return err
		}
		grants.AddIndex("idx_grants_client", false, "client", "")
		if err := app.Save(grants); err != nil {
			return err
		}

		tokens, err := app.FindCollectionByNameOrId(OAuthTokens)
		if err != nil {
			return err
		}
		tokens.Fields.Add(&core.BoolField{Name: "revoked"})
		if err := app.Save(tokens); err != nil {
			return err
		}

		codes := core.NewBaseCollection(OAuthCodes)
		useUUIDs(codes)
		codes.Fields.Add(
			&core.TextField{Name: "code_hash", Hidden: true, Required: true, Max: 128},
			&core.RelationField{Name: "client", CollectionId: clients.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.RelationField{Name: "user", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.TextField{Name: "redirect_uri", Required: true, Max: 2048},
			&core.TextField{Name: "scope", Max: 1000},
			&core.TextField{Name: "code_challenge", Required: true, Max: 128},
			&core.TextField{Name: "resource", Required: true, Max: 2048},
			&core.DateField{Name: "expires", Required: true},
			&core.DateField{Name: "used_at"},
			// the grant the code was exchanged for: a replay revokes it
			&core.RelationField{Name: "grant", CollectionId: grants.Id, MaxSelect: 1},
		)
		timestamps(codes)
		codes.AddIndex("idx_codes_hash", true, "code_hash", "")
		codes.AddIndex("idx_codes_expires", false, "expires", "")
		if err := app.Save(codes); err != nil {
			return err
		}

		consents := core.NewBaseCollection(OAuthConsents)
		useUUIDs(consents)
		consents.Fields.Add(
			&core.RelationField{Name: "user", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.RelationField{Name: "client", CollectionId: clients.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			// space-separated scopes the user agreed to
			&core.TextField{Name: "scope", Max: 1000},
		)
		timestamps(consents)
		consents.AddIndex("idx_consents_user_client", true, "user, client", "")
		if err := app.Save(consents); err != nil {
			return err
		}

		sessions := core.NewBaseCollection(OAuthSessions)
		useUUIDs(sessions)
		sessions.Fields.Add(
			&core.TextField{Name: "token_hash", Hidden: true, Required: true, Max: 128},
			&core.RelationField{Name: "user", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.DateField{Name: "expires", Required: true},
		)
		timestamps(sessions)
		sessions.AddIndex("idx_sessions_hash", true, "token_hash", "")
		if err := app.Save(sessions); err != nil {
			return err
		}

		secrets := core.NewBaseCollection(OAuthSecrets)
		useUUIDs(secrets)
		secrets.Fields.Add(
			&core.TextField{Name: "name", Required: true, Max: 64, Presentable: true},
			// value is Fernet-encrypted
			&core.TextField{Name: "value", Hidden: true, Required: true, Max: 4000},
		)
		timestamps(secrets)
		secrets.AddIndex("idx_secrets_name", true, "name", "")
		return app.Save(secrets)
	}, func(app core.App) error {
		for _, name := range []string{OAuthSecrets, OAuthSessions, OAuthConsents, OAuthCodes} {
			c, err := app.FindCollectionByNameOrId(name)
			if err != nil {
				continue
			}
			if err := app.Delete(c); err != nil {
				return err
			}
		}
		if tokens, err := app.FindCollectionByNameOrId(OAuthTokens); err == nil {
			tokens.Fields.RemoveByName("revoked")
			if err := app.Save(tokens); err != nil {
				return err
			}
		}
		if grants, err := app.FindCollectionByNameOrId(OAuthGrants); err == nil {
			grants.RemoveIndex("idx_grants_client")
			if err := app.Save(grants); err != nil {
				return err
			}
		}
		if clients, err := app.FindCollectionByNameOrId(OAuthClients); err == nil {
			clients.RemoveIndex("idx_clients_metadata_url")
			for _, f := range []string{"source", "token_endpoint_auth_method", "metadata_url", "metadata_fetched"} {
				clients.Fields.RemoveByName(f)
			}
			return app.Save(clients)
		}
		return nil
	})
}
