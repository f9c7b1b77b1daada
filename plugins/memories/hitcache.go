package memories

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform/policy"
)

// Bounds of the search-hit cache: at most hitCacheEntries memories and
// about hitCacheBytes of them (oldest used go first).
const (
	hitCacheEntries = 16384
	hitCacheBytes   = 16 << 20
)

// hitCache keeps the memories query_memory loaded for its hits, read,
// decrypted and decoded, so a hit found again costs no SQLite read, no
// decryption and no parsing. It holds rows, never answers: who may see a
// memory (rowVisible's policy check, its expiry against the clock) and
// what they see of it (redactFor) are decided again on every use.
//
// A memory is served from the cache only while none of its owner's
// memories has changed since it was read, checked much as the
// get_memories page cache checks its pages (see pageCache): the data
// version read by the shared versionProbe before the lookup, unchanged
// since the memory was read or last checked, says so; changed, the
// owner's changed counter in pb_migrations.OwnerVersions (bumped by
// triggers in the transaction of every update or delete of the owner's
// memories, moves to another owner bumping both; not by an insert, which
// changes no memory already read) must be the one read with the row, and
// only at the schema version the row was read at, once the triggers that
// move it were seen there. (Until pb_migrations' 1764001100 the hits
// followed the version counter, which every insert moves: each new memory
// sent its owner's hits back to SQLite and Fernet.)
// The row and its owner's counter are read by one statement, so from one
// snapshot: a commit racing the read changes both or neither. An owner's
// counter is read once per data version, whatever the number of its hits
// and of the searches asking (ownerMemo).
type hitCache struct {
	c      *lru.Cache[string, *cachedHit]
	mu     sync.Mutex   // serialises put (its size accounting)
	bytes  atomic.Int64 // sizes of the hits in c
	probe  *versionProbe
	owners *ownerVersions

	memoMu  sync.Mutex
	memo    ownerMemo
	fillMu  sync.Mutex  // one scan of every owner's counter at a time
	tooMany atomic.Bool // more than allOwnersMax owners: no scans

	hits, misses atomic.Int64
	rowQueries   atomic.Int64 // statements that read rows (tests)
}

// ownerMemo holds the owners' counters read at one data version. The
// get_memories page cache takes its version counters from it too (see
// pageCache.ownerVersion).
type ownerMemo struct {
	ver  dbVersion
	v    map[string]ownerCounters
	full bool // every owner's counters: an owner not in v has none (0)
}

// ownerCounters are an owner's two counters in pb_migrations.OwnerVersions:
// version (moved by every insert, update and delete of their memories) and
// changed (by updates and deletes only).
type ownerCounters struct{ version, changed int64 }

// allOwnersMax bounds the owners whose counters are read whole (one scan
// per data version); with more, each query reads the owners it needs.
const allOwnersMax = 1024

// cachedHit is one memory as loaded for a search.
type cachedHit struct {
	data    atomic.Int64 // data version at which it was last known current
	schema  int64        // schema version it was read at
	owner   int64        // its owner's counter, read with it
	tracked bool         // owner is valid (the triggers existed at schema)
	m       Memory       // decoded and decrypted; Score and Signals unset
	size    int64
}

func newHitCache(probe *versionProbe, owners *ownerVersions) *hitCache {
	hc := &hitCache{probe: probe, owners: owners}
	hc.c, _ = lru.NewWithEvict(hitCacheEntries, func(_ string, h *cachedHit) { hc.bytes.Add(-h.size) })
	return hc
}

// ownerCountersSQL[n-1] reads n owners' counters: a compound of n
// primary-key lookups, one statement text per count.
var ownerCountersSQL = func() (out [byIDArms]string) {
	arm := "SELECT owner, version, " + pb_migrations.OwnerChangedColumn + " FROM " + pb_migrations.OwnerVersions + " WHERE owner = +?"
	var b strings.Builder
	for n := range byIDArms {
		if n > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString(arm)
		out[n] = b.String()
	}
	return out
}()

// readOwners reads the counters of these owners (0 for an owner without
// a row) in one statement per byIDArms owners; ok is false when they
// cannot be trusted at ver.schema.
func (hc *hitCache) readOwners(sc *stmtCache, owners []string, ver dbVersion) (map[string]ownerCounters, bool) {
	if sc == nil || !hc.owners.trackingChanged(ver.schema) {
		return nil, false
	}
	out := make(map[string]ownerCounters, len(owners))
	for _, o := range owners {
		out[o] = ownerCounters{}
	}
	for lo := 0; lo < len(owners); lo += byIDArms {
		chunk := owners[lo:min(len(owners), lo+byIDArms)]
		if scanCounters(sc, ownerCountersSQL[len(chunk)-1], toAny(chunk), out) != nil {
			return nil, false
		}
	}
	return out, true
}

// scanCounters runs query, which reads (owner, version, changed) rows of
// pb_migrations.OwnerVersions, with args and sets into[owner] for each
// row.
func scanCounters(sc *stmtCache, query string, args []any, into map[string]ownerCounters) error {
	st, err := sc.stmt(query)
	if err != nil {
		return err
	}
	rows, err := st.Query(args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var o string
		var c ownerCounters
		if err := rows.Scan(&o, &c.version, &c.changed); err != nil {
			return err
		}
		into[o] = c
	}
	return rows.Err()
}

// readAllOwners returns every owner's counter at ver, read by one scan
// per data version (callers at the same version wait for it and share
// it); ok is false when there are more than allOwnersMax owners or they
// cannot be trusted at ver.schema. The map is the memo's: read only.
func (hc *hitCache) readAllOwners(sc *stmtCache, ver dbVersion) (map[string]ownerCounters, bool) {
	if m, ok := hc.memoFor(ver); ok { // without waiting for a scan or fill in progress
		return m, true
	}
	hc.fillMu.Lock()
	defer hc.fillMu.Unlock()
	if m, ok := hc.memoFor(ver); ok { // scanned while this caller waited
		return m, true
	}
	if sc == nil || hc.tooMany.Load() || !hc.owners.trackingChanged(ver.schema) {
		return nil, false
	}
	hc.memoMu.Lock()
	size := len(hc.memo.v) // as many owners as the last scan found, not a fixed guess: a scan runs per data version
	hc.memoMu.Unlock()
	all := make(map[string]ownerCounters, size+1)
	if scanCounters(sc, allOwnersSQL, nil, all) != nil {
		return nil, false
	}
	if len(all) > allOwnersMax {
		hc.tooMany.Store(true)
		return nil, false
	}
	hc.memoMu.Lock()
	if hc.memo.v == nil || ver.data >= hc.memo.ver.data { // a late caller's older version does not replace a newer one
		hc.memo = ownerMemo{ver: ver, v: all, full: true}
	}
	hc.memoMu.Unlock()
	return all, true
}

// memoFor returns the memo's counters of every owner when it holds them
// at ver. The map is read only.
func (hc *hitCache) memoFor(ver dbVersion) (map[string]ownerCounters, bool) {
	hc.memoMu.Lock()
	defer hc.memoMu.Unlock()
	if hc.memo.ver == ver && hc.memo.full {
		return hc.memo.v, true
	}
	return nil, false
}

// allOwnersSQL reads every owner's counter, one more than allOwnersMax at
// most.
var allOwnersSQL = "SELECT owner, version, " + pb_migrations.OwnerChangedColumn + " FROM " + pb_migrations.OwnerVersions + " LIMIT " + strconv.Itoa(allOwnersMax+1)

// lookup returns the cached memories among ids that are current at ver
// (by id); the others are to be read. The owners' counters it needs are
// read once per data version (the memo), those missing from the memo in
// one statement. The memo's counters were read after a probe returned
// ver.data: if this lookup's probe gave the same version, nothing
// committed in between, so they are at least as new as what this lookup
// must see.
func (hc *hitCache) lookup(sc *stmtCache, ids []string, ver dbVersion) (map[string]*cachedHit, []string) {
	found := make(map[string]*cachedHit, len(ids))
	var missing []string
	var check []*cachedHit // current only if the owner's counter is unchanged
	for _, id := range ids {
		h, ok := hc.c.Get(id)
		switch {
		case !ok || (h.data.Load() != ver.data && (!h.tracked || h.schema != ver.schema)):
			missing = append(missing, id)
		case h.data.Load() == ver.data:
			found[id] = h
		default:
			check = append(check, h)
		}
	}
	if len(check) > 0 {
		counters := make(map[string]int64, len(check))
		var unknown []string
		hc.memoMu.Lock()
		memo := hc.memo.ver == ver && hc.memo.v != nil
		for _, h := range check {
			if _, seen := counters[h.m.OwnerID]; seen {
				continue
			}
			if c, ok := hc.memo.v[h.m.OwnerID]; memo && (ok || hc.memo.full) {
				counters[h.m.OwnerID] = c.changed
				continue
			}
			counters[h.m.OwnerID] = -1
			unknown = append(unknown, h.m.OwnerID)
		}
		hc.memoMu.Unlock()
		ok := true
		if len(unknown) > 0 && !hc.tooMany.Load() {
			if all, allOK := hc.readAllOwners(sc, ver); allOK {
				for _, o := range unknown {
					counters[o] = all[o].changed
				}
				unknown = nil
			}
		}
		if len(unknown) > 0 {
			var read map[string]ownerCounters
			if read, ok = hc.readOwners(sc, unknown, ver); ok {
				hc.memoMu.Lock()
				if hc.memo.v == nil || ver.data > hc.memo.ver.data {
					hc.memo = ownerMemo{ver: ver, v: make(map[string]ownerCounters, 64)}
				}
				for o, c := range read {
					if hc.memo.ver == ver && !hc.memo.full { // a full memo's map is shared unlocked
						hc.memo.v[o] = c
					}
					counters[o] = c.changed
				}
				hc.memoMu.Unlock()
			}
		}
		for _, h := range check {
			if !ok || counters[h.m.OwnerID] != h.owner {
				missing = append(missing, h.m.ID)
				continue
			}
			// none of the owner's rows changed: current at this data version
			h.data.Store(ver.data)
			found[h.m.ID] = h
		}
	}
	hc.hits.Add(int64(len(found)))
	hc.misses.Add(int64(len(missing)))
	return found, missing
}

// get is lookup for one id (tests).
func (hc *hitCache) get(id string, ver dbVersion) (*cachedHit, bool) {
	found, _ := hc.lookup(nil, []string{id}, ver)
	h, ok := found[id]
	return h, ok
}

func (hc *hitCache) put(h *cachedHit, ver dbVersion) {
	h.size = int64(len(h.m.Text)) + 400 + 40*int64(len(h.m.SharedWith)+len(h.m.SharedWithGroups))
	if h.size > hitCacheBytes/64 {
		return // a very long memory: not worth the room
	}
	h.schema = ver.schema
	h.data.Store(ver.data)
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if prev, ok := hc.c.Peek(h.m.ID); ok {
		hc.bytes.Add(-prev.size) // replaced: the LRU does not call onEvict for it
	}
	hc.c.Add(h.m.ID, h)
	size := h.size
	for hc.bytes.Add(size) > hitCacheBytes {
		if _, _, ok := hc.c.RemoveOldest(); !ok {
			break
		}
		size = 0
	}
}

// byIDVersionSQL[n-1] reads n memories by id (a compound of n primary-key
// lookups) with each row's owner's counter (NULL for an owner without a
// row) read by the same statement.
var byIDVersionSQL = func() (out [byIDArms]string) {
	cols := make([]string, len(memoryColumns))
	for i, c := range memoryColumns {
		cols[i] = "+m." + c
	}
	arm := "SELECT " + strings.Join(cols, ", ") + ", v." + pb_migrations.OwnerChangedColumn + " FROM " + pb_migrations.Memories + " m LEFT JOIN " +
		pb_migrations.OwnerVersions + " v ON v.owner = m.owner WHERE m.id = +?"
	var b strings.Builder
	for n := range byIDArms {
		if n > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString(arm)
		out[n] = b.String()
	}
	return out
}()

// hitsByID reads the memories with these ids and their owners' counters
// (tracked is false when the counters cannot be trusted at ver.schema).
func (s *Service) hitsByID(ids []string, ver dbVersion) (rows []memoryRow, counters []int64, tracked bool, err error) {
	hc := s.pages.hitc
	tracked = hc.owners.trackingChanged(ver.schema)
	if !tracked {
		rows, err = s.rowsByID(ids)
		hc.rowQueries.Add(1)
		return rows, nil, false, err
	}
	rows, counters, err = s.hitsByIDTracked(ids)
	if err != nil {
		// the counters' table gone since the schema was checked: no
		// counters, the data version alone decides
		rows, err = s.rowsByID(ids)
		hc.rowQueries.Add(1)
		return rows, nil, false, err
	}
	return rows, counters, true, nil
}

// hitsByIDTracked reads rows and their owners' counters (byIDVersionSQL).
func (s *Service) hitsByIDTracked(ids []string) (rows []memoryRow, counters []int64, err error) {
	sc := s.readStmts()
	hc := s.pages.hitc
	rows = make([]memoryRow, 0, len(ids))
	counters = make([]int64, 0, len(ids))
	for lo := 0; lo < len(ids); lo += byIDArms {
		chunk := ids[lo:min(len(ids), lo+byIDArms)]
		st, err := sc.stmt(byIDVersionSQL[len(chunk)-1])
		if err != nil {
			return nil, nil, err
		}
		hc.rowQueries.Add(1)
		res, err := st.Query(toAny(chunk)...)
		if err != nil {
			return nil, nil, err
		}
		for res.Next() {
			var r memoryRow
			var v *int64
			if err := res.Scan(&r.ID, &r.Owner, &r.Text, &r.Permission, &r.SharedUsers, &r.SharedGroups, &r.ExpiresAt, &r.Created, &r.Updated, &v); err != nil {
				_ = res.Close()
				return nil, nil, err
			}
			rows = append(rows, r)
			var c int64
			if v != nil {
				c = *v
			}
			counters = append(counters, c)
		}
		if err := res.Err(); err != nil {
			_ = res.Close()
			return nil, nil, err
		}
		if err := res.Close(); err != nil {
			return nil, nil, err
		}
	}
	return rows, counters, nil
}

// loadedHit is a search hit's memory as loaded: the cached entry (shared:
// copy m before changing it), or the error decoding its row gave.
type loadedHit struct {
	m   *Memory
	err error
}

// loadHits returns the memories with these ids (absent: no such memory),
// from the hit cache where current, else read (and cached).
func (s *Service) loadHits(ids []string) (map[string]loadedHit, error) {
	out := make(map[string]loadedHit, len(ids))
	var pc *pageCache
	if s.readStmts() != nil {
		pc = s.pageCacheFor()
	}
	var ver dbVersion
	ok := false
	if pc != nil {
		// the versions before the rows' query: a commit racing it outdates
		// what it reads
		ver, ok = pc.probe.read()
	}
	if !ok {
		rows, err := s.rowsByID(ids)
		if err != nil {
			return nil, err
		}
		for i := range rows {
			m, err := s.rowToMemory(&rows[i])
			out[rows[i].ID] = loadedHit{m, err}
		}
		return out, nil
	}
	hc := pc.hitc
	found, missing := hc.lookup(s.readStmts(), ids, ver)
	for id, h := range found {
		out[id] = loadedHit{m: &h.m}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, counters, tracked, err := s.hitsByID(missing, ver)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		m, err := s.rowToMemory(&rows[i])
		if err != nil {
			out[rows[i].ID] = loadedHit{err: err}
			continue
		}
		h := &cachedHit{m: *m, tracked: tracked}
		if tracked {
			h.owner = counters[i]
		}
		hc.put(h, ver)
		out[rows[i].ID] = loadedHit{m: &h.m}
	}
	return out, nil
}

// memoryVisible is rowVisible for a decoded memory: its expiry against
// the clock and the policy's check.
func (s *Service) memoryVisible(v policy.Viewer, m *Memory) bool {
	if m.ExpirationDate != nil && !m.ExpirationDate.After(s.timeNow()) {
		return false
	}
	return s.policies.CanRead(v, policy.Memory{
		OwnerID:      m.OwnerID,
		Permission:   m.Permission,
		SharedUsers:  m.SharedWith,
		SharedGroups: m.SharedWithGroups,
	})
}

// HitCacheStats says how many search hits were served from the hit cache
// and how many were read.
func (s *Service) HitCacheStats() (hits, misses int64) {
	if s.pages == nil || s.pages.hitc == nil {
		return 0, 0
	}
	return s.pages.hitc.hits.Load(), s.pages.hitc.misses.Load()
}
