// Package pb_migrations holds Picard's PocketBase schema as Go migrations.
// Importing it registers them; they run automatically on start.
package pb_migrations //nolint:revive // the directory name is part of the layout

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// UUIDPattern matches the UUID v4 strings used for every client-visible id.
const UUIDPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`

// MemoryIDPattern matches memory ids: UUID v7 from the service (time-ordered,
// so memories written in the same millisecond keep their order), v4 from the
// dashboard and from earlier versions.
const MemoryIDPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`

// uuidAutogenerate makes PocketBase generate UUID v4 ids (crypto/rand).
const uuidAutogenerate = `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`

// Collection names.
const (
	Users         = "users"
	Groups        = "groups"
	Memories      = "memories"
	Tombstones    = "vector_tombstones"
	OAuthClients  = "oauth_clients"
	OAuthGrants   = "oauth_grants"
	OAuthTokens   = "oauth_tokens"
	OAuthKeys     = "oauth_keys"
	maxJSONBytes  = 64 << 10
	maxMemoryText = 200_000 // characters of ciphertext; the service limits plaintext
)

func useUUIDs(c *core.Collection) {
	id, _ := c.Fields.GetByName(core.FieldNameId).(*core.TextField)
	if id == nil {
		id = &core.TextField{Name: core.FieldNameId, PrimaryKey: true, System: true, Required: true}
		c.Fields.Add(id)
	}
	id.Min, id.Max = 36, 36
	id.Pattern = UUIDPattern
	id.AutogeneratePattern = uuidAutogenerate
}

func timestamps(c *core.Collection) {
	c.Fields.Add(
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	)
}

func init() {
	m.Register(func(app core.App) error {
		// users: UUID ids, a unique username, sign-up only through Picard.
		users, err := app.FindCollectionByNameOrId(Users)
		if err != nil {
			return err
		}
		useUUIDs(users)
		users.Fields.Add(&core.TextField{
			Name: "username", Required: true, Min: 3, Max: 64,
			Pattern: `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, Presentable: true,
		})
		users.AddIndex("idx_users_username", true, "username COLLATE NOCASE", "")
		users.CreateRule = nil
		users.UpdateRule = nil
		users.DeleteRule = nil
		if err := app.Save(users); err != nil {
			return err
		}

		groups := core.NewBaseCollection(Groups)
		useUUIDs(groups)
		groups.Fields.Add(
			&core.TextField{Name: "name", Required: true, Max: 100, Presentable: true},
			&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1, CascadeDelete: true},
			&core.RelationField{Name: "members", CollectionId: users.Id, MaxSelect: 10000},
		)
		timestamps(groups)
		groups.AddIndex("idx_groups_name", true, "name COLLATE NOCASE", "")
		if err := app.Save(groups); err != nil {
			return err
		}

		memories := core.NewBaseCollection(Memories)
		useUUIDs(memories)
		memories.Fields.Add(
			&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			// text is always a Fernet token at rest (plugins/fernet).
			&core.TextField{Name: "text", Required: true, Max: maxMemoryText},
			&core.TextField{Name: "permission", Required: true, Max: 32, Pattern: `^[a-z][a-z0-9_]{1,31}$`},
			&core.RelationField{Name: "shared_users", CollectionId: users.Id, MaxSelect: 1000},
			&core.RelationField{Name: "shared_groups", CollectionId: groups.Id, MaxSelect: 1000},
			&core.DateField{Name: "expires_at"},
			// index_status is the outbox: pending until the vector store has it.
			&core.SelectField{Name: "index_status", Values: []string{"pending", "ready"}, MaxSelect: 1},
			&core.TextField{Name: "index_error", Max: 2000},
		)
		timestamps(memories)
		memories.AddIndex("idx_memories_owner_created", false, "owner, created", "")
		memories.AddIndex("idx_memories_expires", false, "expires_at", "expires_at != ''")
		memories.AddIndex("idx_memories_pending", false, "index_status", "index_status = 'pending'")
		if err := app.Save(memories); err != nil {
			return err
		}

		tomb := core.NewBaseCollection(Tombstones)
		tomb.Fields.Add(&core.TextField{Name: "memory_id", Required: true, Max: 36})
		timestamps(tomb)
		tomb.AddIndex("idx_tombstones_memory", true, "memory_id", "")
		if err := app.Save(tomb); err != nil {
			return err
		}

		clients := core.NewBaseCollection(OAuthClients)
		useUUIDs(clients)
		clients.Fields.Add(
			&core.TextField{Name: "name", Required: true, Max: 200, Presentable: true},
			&core.TextField{Name: "secret_hash", Hidden: true, Max: 200},
			&core.JSONField{Name: "redirect_uris", MaxSize: maxJSONBytes},
			&core.JSONField{Name: "scopes", MaxSize: maxJSONBytes},
			&core.BoolField{Name: "confidential"},
			&core.BoolField{Name: "disabled"},
		)
		timestamps(clients)
		if err := app.Save(clients); err != nil {
			return err
		}

		grants := core.NewBaseCollection(OAuthGrants)
		useUUIDs(grants)
		grants.Fields.Add(
			&core.RelationField{Name: "user", CollectionId: users.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.RelationField{Name: "client", CollectionId: clients.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.TextField{Name: "scope", Max: 1000},
			&core.BoolField{Name: "revoked"},
		)
		timestamps(grants)
		grants.AddIndex("idx_grants_user", false, "user", "")
		if err := app.Save(grants); err != nil {
			return err
		}

		tokens := core.NewBaseCollection(OAuthTokens)
		useUUIDs(tokens)
		tokens.Fields.Add(
			&core.RelationField{Name: "grant", CollectionId: grants.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
			&core.SelectField{Name: "kind", Values: []string{"access", "refresh"}, MaxSelect: 1, Required: true},
			&core.TextField{Name: "token_hash", Hidden: true, Max: 128},
			&core.DateField{Name: "expires", Required: true},
			&core.DateField{Name: "used_at"},
		)
		timestamps(tokens)
		tokens.AddIndex("idx_tokens_hash", true, "token_hash", "token_hash != ''")
		tokens.AddIndex("idx_tokens_grant", false, "grant", "")
		if err := app.Save(tokens); err != nil {
			return err
		}

		keys := core.NewBaseCollection(OAuthKeys)
		useUUIDs(keys)
		keys.Fields.Add(
			&core.TextField{Name: "alg", Required: true, Max: 16},
			// private_key is Fernet-encrypted PEM.
			&core.TextField{Name: "private_key", Hidden: true, Required: true, Max: 20000},
			&core.JSONField{Name: "public_jwk", MaxSize: maxJSONBytes},
			&core.BoolField{Name: "active"},
			&core.DateField{Name: "retire_after"},
		)
		timestamps(keys)
		return app.Save(keys)
	}, func(app core.App) error {
		for _, name := range []string{OAuthKeys, OAuthTokens, OAuthGrants, OAuthClients, Tombstones, Memories, Groups} {
			c, err := app.FindCollectionByNameOrId(name)
			if err != nil {
				continue
			}
			if err := app.Delete(c); err != nil {
				return err
			}
		}
		return nil
	})
}
