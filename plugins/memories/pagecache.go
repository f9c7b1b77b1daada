package memories

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pocketbase/dbx"
	"golang.org/x/sync/singleflight"

	"github.com/picard-mcp/picard/pb_migrations"
)

// Bounds of the get_memories page cache: at most pageCacheEntries pages
// and about pageCacheBytes of memories in them (oldest used go first).
const (
	pageCacheEntries = 1024
	pageCacheBytes   = 16 << 20
)

// pageCache keeps recent get_memories pages, decrypted and encoded, so an
// owner listing the same page again costs no SQLite read, no decryption
// and no JSON encoding.
//
// get_memories lists the caller's own memories only, so a page is a
// function of the owner's rows and of the clock. A page is served from the
// cache only while:
//
//   - the owner's rows have not changed since the page was read. Two
//     checks say so, both blind to which process or path wrote (the
//     tools, an import, the dashboard and its PocketBase hooks, `keys
//     rotate`, a `picard import` next to the server, SQL typed by hand):
//     first SQLite's PRAGMA data_version, read on a connection of its own
//     before every lookup, which changes whenever any other connection
//     commits: unchanged since the page was read or last checked, the
//     page is current. Changed (another owner's write, an access-log
//     flush, or this owner's), the owner's row of
//     pb_migrations.OwnerVersions is read (one point lookup): triggers
//     bump it in the transaction of every insert, update or delete of the
//     owner's memories, so the same value means none of them changed, and
//     the page is current again at the new data version. The versions are
//     read before the page's query, so a commit racing the query makes the
//     stored page stale at once, never a stale page current;
//   - the triggers have existed all along: PRAGMA schema_version, read
//     with data_version, changes with any schema change; a page is
//     checked against the owner's counter only at the schema version it
//     was read at, and only once the triggers were seen at that schema
//     version (else the data version alone decides, as if the counter did
//     not exist);
//   - none of the memories the page read has expired (the page's TTL is
//     the earliest expiry among them, the row past the page included:
//     it decides next_cursor).
//
// Permission checks do not depend on the cache: the page is keyed by its
// owner, who is the caller, and holds only that owner's memories.
type pageCache struct {
	c       *lru.Cache[string, *cachedPage]
	mu      sync.Mutex   // serialises put (its size accounting)
	bytes   atomic.Int64 // sizes of the pages in c
	probe   *versionProbe
	owners  *ownerVersions
	flights singleflight.Group
	hitc    *hitCache // query_memory's hits, on the same probe and counters

	hits, misses atomic.Int64
	refreshes    atomic.Int64 // pages refreshPage made from their cached copy
}

type cachedPage struct {
	data    atomic.Int64 // data version at which the page was last known current
	schema  int64        // schema version it was read at
	owner   int64        // the owner's version counter when it was read
	changed int64        // and their changed counter
	tracked bool         // owner is valid (the triggers existed at schema)
	expires time.Time    // zero: no memory on the page expires
	res     *ListResult
	size    int64
}

// newPageCache makes the page cache of the read pool db; shm is the path
// of the database's WAL index ("" for none).
func newPageCache(db *sql.DB, shm string) *pageCache {
	pc := &pageCache{probe: &versionProbe{db: db, shm: shm}, owners: &ownerVersions{db: db}}
	pc.hitc = newHitCache(pc.probe, pc.owners)
	pc.c, _ = lru.NewWithEvict(pageCacheEntries, func(_ string, p *cachedPage) { pc.bytes.Add(-p.size) })
	return pc
}

// pageKey identifies a page: its owner and every argument that shapes it.
func pageKey(q listQuery) string {
	var b strings.Builder
	b.Grow(len(q.ownerID) + len(q.permission) + len(q.cursorCreated) + len(q.cursorID) + 16)
	b.WriteString(q.ownerID)
	b.WriteByte(0)
	b.WriteString(q.permission)
	b.WriteByte(0)
	b.WriteString(q.cursorCreated)
	b.WriteByte(0)
	b.WriteString(q.cursorID)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(q.limit))
	if q.desc {
		b.WriteString("d")
	}
	if q.now == "" {
		b.WriteString("x") // expired memories included
	}
	return b.String()
}

// dbVersion is what the probe reads: the data and schema versions.
type dbVersion struct{ data, schema int64 }

// ownerVersion is an owner's counters as read for a lookup.
type ownerVersion struct {
	ownerCounters
	ok bool // read, and the triggers kept them at this schema version
}

// ownerVersion returns ownerID's counters as of ver, which the caller had
// from the probe before it called. They come from the search-hit cache's
// scan of every owner's counters (readAllOwners: one scan per data
// version, shared by every caller that brings the same version: the same
// version means nothing committed between the probe that gave it and the
// scan, which came after that probe), and with more than allOwnersMax
// owners from a query of this owner's row. Under a mix of reads and
// writes the data version changes with most reads; a query per
// get_memories call was ~5% of the mixed load's CPU (docs/performance.md,
// "Hot path, round 10").
func (pc *pageCache) ownerVersion(sc *stmtCache, ownerID string, ver dbVersion) ownerVersion {
	if all, ok := pc.hitc.readAllOwners(sc, ver); ok {
		return ownerVersion{all[ownerID], true}
	}
	return pc.owners.read(ownerID, ver.schema)
}

// get returns the cached page for key if it is current at ver and now;
// the owner's counters are read (once, into ov) when the data version
// alone cannot tell. A page that is not current only because its owner
// added memories since it was read (their version counter moved, their
// changed counter did not, and none of its memories has expired) is
// returned as grown, for refreshPage.
func (pc *pageCache) get(sc *stmtCache, key, ownerID string, ver dbVersion, now time.Time, ov *ownerVersion) (res *ListResult, grown *cachedPage, ok bool) {
	p, ok := pc.c.Get(key)
	if !ok || (!p.expires.IsZero() && !now.Before(p.expires)) {
		pc.misses.Add(1)
		return nil, nil, false
	}
	if p.data.Load() != ver.data {
		if !p.tracked || p.schema != ver.schema {
			pc.misses.Add(1)
			return nil, nil, false
		}
		*ov = pc.ownerVersion(sc, ownerID, ver)
		if !ov.ok || ov.version != p.owner {
			pc.misses.Add(1)
			if ov.ok && ov.changed == p.changed {
				return nil, p, false
			}
			return nil, nil, false
		}
		// none of the owner's rows changed: current at this data version
		p.data.Store(ver.data)
	}
	pc.hits.Add(1)
	return p.res, nil, true
}

func (pc *pageCache) put(key string, ver dbVersion, ov ownerVersion, expires time.Time, res *ListResult) {
	var size int64 = 256
	for _, m := range res.Memories {
		size += int64(len(m.Text)) + 400
	}
	if size > pageCacheBytes/16 {
		return // a page of very long memories: not worth the room
	}
	if res.enc == nil { // refreshPage's pages come with theirs
		res.enc = &encodedPage{}
	}
	p := &cachedPage{schema: ver.schema, owner: ov.version, changed: ov.changed, tracked: ov.ok, expires: expires, res: res, size: size}
	p.data.Store(ver.data)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if prev, ok := pc.c.Peek(key); ok {
		pc.bytes.Add(-prev.size) // replaced: the LRU does not call onEvict for it
	}
	pc.c.Add(key, p)
	for pc.bytes.Add(size) > pageCacheBytes {
		if _, _, ok := pc.c.RemoveOldest(); !ok {
			break
		}
		size = 0
	}
}

// PageRefreshes says how many get_memories pages were made from their
// cached copy and their owner's new memories (refreshPage) instead of
// read whole.
func (s *Service) PageRefreshes() int64 {
	if s.pages == nil {
		return 0
	}
	return s.pages.refreshes.Load()
}

// PageCacheStats says how many get_memories pages were served from the
// cache and how many were read.
func (s *Service) PageCacheStats() (hits, misses int64) {
	if s.pages == nil {
		return 0, 0
	}
	return s.pages.hits.Load(), s.pages.misses.Load()
}

// versionProbe reads PRAGMA data_version and schema_version on one
// connection of its own: SQLite changes the data version that connection
// sees whenever any other connection (of this process or another)
// commits to the database, and the schema version with every schema
// change. Data versions of different connections are not comparable: a
// connection opened again after an error gives its values a new
// generation in the high bits.
//
// Concurrent callers share reads: a caller waits for a read that started
// after it arrived (so the version it gets is at least as new as the
// database was when it asked) and every caller waiting then takes that
// one; under load one query answers many requests instead of each request
// queueing for the connection.
//
// Cheaper still, when the database's WAL index (-shm) can be opened: the
// header of the WAL index is read (pread) before each query, and a caller finds
// the same header as before the last query, nothing has committed since
// that query started, so its versions still hold and no query is run.
// SQLite writes the header before a commit returns, so a commit that
// returned before a caller asked is always seen. A query still runs at
// least every probeFullEvery; were it ever to find a new data version under
// an unchanged header (a database that left WAL mode), the header is not
// trusted again.
type versionProbe struct {
	db  *sql.DB
	shm string // the database's WAL index (-shm) file; "" for none

	wal       *walIndex // nil until opened
	walTried  time.Time // last attempt to map it
	walOff    bool      // the header was once found unchanged across a commit
	lastHdr   [walHeaderBytes]byte
	lastHdrOK bool      // lastHdr was read before the query that gave last
	lastFull  time.Time // when that query started
	queries   int64     // run so far (the running read's)

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // reads started so far
	done    uint64 // sequence number (1-based) of the last read finished
	running bool
	last    dbVersion
	lastOK  bool
	closed  bool
	gen     int64 // connections opened so far

	conn *sql.Conn // used by the running read only
	stmt *sql.Stmt
}

// read returns the data version; ok is false when it cannot be read (then
// nothing may be served from the cache).
func (p *versionProbe) read() (v dbVersion, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	if p.unchanged() {
		return p.last, true
	}
	need := p.started + 1 // the first read to start from now on
	for p.done < need {
		if p.closed {
			return dbVersion{}, false
		}
		if p.running {
			p.cond.Wait()
			continue
		}
		p.running = true
		p.started++
		seq := p.started
		hdr, hdrOK := p.header() // before the query: a commit racing it changes the header
		started := time.Now()
		p.mu.Unlock()
		v, ok := p.query()
		p.mu.Lock()
		p.running = false
		// A reader sees a commit only once its header is written, so a new
		// version between the last query and this one means the header
		// changed between the read before the last query and the read
		// after this one. (Comparing with the read before this one would
		// not do: the commit may write its header just after that.)
		if after, afterOK := p.header(); ok && p.lastOK && hdrOK && afterOK && p.lastHdrOK && after == p.lastHdr &&
			v.data != p.last.data && v.data>>40 == p.last.data>>40 {
			p.walOff = true
			slog.Warn("get_memories page cache: data.db's WAL index did not change with a commit; reading the data version from SQLite from now on")
		}
		p.done, p.last, p.lastOK = seq, v, ok
		p.lastHdr, p.lastHdrOK, p.lastFull = hdr, hdrOK && ok, started
		p.cond.Broadcast()
	}
	return p.last, p.lastOK
}

// probeFullEvery bounds how long versions are taken from an unchanged WAL
// index header without asking SQLite.
const probeFullEvery = 250 * time.Millisecond

// unchanged says whether the WAL index header is the one read before the
// last query, which then still holds; p.mu held.
func (p *versionProbe) unchanged() bool {
	if !p.lastHdrOK || !p.lastOK || p.walOff || time.Since(p.lastFull) > probeFullEvery {
		return false
	}
	hdr, ok := p.header()
	return ok && hdr == p.lastHdr
}

// header reads the WAL index header; ok is false when there is none to
// read (no -shm file, not mappable, or replaced); p.mu held.
func (p *versionProbe) header() (hdr [walHeaderBytes]byte, ok bool) {
	if p.shm == "" || p.walOff {
		return hdr, false
	}
	if p.wal == nil {
		if time.Since(p.walTried) < walRetry {
			return hdr, false
		}
		p.walTried = time.Now()
		if p.wal = openWALIndex(p.shm); p.wal == nil {
			return hdr, false
		}
	}
	if hdr, ok = p.wal.header(); !ok {
		p.wal.close() // the database was reopened: map the new one later
		p.wal = nil
	}
	return hdr, ok
}

// query runs the pragma; only the running read calls it.
func (p *versionProbe) query() (v dbVersion, ok bool) {
	if p.conn == nil {
		conn, err := p.db.Conn(context.Background())
		if err != nil {
			return v, false
		}
		stmt, err := conn.PrepareContext(context.Background(),
			"SELECT d.data_version, s.schema_version FROM pragma_data_version d, pragma_schema_version s")
		if err != nil {
			_ = conn.Close()
			return v, false
		}
		p.conn, p.stmt = conn, stmt
		p.gen++
	}
	p.queries++
	if err := p.stmt.QueryRow().Scan(&v.data, &v.schema); err != nil {
		p.reset()
		return dbVersion{}, false
	}
	v.data += p.gen << 40
	return v, true
}

func (p *versionProbe) reset() {
	if p.conn != nil {
		_ = p.stmt.Close()
		_ = p.conn.Close()
		p.conn, p.stmt = nil, nil
	}
}

// close gives the connection back for good (the app is closing its pool).
func (p *versionProbe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	p.closed = true
	for p.running {
		p.cond.Wait()
	}
	p.reset()
	if p.wal != nil {
		p.wal.close()
		p.wal = nil
	}
	p.lastHdrOK = false
	p.cond.Broadcast()
}

// ownerVersions reads an owner's row of pb_migrations.OwnerVersions, and
// whether the triggers that keep it exist at a schema version.
type ownerVersions struct {
	db *sql.DB

	once       sync.Once
	stmt       *sql.Stmt // the owner's counter; nil: cannot be read
	checkStmt  *sql.Stmt // the triggers and the schema version
	names      []byte    // the triggers' names, a JSON array
	mu         sync.Mutex
	checked    bool
	checkedAt  int64 // schema version of the last check
	checkedOK  bool  // every trigger existed then
	changedOK  bool  // and every one moved the changed counter too
	warnedGone bool
}

// ownerVersionSQL reads one owner's counter.
const ownerVersionSQL = "SELECT version, " + pb_migrations.OwnerChangedColumn + " FROM " + pb_migrations.OwnerVersions + " WHERE owner = ?"

func (o *ownerVersions) prepare() {
	var err error
	if o.stmt, err = o.db.Prepare(ownerVersionSQL); err != nil {
		o.stmt = nil
		return
	}
	// one statement: the triggers seen and the schema they were seen in
	if o.checkStmt, err = o.db.Prepare("SELECT (SELECT count(DISTINCT name) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1" +
		" AND name IN (SELECT value FROM json_each(?2)))," +
		" (SELECT count(DISTINCT name) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1" +
		" AND name IN (SELECT value FROM json_each(?2)) AND instr(sql, ?3) > 0)," +
		" s.schema_version FROM pragma_schema_version s"); err != nil {
		_ = o.stmt.Close()
		o.stmt, o.checkStmt = nil, nil
	}
	o.names, _ = json.Marshal(pb_migrations.OwnerVersionTriggers)
}

// tracking says whether the triggers existed at schema version sv,
// checking again when the schema changed since the last check.
func (o *ownerVersions) tracking(sv int64) bool {
	ok, _ := o.check(sv)
	return ok
}

// trackingChanged says whether the triggers existed at schema version sv
// and also moved pb_migrations.OwnerChangedColumn.
func (o *ownerVersions) trackingChanged(sv int64) bool {
	ok, changed := o.check(sv)
	return ok && changed
}

func (o *ownerVersions) check(sv int64) (ok, changed bool) {
	o.once.Do(o.prepare)
	if o.stmt == nil {
		return false, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.checked && o.checkedAt == sv {
		return o.checkedOK, o.changedOK
	}
	var n, nChanged, at int64
	if err := o.checkStmt.QueryRow(pb_migrations.Memories, string(o.names), pb_migrations.OwnerChangedBump).
		Scan(&n, &nChanged, &at); err != nil {
		return false, false
	}
	o.checked, o.checkedAt = true, at
	o.checkedOK = n == int64(len(pb_migrations.OwnerVersionTriggers))
	o.changedOK = o.checkedOK && nChanged == pb_migrations.OwnerChangedTriggers
	if !o.checkedOK && !o.warnedGone {
		o.warnedGone = true
		slog.Warn("memories: the triggers of " + pb_migrations.OwnerVersions + " are missing; get_memories pages are kept only while data.db is unchanged")
	}
	return at == sv && o.checkedOK, at == sv && o.changedOK
}

// read returns ownerID's counters (0 if the owner never had a memory);
// ok is false when they cannot be trusted at schema version sv.
func (o *ownerVersions) read(ownerID string, sv int64) ownerVersion {
	if !o.tracking(sv) {
		return ownerVersion{}
	}
	var v ownerVersion
	switch err := o.stmt.QueryRow(ownerID).Scan(&v.version, &v.changed); {
	case err == nil, errors.Is(err, sql.ErrNoRows):
		v.ok = true
		return v
	default:
		return ownerVersion{}
	}
}

func (o *ownerVersions) close() {
	o.once.Do(func() {})
	if o.stmt != nil {
		_ = o.stmt.Close()
		_ = o.checkStmt.Close()
	}
}

// pageCacheFor returns the page cache of the app's read pool, or nil when
// the app's read builder is not a plain dbx.DB.
func (s *Service) pageCacheFor() *pageCache {
	s.pagesOnce.Do(func() {
		if db, ok := s.app.ConcurrentDB().(*dbx.DB); ok {
			s.pages = newPageCache(db.DB(), filepath.Join(s.app.DataDir(), "data.db-shm"))
		}
	})
	return s.pages
}
