package memories

import (
	"fmt"

	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/pb_migrations"
)

// PersonaCandidate is a user whose persona can answer: someone with at
// least one unexpired public memory.
type PersonaCandidate struct {
	ID       string `db:"id" json:"id"`
	Username string `db:"username" json:"username"`
}

// PersonaCandidates lists up to limit users with an unexpired public
// memory whose username or id starts with prefix (case-insensitive),
// ordered by username; more reports whether there were others.
func (s *Service) PersonaCandidates(prefix string, limit int) (out []PersonaCandidate, more bool, err error) {
	if limit <= 0 {
		return nil, false, nil
	}
	q := s.app.DB().Select("u.id", "u.username").Distinct(true).
		From(pb_migrations.Users+" u").
		InnerJoin(pb_migrations.Memories+" m", dbx.NewExp("m.owner = u.id")).
		Where(dbx.HashExp{"m.permission": "public"}).
		AndWhere(dbx.NewExp("(m.expires_at = '' OR m.expires_at > {:now})", dbx.Params{"now": dbTime(s.timeNow())})).
		OrderBy("u.username ASC").
		Limit(int64(limit + 1))
	if prefix != "" {
		q = q.AndWhere(dbx.Or(dbx.Like("u.username", prefix).Match(false, true), dbx.Like("u.id", prefix).Match(false, true)))
	}
	if err := q.All(&out); err != nil {
		return nil, false, fmt.Errorf("memories: persona candidates: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
