package vectorstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// postingsCache is an in-process copy of the keyword index that ranks in
// Go (a departure from "the database ranks", measured in
// docs/performance.md): the tables stay the source of truth and are the
// only thing written durably; the cache follows them.
//
// It holds, per hashed term, the memories holding it (a compact array of
// slot and tf, in key order) and, per memory, its filter metadata, length and
// (term, tf) pairs. Neighbours in time are not copied from the docs table:
// they are the memory's place in its owner's timeline, ordered by
// (created_at, id) as relink orders them, so relink's work need not be
// mirrored. The ranking is the SQL statement's (runSearch) step by step:
// the same candidates, scores, context lenders, quick/exact forms and
// order, with the filter applied to every candidate and receiver before
// any cut (TestKeywordsCacheMatchesSQL compares them on both engines).
//
// Freshness: the cache loads at serve (WarmKeywords) or at the first
// search, in the background, SQL answering until it is done. Every write
// function hands over what it committed, in commit order (commit in
// keywords_write.go: the rows with their keys, the deleted ids, the stats
// row as it left it); the next search applies that before it ranks,
// without reading the tables. On SQLite this process is the only writer,
// so a search touches no table at all unless the counts disagree with the
// last write's stats row (then it reloads) or a write could only name its
// ids (noteWrite: they are read again). On PostgreSQL, shared by
// replicas, writes are also announced to the other processes
// (keywords_follow.go), and at most every statsEvery a search reads the
// stats row: keys above the last one seen are loaded (every new row gets
// a larger key) and counts that still disagree make it compare every key.
// Contract for writers: hand over what was committed (commit), or call
// noteWrite with every id written, after the commit.
type postingsCache struct {
	mu sync.RWMutex
	// writes counts this process's committed writes (noteWrite); synced
	// is its value at the last sync
	writes  atomic.Uint64
	synced  uint64
	crossed bool         // PostgreSQL: other processes may write, check stats (statsEvery)
	checked atomic.Int64 // when the stats row was last read (Unix ns)
	// follower (PostgreSQL) announces this process's writes and follows
	// the others' (keywords_follow.go)
	follower   *pgFollower
	followOnce sync.Once

	state atomic.Int32 // cacheCold, cacheLoading, cacheReady

	docs     []cacheDoc
	meta     []docMeta // per slot, beside docs: what the filter and the ranking read
	freeDocs []uint32
	byID     map[string]uint32
	terms    []cacheTerm
	freeTerm []uint32
	termIdx  map[int64]uint32
	owners   map[string]uint32
	ownerIDs []string
	timeline [][]tlEntry // per owner: slots ordered by (created, id)
	perms    map[string]uint8
	permIDs  []string

	n        int   // live memories
	totalLen int64 // their total length
	seenK    int64 // stats.next_k at the last sync: every key ≤ seenK is loaded
	pendMu   sync.Mutex
	pending  []pendingWrite // the writes noted since the last sync, in commit order
	pendN    int            // the memories they name
	overflow bool           // too many to remember: reload everything
	// onRead, when set (by tests), sees every read of the tables by a
	// sync: "ids" with the ids read again (reloadIDs), "range" for the
	// stats row and the keys above seenK (loadRange)
	onRead func(what string, ids []string)
}

// pendingWrite is one committed write the next sync applies. This
// process's own writes hand over what they committed, rows (each with the
// key the write gave it) and deleted ids, which the sync applies without
// reading the tables; ids are memories to read again, written where the
// cache cannot see what was committed (another process, a raw statement).
// stats is the stats row as the write left it, when it read it back (ok):
// a sync that ends with such a write checks its counts against it instead
// of reading the row.
type pendingWrite struct {
	rows  []cacheRow
	gone  []string
	ids   []string
	stats cacheStats
	ok    bool
}

func (p *pendingWrite) size() int { return len(p.rows) + len(p.gone) + len(p.ids) }

const (
	cacheCold int32 = iota
	cacheLoading
	cacheReady
)

// noExpiry stands for a NULL expires_at.
const noExpiry = math.MaxInt64

type cacheDoc struct {
	// terms, length and k first: what scoring a candidate reads, in one
	// cache line more often than not
	terms   []cacheTF
	length  int32
	owner   uint32
	k       int64
	id      string
	created int64
	expires int64
	shares  []cacheShare // nil for nearly every memory
	perm    uint8
	live    bool
}

type cacheTF struct{ term, tf uint32 }

// docMeta is the part of a cacheDoc that every candidate's filter check,
// scoring, ordering and timeline lookup read, in a dense array (40 bytes,
// well under half a cacheDoc's): the ranking walks thousands of
// candidates per query and each one's cacheDoc would be a cache miss of
// its own. A free slot has live false.
type docMeta struct {
	k       int64
	expires int64
	created int64
	owner   uint32
	length  int32
	perm    uint8
	shared  bool // has shares (cacheDoc.shares)
	live    bool
}

// tlEntry is one place in an owner's timeline; created is the memory's,
// copied so that finding a place reads the timeline alone.
type tlEntry struct {
	created int64
	slot    uint32
}

type cacheShare struct {
	group     bool
	principal string
}

type cacheTerm struct {
	hash  int64
	posts []cachePost // in key order
}

// cachePost is one posting: the memory's slot and the term's frequency in
// it, so that the ranking scores candidates by walking the query terms'
// postings rather than each candidate's own terms.
type cachePost struct{ slot, tf uint32 }

func newPostingsCache(crossProcess bool) *postingsCache {
	return &postingsCache{crossed: crossProcess, byID: map[string]uint32{}, termIdx: map[int64]uint32{},
		owners: map[string]uint32{}, perms: map[string]uint8{}}
}

// statsEvery is how often, at most, a search on PostgreSQL reads the stats
// row to catch writes of other processes whose announcement was lost.
const statsEvery = 50 * time.Millisecond

// maxPending bounds the ids remembered between syncs; beyond it (a
// reindex, a bulk import) the next sync reloads everything.
var maxPending = 20_000

// noteWrite records a committed write and the ids to read again (none:
// everything is checked against the stats row).
func (c *postingsCache) noteWrite(ids ...string) {
	c.note(pendingWrite{ids: ids})
}

// note records a committed write (in commit order: writers note while
// they still hold the write lock). The counter moves under pendMu with the
// pending list, so a sync that takes the list knows which writes it holds.
func (c *postingsCache) note(p pendingWrite) {
	c.pendMu.Lock()
	if c.state.Load() != cacheCold && !c.overflow {
		if c.pendN+p.size() > maxPending {
			c.pending, c.pendN, c.overflow = nil, 0, true
		} else {
			c.pending = append(c.pending, p)
			c.pendN += p.size()
		}
	}
	c.writes.Add(1)
	c.pendMu.Unlock()
}

// noteWrite tells the postings cache about a committed write and the ids
// to read again (none: everything is checked, a reset). Writes that know
// what they committed hand it over instead (commit, keywords_write.go).
func (k *sqlKeywords) noteWrite(ids ...string) {
	if k.cache == nil {
		return
	}
	k.cache.noteWrite(ids...)
	if f := k.cache.follower; f != nil {
		f.announce(ids)
	}
}

// wantsRows is whether a write should build the rows it commits for the
// cache: not while it is cold (a load will read them).
func (k *sqlKeywords) wantsRows() bool {
	return k.cache != nil && !k.noCache && k.cache.state.Load() != cacheCold
}

// committedRow is the cache's copy of d as a write stores it with key:
// the docs row, its postings (in term order, as the tables return them)
// and its shares (without repeats, as the tables keep them).
func committedRow(d *KeywordDoc, key int64) cacheRow {
	r := cacheRow{owner: d.Meta.OwnerID, perm: d.Meta.Permission, doc: cacheDoc{
		k: key, id: d.ID, created: d.Meta.CreatedAt.UnixMicro(), expires: noExpiry, length: int32(d.Len)}}
	if !d.Meta.ExpiresAt.IsZero() {
		r.doc.expires = d.Meta.ExpiresAt.UnixMicro()
	}
	hashes := make([]int64, 0, len(d.Terms))
	for t := range d.Terms {
		hashes = append(hashes, t)
	}
	slices.Sort(hashes)
	r.terms = make([]cacheTerm, len(hashes))
	r.doc.terms = make([]cacheTF, len(hashes))
	for i, t := range hashes {
		r.terms[i].hash = t
		r.doc.terms[i].tf = uint32(d.Terms[t])
	}
	addShare := func(group bool, principal string) {
		s := cacheShare{group: group, principal: principal}
		if !slices.Contains(r.doc.shares, s) {
			r.doc.shares = append(r.doc.shares, s)
		}
	}
	for _, u := range d.Meta.SharedUsers {
		addShare(false, u)
	}
	for _, g := range d.Meta.SharedGroups {
		addShare(true, g)
	}
	return r
}

// cacheChunk bounds the memories read by one load transaction, so the
// single SQLite connection is not held for seconds.
const cacheChunk = 5000

type cacheStats struct {
	n, total, nextK int64
}

func (k *sqlKeywords) readStats(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (cacheStats, error) {
	var s cacheStats
	err := q.QueryRowContext(ctx, k.sql(`SELECT n, total_len, next_k FROM {stats} WHERE id = 1`)).Scan(&s.n, &s.total, &s.nextK)
	return s, err
}

// searchCached ranks q from the cache; ok is false when the cache is not
// loaded yet (a load is started) and SQL must answer.
func (k *sqlKeywords) searchCached(ctx context.Context, q KeywordQuery) (hits []KeywordHit, ok bool, err error) {
	c := k.cache
	switch c.state.Load() {
	case cacheCold:
		if c.state.CompareAndSwap(cacheCold, cacheLoading) {
			go k.loadCache(context.WithoutCancel(ctx)) // outlives the request that started it
		}
		return nil, false, nil
	case cacheLoading:
		return nil, false, nil
	}
	c.pendMu.Lock()
	full := c.overflow
	c.pendMu.Unlock()
	if full && c.state.CompareAndSwap(cacheReady, cacheLoading) {
		// too much changed (a reindex): reload in the background, SQL
		// answers meanwhile instead of this search waiting for the load
		go k.loadCache(context.WithoutCancel(ctx))
		return nil, false, nil
	}
	if err := k.freshen(ctx); err != nil {
		return nil, false, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rank(q), true, nil
}

// WarmKeywords loads the postings cache now (a server calls it at start so
// the first searches need not run in SQL), or waits for the load under way.
func (k *sqlKeywords) WarmKeywords(ctx context.Context) {
	if k.cache == nil || k.noCache {
		return
	}
	if k.cache.state.CompareAndSwap(cacheCold, cacheLoading) {
		k.loadCache(ctx)
		return
	}
	for k.cache.state.Load() == cacheLoading && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// loadCache fills the cache (state cacheLoading); on failure the cache
// goes back to cold (SQL answers; the next search tries again).
func (k *sqlKeywords) loadCache(ctx context.Context) {
	start := time.Now()
	c := k.cache
	if c.follower != nil {
		// listen before loading: nothing written meanwhile is missed
		c.followOnce.Do(func() { c.follower.follow(c) })
	}
	c.mu.Lock()
	c.pendMu.Lock()
	c.overflow = true // a full load
	c.pending, c.pendN = nil, 0
	c.pendMu.Unlock()
	err := k.syncLocked(ctx)
	c.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			slog.Warn("keyword postings cache not loaded; searches run in the database", "error", err)
		}
		c.state.Store(cacheCold)
		return
	}
	slog.Debug("keyword postings cache loaded", "memories", c.n, "terms", len(c.termIdx), "took", time.Since(start))
	c.state.Store(cacheReady)
}

// freshen syncs the cache when the index changed since the last sync.
func (k *sqlKeywords) freshen(ctx context.Context) error {
	c := k.cache
	w := c.writes.Load()
	c.mu.RLock()
	stale := w != c.synced
	if now := time.Now().UnixNano(); !stale && c.crossed && now-c.checked.Load() >= int64(statsEvery) {
		// other processes' writes come announced (keywords_follow.go);
		// the stats row is the safety net for a lost announcement
		c.checked.Store(now)
		s, err := k.readStats(ctx, k.db)
		if err != nil {
			c.mu.RUnlock()
			return k.wrapErr("search", err)
		}
		stale = s.nextK != c.seenK || s.n != int64(c.n) || s.total != c.totalLen
	}
	c.mu.RUnlock()
	if !stale {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := k.syncLocked(ctx); err != nil {
		return k.wrapErr("search", err)
	}
	return nil
}

// syncLocked brings the cache up to the tables (c.mu held): it reads again
// the memories this process wrote since the last sync (by id: an update
// may keep its key), then, where other processes write (PostgreSQL),
// every key above the last one seen, and compares the counts; a count that
// still disagrees (or too many pending ids) reloads everything.
func (k *sqlKeywords) syncLocked(ctx context.Context) error {
	c := k.cache
	c.pendMu.Lock()
	w := c.writes.Load() // the writes pending holds, and every one before
	pending, full := c.pending, c.overflow
	c.pending, c.pendN, c.overflow = nil, 0, false
	c.pendMu.Unlock()
	restore := func() {
		c.pendMu.Lock()
		c.pending = append(pending, c.pending...)
		for i := range pending {
			c.pendN += pending[i].size()
		}
		c.overflow = c.overflow || full
		c.pendMu.Unlock()
	}
	if !full && len(pending) > 0 {
		// this process's writes as they committed, in order; then, read
		// from the tables as they are now, what others wrote
		var reread []string
		for i := range pending {
			p := &pending[i]
			for _, id := range p.gone {
				if slot, ok := c.byID[id]; ok {
					c.remove(slot)
				}
			}
			for j := range p.rows {
				c.put(&p.rows[j])
			}
			reread = append(reread, p.ids...)
		}
		for lo := 0; lo < len(reread); lo += kwChunk {
			if err := k.reloadIDs(ctx, reread[lo:min(lo+kwChunk, len(reread))]); err != nil {
				restore()
				return err
			}
		}
		if last := pending[len(pending)-1]; last.ok && !c.crossed &&
			int64(c.n) == last.stats.n && c.totalLen == last.stats.total && last.stats.nextK >= c.seenK {
			// the last write read the stats row back: the counts agree
			// with it, no need to read it again (SQLite, where this
			// process is the only writer)
			c.seenK = last.stats.nextK
			c.synced = w
			return nil
		}
	}
	for attempt := 0; ; attempt++ {
		if full {
			c.reset()
		}
		var st cacheStats
		for {
			more, s, err := k.loadRange(ctx, full || c.crossed)
			if err != nil {
				restore()
				return err
			}
			st = s
			if !more {
				break
			}
		}
		if int64(c.n) == st.n && c.totalLen == st.total {
			break
		}
		if c.writes.Load() != w {
			// a write committed meanwhile and its ids are on their way:
			// the next search syncs again (synced stays behind)
			return nil
		}
		if c.crossed && !full {
			// another process deleted memories: compare every key
			if err := k.dropMissing(ctx); err != nil {
				restore()
				return err
			}
			if int64(c.n) == st.n && c.totalLen == st.total {
				break
			}
		}
		if attempt == 2 {
			return fmt.Errorf("postings cache: %d memories, %d in the index", c.n, st.n)
		}
		// changed behind the cache (another process, or a write between
		// its commit and its note): read everything again
		slog.Debug("keyword postings cache reloads", "cached", c.n, "indexed", st.n)
		full = true
	}
	c.synced = w
	return nil
}

// cacheRow is a docs row with its owner and permission as text.
type cacheRow struct {
	doc         cacheDoc
	owner, perm string
	terms       []cacheTerm // hash and one posting's tf (posts unused)
}

// loadRange reads, in one transaction, the stats and (when scan) up to
// cacheChunk memories with keys above seenK, with their postings and
// shares. more says whether keys are left.
func (k *sqlKeywords) loadRange(ctx context.Context, scan bool) (more bool, st cacheStats, err error) {
	c := k.cache
	if c.onRead != nil {
		c.onRead("range", nil)
	}
	tx, err := k.readTx(ctx)
	if err != nil {
		return false, st, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if st, err = k.readStats(ctx, tx); err != nil {
		return false, st, fmt.Errorf("stats: %w", err)
	}
	if !scan || st.nextK <= c.seenK {
		if st.nextK < c.seenK {
			return false, st, nil // keys went back (tables recreated): counts decide
		}
		c.seenK = st.nextK
		return false, st, nil
	}
	rows, err := k.readDocs(ctx, tx, `k > $1 AND k <= $2 ORDER BY k LIMIT `+fmt.Sprint(cacheChunk), c.seenK, st.nextK)
	if err != nil {
		return false, st, err
	}
	hi := st.nextK
	if len(rows) == cacheChunk {
		hi = rows[len(rows)-1].doc.k
	}
	known := func(r *cacheRow) bool {
		slot, ok := c.byID[r.doc.id]
		return ok && c.docs[slot].k == r.doc.k && c.docs[slot].length == r.doc.length
	}
	// the keys are usually this process's own writes, applied already:
	// their postings need not be read
	unknown := false
	for i := range rows {
		unknown = unknown || !known(&rows[i])
	}
	if unknown {
		if err := k.readTerms(ctx, tx, rows, `doc > $1 AND doc <= $2`, c.seenK, hi); err != nil {
			return false, st, err
		}
	}
	for i := range rows {
		if known(&rows[i]) {
			continue // applied or read again by id in this sync already
		}
		c.put(&rows[i])
	}
	c.seenK = hi
	return hi < st.nextK, st, nil
}

// reloadIDs reads ids again in one transaction: present ones replace the
// cached copy, absent ones leave the cache.
func (k *sqlKeywords) reloadIDs(ctx context.Context, ids []string) error {
	c := k.cache
	if c.onRead != nil {
		c.onRead("ids", ids)
	}
	tx, err := k.readTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	a := sqlArgs{}
	in := placeholders(&a, toAnys(ids)...)
	rows, err := k.readDocs(ctx, tx, `id IN (`+in+`)`, a...)
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		ka := sqlArgs{}
		keys := make([]any, len(rows))
		for i := range rows {
			keys[i] = rows[i].doc.k
		}
		if err := k.readTerms(ctx, tx, rows, `doc IN (`+placeholders(&ka, keys...)+`)`, ka...); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if slot, ok := c.byID[id]; ok {
			c.remove(slot)
		}
	}
	for i := range rows {
		c.put(&rows[i])
	}
	return nil
}

func (k *sqlKeywords) readTx(ctx context.Context) (*sql.Tx, error) {
	opts := &sql.TxOptions{ReadOnly: !k.sqlite}
	if !k.sqlite {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return k.db.BeginTx(ctx, opts)
}

// readDocs reads the docs rows matching where.
func (k *sqlKeywords) readDocs(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]cacheRow, error) {
	rows, err := tx.QueryContext(ctx, k.sql(`SELECT k, id, owner_id, permission, expires_at, created_at, len FROM {docs} WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("docs: %w", err)
	}
	defer rows.Close()
	var out []cacheRow
	for rows.Next() {
		var r cacheRow
		var exp sql.NullInt64
		if err := rows.Scan(&r.doc.k, &r.doc.id, &r.owner, &r.perm, &exp, &r.doc.created, &r.doc.length); err != nil {
			return nil, fmt.Errorf("docs: %w", err)
		}
		r.doc.expires = noExpiry
		if exp.Valid {
			r.doc.expires = exp.Int64
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("docs: %w", err)
	}
	return out, nil
}

// readTerms reads the postings and shares of rows (where selects them by
// doc key).
func (k *sqlKeywords) readTerms(ctx context.Context, tx *sql.Tx, rows []cacheRow, where string, args ...any) error {
	at := make(map[int64]int, len(rows))
	for i := range rows {
		at[rows[i].doc.k] = i
	}
	pr, err := tx.QueryContext(ctx, k.sql(`SELECT doc, term, tf FROM {postings} WHERE `+where), args...)
	if err != nil {
		return fmt.Errorf("postings: %w", err)
	}
	for pr.Next() {
		var doc, term int64
		var tf uint32
		if err := pr.Scan(&doc, &term, &tf); err != nil {
			pr.Close()
			return fmt.Errorf("postings: %w", err)
		}
		if i, ok := at[doc]; ok {
			rows[i].terms = append(rows[i].terms, cacheTerm{hash: term, posts: nil})
			rows[i].doc.terms = append(rows[i].doc.terms, cacheTF{tf: tf})
		}
	}
	pr.Close()
	if err := pr.Err(); err != nil {
		return fmt.Errorf("postings: %w", err)
	}
	sr, err := tx.QueryContext(ctx, k.sql(`SELECT doc, kind, principal FROM {shares} WHERE `+where), args...)
	if err != nil {
		return fmt.Errorf("shares: %w", err)
	}
	defer sr.Close()
	for sr.Next() {
		var doc int64
		var kind, principal string
		if err := sr.Scan(&doc, &kind, &principal); err != nil {
			return fmt.Errorf("shares: %w", err)
		}
		if i, ok := at[doc]; ok {
			rows[i].doc.shares = append(rows[i].doc.shares, cacheShare{group: kind == "g", principal: principal})
		}
	}
	if err := sr.Err(); err != nil {
		return fmt.Errorf("shares: %w", err)
	}
	return nil
}

// put adds a row read from the tables, replacing the cached copy of its id.
func (c *postingsCache) put(r *cacheRow) {
	if old, ok := c.byID[r.doc.id]; ok {
		c.remove(old)
	}
	d := r.doc
	d.owner = c.ownerOf(r.owner)
	d.perm = c.permOf(r.perm)
	if !slices.IsSortedFunc(r.terms, func(x, y cacheTerm) int { return cmp.Compare(x.hash, y.hash) }) {
		// term order, as committedRow gives them and SQLite's index
		// returns them (PostgreSQL may not): the ranking adds a memory's
		// terms' shares in this order, whether it reads them here or
		// from the postings
		byHash := make([]int, len(r.terms))
		for j := range byHash {
			byHash[j] = j
		}
		slices.SortFunc(byHash, func(x, y int) int { return cmp.Compare(r.terms[x].hash, r.terms[y].hash) })
		terms, tfs := make([]cacheTerm, len(r.terms)), make([]cacheTF, len(r.terms))
		for j, from := range byHash {
			terms[j], tfs[j] = r.terms[from], d.terms[from]
		}
		r.terms, d.terms = terms, tfs
	}
	for j, t := range r.terms {
		d.terms[j].term = c.termOf(t.hash)
	}
	c.add(d)
}

// dropMissing removes cached memories whose keys are no longer in the
// tables.
func (k *sqlKeywords) dropMissing(ctx context.Context) error {
	c := k.cache
	rows, err := k.db.QueryContext(ctx, k.sql(`SELECT k FROM {docs} WHERE k <= $1`), c.seenK)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer rows.Close()
	have := make(map[int64]struct{}, c.n)
	for rows.Next() {
		var key int64
		if err := rows.Scan(&key); err != nil {
			return err
		}
		have[key] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for slot := range c.docs {
		if d := &c.docs[slot]; d.live {
			if _, ok := have[d.k]; !ok {
				c.remove(uint32(slot))
			}
		}
	}
	return nil
}

// reset empties the cache (c.mu held).
func (c *postingsCache) reset() {
	c.docs, c.meta, c.freeDocs, c.byID = nil, nil, nil, map[string]uint32{}
	c.terms, c.freeTerm, c.termIdx = nil, nil, map[int64]uint32{}
	c.owners, c.ownerIDs, c.timeline = map[string]uint32{}, nil, nil
	c.perms, c.permIDs = map[string]uint8{}, nil
	c.n, c.totalLen, c.seenK = 0, 0, 0
}

func (c *postingsCache) ownerOf(id string) uint32 {
	if o, ok := c.owners[id]; ok {
		return o
	}
	o := uint32(len(c.ownerIDs))
	c.owners[id] = o
	c.ownerIDs = append(c.ownerIDs, id)
	c.timeline = append(c.timeline, nil)
	return o
}

func (c *postingsCache) permOf(p string) uint8 {
	if v, ok := c.perms[p]; ok {
		return v
	}
	if len(c.permIDs) == 255 {
		panic("keyword cache: more than 255 permission types")
	}
	v := uint8(len(c.permIDs))
	c.perms[p] = v
	c.permIDs = append(c.permIDs, p)
	return v
}

func (c *postingsCache) termOf(hash int64) uint32 {
	if t, ok := c.termIdx[hash]; ok {
		return t
	}
	var t uint32
	if n := len(c.freeTerm); n > 0 {
		t = c.freeTerm[n-1]
		c.freeTerm = c.freeTerm[:n-1]
		c.terms[t] = cacheTerm{hash: hash}
	} else {
		t = uint32(len(c.terms))
		c.terms = append(c.terms, cacheTerm{hash: hash})
	}
	c.termIdx[hash] = t
	return t
}

// timelinePos is slot's index in its owner's timeline (or where it goes).
// It reads the slot's docMeta and the timeline; cacheDocs (ids) only on
// ties of creation time among which slot is not one of the first few.
func (c *postingsCache) timelinePos(slot uint32) int {
	d := &c.meta[slot]
	tl := c.timeline[d.owner]
	lo, hi := 0, len(tl)
	for lo < hi { // the first place not created before slot
		m := int(uint(lo+hi) >> 1)
		if tl[m].created < d.created {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < len(tl) && i < lo+16 && tl[i].created == d.created; i++ {
		if tl[i].slot == slot { // every place before it is before slot
			return i
		}
	}
	id := c.docs[slot].id
	for hi = len(tl); lo < hi; { // the first place not before slot, as before orders them
		m := int(uint(lo+hi) >> 1)
		if e := tl[m]; e.created == d.created && c.docs[e.slot].id < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// postPos is slot's index (or insertion point) in a term's postings.
func (c *postingsCache) postPos(posts []cachePost, slot uint32) int {
	key := c.meta[slot].k
	return sort.Search(len(posts), func(i int) bool { return c.meta[posts[i].slot].k >= key })
}

func (c *postingsCache) add(d cacheDoc) {
	d.live = true
	var slot uint32
	m := docMeta{k: d.k, expires: d.expires, created: d.created, owner: d.owner, length: d.length, perm: d.perm,
		shared: len(d.shares) > 0, live: true}
	if n := len(c.freeDocs); n > 0 {
		slot = c.freeDocs[n-1]
		c.freeDocs = c.freeDocs[:n-1]
		c.docs[slot] = d
		c.meta[slot] = m
	} else {
		slot = uint32(len(c.docs))
		c.docs = append(c.docs, d)
		c.meta = append(c.meta, m)
	}
	c.byID[d.id] = slot
	c.n++
	c.totalLen += int64(d.length)
	tl := c.timeline[d.owner]
	i := c.timelinePos(slot)
	c.timeline[d.owner] = slices.Insert(tl, i, tlEntry{created: d.created, slot: slot})
	for _, t := range d.terms {
		p := c.terms[t.term].posts
		cp := cachePost{slot: slot, tf: t.tf}
		if len(p) == 0 || c.meta[p[len(p)-1].slot].k < d.k {
			c.terms[t.term].posts = append(p, cp) // the usual case: the newest key
		} else {
			c.terms[t.term].posts = slices.Insert(p, c.postPos(p, slot), cp)
		}
	}
}

func (c *postingsCache) remove(slot uint32) {
	d := &c.docs[slot]
	for _, t := range d.terms {
		ct := &c.terms[t.term]
		if i := c.postPos(ct.posts, slot); i < len(ct.posts) && ct.posts[i].slot == slot {
			ct.posts = slices.Delete(ct.posts, i, i+1)
		}
		if len(ct.posts) == 0 {
			delete(c.termIdx, ct.hash)
			ct.posts = nil
			c.freeTerm = append(c.freeTerm, t.term)
		}
	}
	tl := c.timeline[d.owner]
	if i := c.timelinePos(slot); i < len(tl) && tl[i].slot == slot {
		c.timeline[d.owner] = slices.Delete(tl, i, i+1)
	}
	delete(c.byID, d.id)
	c.n--
	c.totalLen -= int64(d.length)
	*d = cacheDoc{}
	c.meta[slot] = docMeta{}
	c.freeDocs = append(c.freeDocs, slot)
}

// cacheFilter is a Filter compiled against the cache's owner and
// permission numbers.
type cacheFilter struct {
	none    bool // nothing can pass
	owner   int64
	now     int64
	expired bool // IncludeExpired
	all     bool // a clause without conditions
	clauses []cacheClause
}

type cacheClause struct {
	perm, owner int // -1: any
	user        string
	groups      []string
	share       bool
}

func (c *postingsCache) compile(f Filter) cacheFilter {
	cf := cacheFilter{owner: -1, now: f.Now.UnixMicro(), expired: f.IncludeExpired}
	if f.OwnerID != "" {
		o, ok := c.owners[f.OwnerID]
		if !ok {
			cf.none = true
			return cf
		}
		cf.owner = int64(o)
	}
	for _, cl := range f.Any {
		if cl.Permission == "" && cl.OwnerID == "" && cl.SharedWithUser == "" && len(cl.SharedWithGroups) == 0 {
			cf.all = true
			cf.clauses = nil
			return cf
		}
		cc := cacheClause{perm: -1, owner: -1, user: cl.SharedWithUser, groups: cl.SharedWithGroups,
			share: cl.SharedWithUser != "" || len(cl.SharedWithGroups) > 0}
		if cl.Permission != "" {
			p, ok := c.perms[cl.Permission]
			if !ok {
				continue // no memory has this permission
			}
			cc.perm = int(p)
		}
		if cl.OwnerID != "" {
			o, ok := c.owners[cl.OwnerID]
			if !ok {
				continue
			}
			cc.owner = int(o)
		}
		cf.clauses = append(cf.clauses, cc)
	}
	if len(cf.clauses) == 0 {
		cf.none = true
	}
	return cf
}

// pass says whether the memory in slot passes the filter. It reads the
// slot's docMeta, and its cacheDoc only for the shares of a memory that
// has some when a clause asks for them.
func (f *cacheFilter) pass(c *postingsCache, slot uint32) bool {
	m := &c.meta[slot]
	if f.owner >= 0 && int64(m.owner) != f.owner {
		return false
	}
	if !f.expired && m.expires <= f.now {
		return false
	}
	if f.all {
		return true
	}
	for i := range f.clauses {
		cl := &f.clauses[i]
		if cl.perm >= 0 && int(m.perm) != cl.perm {
			continue
		}
		if cl.owner >= 0 && int(m.owner) != cl.owner {
			continue
		}
		if !cl.share {
			return true
		}
		if !m.shared {
			continue
		}
		for _, s := range c.docs[slot].shares {
			if (!s.group && s.principal == cl.user && cl.user != "") || (s.group && slices.Contains(cl.groups, s.principal)) {
				return true
			}
		}
	}
	return false
}

// cacheScore is one scored or receiving memory during ranking.
type cacheScore struct {
	slot      uint32
	cand      bool
	k         int64   // the memory's key (ties)
	score     float64 // own BM25 (candidates)
	near, far float64
	total     float64
}

// qterm is a query term present in the cache.
type qterm struct {
	hash int64
	idx  uint32
	df   int
	w    float64
}

// rankScratch is one ranking's working memory, pooled so that a query
// allocates little more than its answer. at is indexed by slot and valid
// where stamp holds this query's cur, so it is never cleared between
// queries.
type rankScratch struct {
	stamp   []uint32
	at      []int32 // index in the scored rows, or -1: seen, not a candidate
	cur     uint32
	present []qterm
	all     []cacheScore
	heap    []cacheScore
	picked  []cacheScore
}

var rankScratchPool = sync.Pool{New: func() any { return new(rankScratch) }}

// begin readies the scratch for a cache of slots slots.
func (r *rankScratch) begin(slots int) {
	if len(r.stamp) < slots {
		n := slots + slots/4
		r.stamp, r.at, r.cur = make([]uint32, n), make([]int32, n), 0
	}
	r.cur++
	if r.cur == 0 { // wrapped: old stamps could pass for new ones
		clear(r.stamp)
		r.cur = 1
	}
}

// walkPerCandidate: the ranking adds the other (common) terms' shares by
// walking their postings when these hold at most this many per candidate,
// else by reading each candidate's own terms (measured with
// BenchmarkKeywordCacheRank10k: a posting costs a sequential read, a
// candidate's terms a cache miss or two).
var walkPerCandidate = 32

// rank is runSearch over the cache (c.mu read-locked).
func (c *postingsCache) rank(q KeywordQuery) []KeywordHit {
	if q.Limit <= 0 || len(q.Filter.Any) == 0 || len(q.Terms) == 0 || c.n == 0 || c.totalLen == 0 {
		return nil
	}
	sc := rankScratchPool.Get().(*rankScratch)
	defer rankScratchPool.Put(sc)
	n := c.n
	avg := float64(c.totalLen) / float64(n)
	present := sc.present[:0]
	for t, qw := range q.Terms {
		idx, ok := c.termIdx[t]
		if !ok {
			continue
		}
		df := len(c.terms[idx].posts)
		w := qw * IDF(n, df)
		if q.IDFPower > 0 && q.IDFPower != 1 {
			w = qw * math.Pow(IDF(n, df), q.IDFPower)
		}
		present = append(present, qterm{t, idx, df, w})
	}
	sc.present = present
	if len(present) == 0 {
		return nil
	}
	slices.SortFunc(present, func(x, y qterm) int {
		if x.df != y.df {
			return x.df - y.df
		}
		return cmp.Compare(x.hash, y.hash)
	})
	nRare, sum := len(present), 0
	if q.Budget > 0 {
		for i, t := range present {
			if i > 0 && sum+t.df > q.Budget {
				nRare = i
				break
			}
			sum += t.df
		}
	}
	capped := q.Budget > 0 && nRare == 1 && present[0].df > q.Budget
	f := c.compile(q.Filter)
	if f.none {
		return nil
	}
	sc.begin(len(c.docs))
	stamp, at, cur := sc.stamp, sc.at, sc.cur
	k1, b := q.K1, q.B
	bm25 := func(w float64, tf uint32, dlen int32) float64 {
		t := float64(tf)
		return w * t * (k1 + 1) / (t + k1*(1-b+b*float64(dlen)/avg))
	}
	// A memory's score adds its terms' shares in term (hash) order, the
	// order of its cacheDoc's terms: first the rare terms' (part), then
	// the others' (as the SQL adds them). Walking the terms' postings in
	// that order adds the same numbers in the same order.
	byHash := func(x, y qterm) int { return cmp.Compare(x.hash, y.hash) }
	rare, others := present[:nRare], present[nRare:]
	slices.SortFunc(rare, byHash)
	slices.SortFunc(others, byHash)
	// candidates: the rare terms' postings passing the filter, scored by
	// the rare terms as they are found; at[slot] is a candidate's row
	all := sc.all[:0]
	defer func() { sc.all = all[:0] }()
	cand := func(p cachePost, w float64) {
		s := p.slot
		if !f.pass(c, s) {
			at[s] = -1
			return
		}
		m := &c.meta[s]
		stamp[s], at[s] = cur, int32(len(all))
		all = append(all, cacheScore{slot: s, k: m.k, cand: true, score: bm25(w, p.tf, m.length)})
	}
	if nRare == 1 {
		posts, w := c.terms[rare[0].idx].posts, rare[0].w
		if capped {
			for i := len(posts) - 1; i >= 0 && len(all) < q.Budget; i-- {
				cand(posts[i], w)
			}
		} else {
			for _, p := range posts {
				cand(p, w)
			}
		}
	} else {
		for _, t := range rare {
			for _, p := range c.terms[t.idx].posts {
				s := p.slot
				if stamp[s] != cur {
					stamp[s] = cur
					cand(p, t.w)
				} else if i := at[s]; i >= 0 {
					all[i].score += bm25(t.w, p.tf, c.meta[s].length)
				}
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	// the other terms' shares, summed in total for now: from their
	// postings when these are short beside the candidates, else from
	// each candidate's own terms (a cache miss or two per candidate)
	if len(others) > 0 {
		walk := 0
		for _, t := range others {
			walk += t.df
		}
		if walk <= walkPerCandidate*len(all) {
			for _, t := range others {
				for _, p := range c.terms[t.idx].posts {
					if s := p.slot; stamp[s] == cur && at[s] >= 0 {
						all[at[s]].total += bm25(t.w, p.tf, c.meta[s].length)
					}
				}
			}
		} else {
			var mask uint64 // bit t%64 of every other term t: most of a memory's terms miss it
			for _, t := range others {
				mask |= 1 << (t.idx % 64)
			}
			for i := range all {
				d := &c.docs[all[i].slot]
				for _, dt := range d.terms {
					if mask&(1<<(dt.term%64)) == 0 {
						continue
					}
					for j := range others {
						if others[j].idx == dt.term {
							all[i].total += bm25(others[j].w, dt.tf, d.length)
							break
						}
					}
				}
			}
		}
		for i := range all {
			all[i].score, all[i].total = all[i].score+all[i].total, 0
		}
	}
	scored := all
	// room for the receivers of context behind the candidates
	if q.ContextNear != 0 || q.ContextFar != 0 {
		lenders := len(scored)
		if q.ContextLenders > 0 {
			lenders = min(lenders, q.ContextLenders)
		}
		all = slices.Grow(all, 4*lenders)
		scored = all[:len(scored)]
	}
	byID := func(x, y cacheScore) int {
		if x.total != y.total {
			return cmp.Compare(y.total, x.total)
		}
		return strings.Compare(c.docs[x.slot].id, c.docs[y.slot].id)
	}
	if q.ContextNear == 0 && q.ContextFar == 0 {
		for i := range scored {
			scored[i].total = scored[i].score
		}
		best := bestN(scored, q.Limit, byID)
		out := make([]KeywordHit, len(best))
		for i, x := range best {
			out[i] = KeywordHit{ID: c.docs[x.slot].id, Score: x.score, BM25: x.score}
		}
		return out
	}
	// context: the best lenders (own score, then key) lend to their ±1
	// (near) and ±2 (far) neighbours in the owner's timeline
	lenders := scored
	if q.ContextLenders > 0 && len(scored) > q.ContextLenders {
		lenders = topN(scored, q.ContextLenders, false, sc.heap)
		sc.heap = lenders
	}
	lend := func(to uint32, v float64, far bool) {
		var i int
		if stamp[to] == cur && at[to] >= 0 {
			i = int(at[to])
		} else {
			i = len(all)
			stamp[to], at[to] = cur, int32(i)
			all = append(all, cacheScore{slot: to, k: c.meta[to].k})
		}
		if far {
			all[i].far = max(all[i].far, v)
		} else {
			all[i].near = max(all[i].near, v)
		}
	}
	for _, l := range lenders {
		tl := c.timeline[c.meta[l.slot].owner]
		p := c.timelinePos(l.slot)
		if p >= 1 {
			lend(tl[p-1].slot, l.score, false)
		}
		if p+1 < len(tl) {
			lend(tl[p+1].slot, l.score, false)
		}
		if p >= 2 {
			lend(tl[p-2].slot, l.score, true)
		}
		if p+2 < len(tl) {
			lend(tl[p+2].slot, l.score, true)
		}
	}
	for i := range all {
		all[i].total = all[i].score + q.ContextNear*all[i].near + q.ContextFar*all[i].far
	}
	res := func(rows []cacheScore) []cacheScore {
		out := sc.picked[:0]
		for _, x := range rows {
			if x.cand || f.pass(c, x.slot) {
				out = append(out, x)
			}
		}
		sc.picked = out
		return out
	}
	var picked []cacheScore
	if best := q.Limit * overfetch; len(all) > best {
		// the quick form reads only the best totals; too few passing
		// the filter sends it to the exact form, as in runSearch
		sc.heap = topN(all, best, true, sc.heap)
		if picked = res(sc.heap); len(picked) < q.Limit {
			picked = res(all)
		}
	} else {
		picked = res(all)
	}
	picked = bestN(picked, q.Limit, byID)
	out := make([]KeywordHit, 0, len(picked))
	for _, x := range picked {
		out = append(out, KeywordHit{ID: c.docs[x.slot].id, Score: x.total, BM25: x.score, Near: x.near, Far: x.far})
	}
	return out
}

// val is x's own score or its total.
func (x *cacheScore) val(total bool) float64 {
	if total {
		return x.total
	}
	return x.score
}

// topN returns the n first of xs by (val(total) descending, key
// ascending), in h's array and in no particular order (the ranking lends
// from them or orders them again by id): bestN for the two orders of the
// ranking that need no cacheDoc, with the comparison inline and most of
// xs turned away by one float comparison against the worst kept.
func topN(xs []cacheScore, n int, total bool, h []cacheScore) []cacheScore {
	h = h[:0]
	if n <= 0 {
		return h
	}
	// before: x comes first (a total order: keys are unique)
	before := func(x, y *cacheScore) bool {
		xv, yv := x.val(total), y.val(total)
		return xv > yv || xv == yv && x.k < y.k
	}
	for i := range xs {
		x := &xs[i]
		if len(h) < n {
			h = append(h, *x)
			for j := len(h) - 1; j > 0; { // the root is the worst kept
				p := (j - 1) / 2
				if !before(&h[p], &h[j]) {
					break
				}
				h[j], h[p] = h[p], h[j]
				j = p
			}
			continue
		}
		if x.val(total) < h[0].val(total) || !before(x, &h[0]) {
			continue
		}
		h[0] = *x
		for j := 0; ; {
			w := j
			if l := 2*j + 1; l < len(h) && before(&h[w], &h[l]) {
				w = l
			}
			if r := 2*j + 2; r < len(h) && before(&h[w], &h[r]) {
				w = r
			}
			if w == j {
				break
			}
			h[j], h[w] = h[w], h[j]
			j = w
		}
	}
	return h
}

// bestN returns the n first of xs in the order of cmpf (a total order),
// sorted, without sorting xs: a bounded heap whose root is the worst kept.
func bestN(xs []cacheScore, n int, cmpf func(x, y cacheScore) int) []cacheScore {
	if n <= 0 {
		return nil
	}
	if len(xs) <= n {
		out := slices.Clone(xs)
		slices.SortFunc(out, cmpf)
		return out
	}
	h := make([]cacheScore, 0, n)
	down := func(i int) {
		for {
			w := i
			if l := 2*i + 1; l < len(h) && cmpf(h[l], h[w]) > 0 {
				w = l
			}
			if r := 2*i + 2; r < len(h) && cmpf(h[r], h[w]) > 0 {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for _, x := range xs {
		if len(h) < n {
			h = append(h, x)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if cmpf(h[i], h[p]) <= 0 {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			continue
		}
		if cmpf(x, h[0]) < 0 {
			h[0] = x
			down(0)
		}
	}
	slices.SortFunc(h, cmpf)
	return h
}
