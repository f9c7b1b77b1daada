package memories

import (
	"slices"
	"strings"
	"time"
)

// pagePos is a row's place in an owner's listing: (created, id), as
// stored.
type pagePos struct{ created, id string }

// compare orders places oldest first.
func (a pagePos) compare(b pagePos) int {
	if c := strings.Compare(a.created, b.created); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// refreshPage makes page q again from old, the page as read before its
// owner added memories, and changed none (pageCache.get says so by the
// owner's counters): every memory on old is still there as read, and
// still unexpired (old's TTL has not passed), so the page is old's rows
// and the new memories that land on it, in order. Only those are read:
// the owner's memories within q's range that are not on old and come
// before old's row past the page (any place, without one). Under a mix
// of reads and writes most get_memories misses are of this kind, and
// reading the whole page again was ~7% of the mixed load's CPU
// (docs/performance.md, "Hot path, round 10").
func (s *Service) refreshPage(q listQuery, limit int, old *cachedPage) (*ListResult, time.Time, error) {
	prev := old.res
	if s.readStmts() == nil || len(prev.rows) > limit+1 || len(prev.Memories) != min(len(prev.rows), limit) {
		return s.readPage(q, limit)
	}
	dq := q
	for _, p := range prev.rows[:len(prev.Memories)] {
		dq.exclude = append(dq.exclude, p.id)
	}
	if len(prev.rows) > limit {
		past := prev.rows[limit]
		dq.boundCreated, dq.boundID = past.created, past.id
	}
	recs, err := s.queryRows(dq)
	if err != nil {
		return nil, time.Time{}, internal("list memories", err)
	}
	type entry struct {
		pos pagePos
		m   *Memory    // old's memory; nil for the row past old's page
		row *memoryRow // a new memory's row
	}
	all := make([]entry, 0, len(prev.rows)+len(recs))
	for i, p := range prev.rows {
		e := entry{pos: p}
		if i < len(prev.Memories) {
			e.m = prev.Memories[i]
		}
		all = append(all, e)
	}
	for i := range recs {
		all = append(all, entry{pos: pagePos{recs[i].Created, recs[i].ID}, row: &recs[i]})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if q.desc {
			return b.pos.compare(a.pos)
		}
		return a.pos.compare(b.pos)
	})
	all = all[:min(len(all), limit+1)]
	res := &ListResult{Memories: make([]*Memory, 0, min(len(all), limit)), rows: make([]pagePos, 0, len(all))}
	for i, e := range all {
		res.rows = append(res.rows, e.pos)
		if i == limit {
			last := all[i-1].pos
			res.NextCursor = encodeCursor(last.created, last.id)
			break
		}
		m := e.m
		if m == nil {
			if e.row == nil { // old's row past the page moved onto it: cannot be
				return s.readPage(q, limit)
			}
			if m, err = s.rowToMemory(e.row); err != nil {
				return nil, time.Time{}, err
			}
		}
		res.Memories = append(res.Memories, m)
	}
	expires := old.expires
	if q.now != "" {
		expires, res.unreadableExpiry = earliestExpiry(recs, expires)
	}
	return res, expires, nil
}
