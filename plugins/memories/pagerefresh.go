package memories

import (
	"time"
)

// pagePos is a row's place in an owner's listing: (created, id), as
// stored.
type pagePos struct{ created, id string }

// refreshPage makes the first page of a newest-first listing q again from
// old, the page as read before its owner added memories and changed none
// (pageCache.get says so by the owner's counters, ov now). The owner's
// version counter moves by one for each memory added, so ov.version - old.owner
// memories were added since old was read; every memory on old is still
// there as read and still unexpired (old's TTL has not passed). When
// exactly that many of the owner's memories are newer than old's first
// row, all the added ones are, and the page is those (the ones passing
// q's filters) above old's rows: only they are read, by the page index,
// instead of the whole page. Anything else (another page, oldest first,
// memories added below the top, more than a page of them) reads the page
// whole. Under a mix of reads and writes most get_memories misses are of
// this kind (docs/performance.md, "Hot path, round 10").
func (s *Service) refreshPage(q listQuery, limit int, old *cachedPage, ov ownerVersion) (*ListResult, time.Time, error) {
	prev := old.res
	added := ov.version - old.owner
	if !q.desc || q.cursorCreated != "" || added <= 0 || added > int64(limit) || len(prev.rows) == 0 {
		return s.readPage(q, limit)
	}
	top := prev.rows[0]
	// every memory of the owner newer than old's first row, whatever its
	// permission or expiry: one more than were added shows another
	// change raced the counters (the page is then read whole)
	dq := listQuery{ownerID: q.ownerID, desc: true, limit: int(added) + 1, boundCreated: top.created, boundID: top.id}
	recs, err := s.queryRows(dq)
	if err != nil {
		return nil, time.Time{}, internal("list memories", err)
	}
	if int64(len(recs)) != added {
		return s.readPage(q, limit)
	}
	fresh := recs[:0]
	for _, r := range recs {
		if (q.permission == "" || r.Permission == q.permission) && (q.now == "" || r.ExpiresAt == "" || r.ExpiresAt > q.now) {
			fresh = append(fresh, r)
		}
	}
	n := min(len(fresh)+len(prev.rows), limit+1)
	res := &ListResult{Memories: make([]*Memory, 0, min(n, limit)), rows: make([]pagePos, 0, n)}
	for i := range fresh {
		res.rows = append(res.rows, pagePos{fresh[i].Created, fresh[i].ID})
	}
	res.rows = append(res.rows, prev.rows...)
	res.rows = res.rows[:n]
	for i := range fresh[:min(len(fresh), limit)] {
		m, err := s.rowToMemory(&fresh[i])
		if err != nil {
			return nil, time.Time{}, err
		}
		res.Memories = append(res.Memories, m)
	}
	if keep := limit - len(res.Memories); keep > 0 {
		// the kept memories' JSON is on the old page, if it was encoded
		// (pageencode.go); one that was not is not linked, so pages
		// refreshed again and again while nobody encodes them (REST
		// reads) hold at most one older encoding each, not a chain
		if prev.enc != nil && prev.enc.done.Load() {
			res.enc = &encodedPage{base: prev.enc, baseMems: prev.Memories, at: len(res.Memories)}
		}
		res.Memories = append(res.Memories, prev.Memories[:min(keep, len(prev.Memories))]...)
	}
	if n > limit {
		last := res.rows[limit-1]
		res.NextCursor = encodeCursor(last.created, last.id)
	}
	s.pages.refreshes.Add(1)
	expires := old.expires
	if q.now != "" {
		expires, res.unreadableExpiry = earliestExpiry(fresh, expires)
	}
	return res, expires, nil
}
