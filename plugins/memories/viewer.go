package memories

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// groupCache keeps every user's group memberships in memory: Viewer runs
// on every tool call, and reading them meant a json_each scan of the groups
// table each time (10% of query_memory's CPU). Any committed change to a
// group bumps gen; the next Viewer reloads the table (groups are few and
// change rarely).
type groupCache struct {
	gen    atomic.Uint64
	mu     sync.RWMutex
	loaded uint64 // gen+1 when byUser was read; 0: never
	byUser map[string][]string
}

// bindGroupCache invalidates the cache on every committed group change.
func (s *Service) bindGroupCache(app core.App) {
	bump := func(e *core.ModelEvent) error {
		s.groups.gen.Add(1)
		return e.Next()
	}
	app.OnModelAfterCreateSuccess(pb_migrations.Groups).BindFunc(bump)
	app.OnModelAfterUpdateSuccess(pb_migrations.Groups).BindFunc(bump)
	app.OnModelAfterDeleteSuccess(pb_migrations.Groups).BindFunc(bump)
}

// groupsOf returns the ids of the groups userID belongs to (sorted; a
// fresh slice).
func (s *Service) groupsOf(userID string) ([]string, error) {
	c := &s.groups
	gen := c.gen.Load()
	c.mu.RLock()
	if c.loaded == gen+1 {
		ids := slices.Clone(c.byUser[userID])
		c.mu.RUnlock()
		return ids, nil
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded != gen+1 {
		var rows []struct {
			ID      string `db:"id"`
			Members string `db:"members"`
		}
		if err := s.app.DB().Select("id", "members").From(pb_migrations.Groups).OrderBy("id").All(&rows); err != nil {
			return nil, err
		}
		byUser := map[string][]string{}
		for _, r := range rows {
			for _, u := range jsonIDs(r.Members) {
				if l := byUser[u]; len(l) == 0 || l[len(l)-1] != r.ID {
					byUser[u] = append(l, r.ID)
				}
			}
		}
		// gen was read before the table: a change committed meanwhile
		// bumped it, so the next call reads again
		c.byUser, c.loaded = byUser, gen+1
	}
	return slices.Clone(c.byUser[userID]), nil
}
