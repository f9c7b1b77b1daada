package memories

import (
	"encoding/json"

	"github.com/pocketbase/pocketbase/tools/types"
)

// memoryColumns are the columns memoryRow reads.
var memoryColumns = []string{"id", "owner", "text", "permission", "shared_users", "shared_groups", "expires_at", "created", "updated"}

// memoryRow is a memory read straight into a struct: listing skips
// building a PocketBase Record per row (field resolution and interceptors),
// which dominated get_memories' CPU profile.
type memoryRow struct {
	ID           string `db:"id"`
	Owner        string `db:"owner"`
	Text         string `db:"text"`
	Permission   string `db:"permission"`
	SharedUsers  string `db:"shared_users"`
	SharedGroups string `db:"shared_groups"`
	ExpiresAt    string `db:"expires_at"`
	Created      string `db:"created"`
	Updated      string `db:"updated"`
}

func (s *Service) rowToMemory(r *memoryRow) (*Memory, error) {
	text, err := s.cipher.Decrypt(r.Text)
	if err != nil {
		return nil, internal("decrypt memory "+r.ID, err)
	}
	created, _ := types.ParseDateTime(r.Created)
	updated, _ := types.ParseDateTime(r.Updated)
	m := &Memory{
		ID:               r.ID,
		Text:             text,
		Permission:       r.Permission,
		SharedWith:       jsonIDs(r.SharedUsers),
		SharedWithGroups: jsonIDs(r.SharedGroups),
		OwnerID:          r.Owner,
		Created:          created.Time().UTC(),
		Updated:          updated.Time().UTC(),
	}
	if exp, err := types.ParseDateTime(r.ExpiresAt); err == nil && !exp.IsZero() {
		t := exp.Time().UTC()
		m.ExpirationDate = &t
	}
	return m, nil
}

// jsonIDs reads a multi-relation column (a JSON array of ids, or empty).
func jsonIDs(v string) []string {
	ids := []string{}
	if v == "" || v == "[]" {
		return ids
	}
	if err := json.Unmarshal([]byte(v), &ids); err != nil || ids == nil {
		return []string{}
	}
	return ids
}
