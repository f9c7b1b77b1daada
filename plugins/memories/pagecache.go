package memories

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pocketbase/dbx"
	"golang.org/x/sync/singleflight"
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
//   - the database has not changed since the page was read: SQLite's
//     PRAGMA data_version, read on a connection of its own before every
//     lookup, changes whenever any other connection commits, whichever
//     process it belongs to and whatever path it took (the tools, an
//     import, the dashboard and its PocketBase hooks, `keys rotate`, a
//     `picard import` next to the server, SQL typed by hand). The version
//     is read before the page's query, so a commit racing the query makes
//     the stored page stale at once, never a stale page current;
//   - none of the memories the page read has expired (the page's TTL is
//     the earliest expiry among them, the row past the page included:
//     it decides next_cursor).
//
// The check is coarse: any commit (another owner's write, an access-log
// flush) empties the cache in effect; pages are rebuilt on the next call.
// Permission checks do not depend on the cache: the page is keyed by its
// owner, who is the caller, and holds only that owner's memories.
type pageCache struct {
	c       *lru.Cache[string, *cachedPage]
	mu      sync.Mutex   // serialises put (its size accounting)
	bytes   atomic.Int64 // sizes of the pages in c
	probe   *versionProbe
	flights singleflight.Group

	hits, misses atomic.Int64
}

type cachedPage struct {
	version int64
	expires time.Time // zero: no memory on the page expires
	res     *ListResult
	size    int64
}

func newPageCache(db *sql.DB) *pageCache {
	pc := &pageCache{probe: &versionProbe{db: db}}
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

// get returns the cached page for key if it is current at version and now.
func (pc *pageCache) get(key string, version int64, now time.Time) (*ListResult, bool) {
	p, ok := pc.c.Get(key)
	if !ok || p.version != version || (!p.expires.IsZero() && !now.Before(p.expires)) {
		pc.misses.Add(1)
		return nil, false
	}
	pc.hits.Add(1)
	return p.res, true
}

func (pc *pageCache) put(key string, version int64, expires time.Time, res *ListResult) {
	var size int64 = 256
	for _, m := range res.Memories {
		size += int64(len(m.Text)) + 400
	}
	if size > pageCacheBytes/16 {
		return // a page of very long memories: not worth the room
	}
	res.enc = &encodedPage{}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if prev, ok := pc.c.Peek(key); ok {
		pc.bytes.Add(-prev.size) // replaced: the LRU does not call onEvict for it
	}
	pc.c.Add(key, &cachedPage{version: version, expires: expires, res: res, size: size})
	for pc.bytes.Add(size) > pageCacheBytes {
		if _, _, ok := pc.c.RemoveOldest(); !ok {
			break
		}
		size = 0
	}
}

// encodedPage is a cached page's JSON, encoded once on first use.
type encodedPage struct {
	once         sync.Once
	json, quoted []byte
	err          error
}

// Encoded returns r as JSON (what encoding/json.Marshal gives) and that
// JSON as a JSON string, encoded once for a page shared through the page
// cache; ok is false for a result that is not (encode it yourself). The
// slices are shared: do not modify them.
func (r *ListResult) Encoded() (structured, quoted []byte, ok bool) {
	if r.enc == nil {
		return nil, nil, false
	}
	e := r.enc
	e.once.Do(func() {
		if e.json, e.err = json.Marshal(r); e.err == nil {
			e.quoted, e.err = json.Marshal(string(e.json))
		}
	})
	if e.err != nil {
		return nil, nil, false
	}
	return e.json, e.quoted, true
}

// PageCacheStats says how many get_memories pages were served from the
// cache and how many were read.
func (s *Service) PageCacheStats() (hits, misses int64) {
	if s.pages == nil {
		return 0, 0
	}
	return s.pages.hits.Load(), s.pages.misses.Load()
}

// versionProbe reads PRAGMA data_version on one connection of its own:
// SQLite changes the value that connection sees whenever any other
// connection (of this process or another) commits to the database.
//
// Concurrent callers share reads: a caller waits for a read that started
// after it arrived (so the version it gets is at least as new as the
// database was when it asked) and every caller waiting then takes that
// one; under load one query answers many requests instead of each request
// queueing for the connection.
type versionProbe struct {
	db *sql.DB

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // reads started so far
	done    uint64 // sequence number (1-based) of the last read finished
	running bool
	last    int64
	lastOK  bool
	closed  bool

	conn *sql.Conn // used by the running read only
	stmt *sql.Stmt
}

// read returns the data version; ok is false when it cannot be read (then
// nothing may be served from the cache).
func (p *versionProbe) read() (v int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	need := p.started + 1 // the first read to start from now on
	for p.done < need {
		if p.closed {
			return 0, false
		}
		if p.running {
			p.cond.Wait()
			continue
		}
		p.running = true
		p.started++
		seq := p.started
		p.mu.Unlock()
		v, ok := p.query()
		p.mu.Lock()
		p.running = false
		p.done, p.last, p.lastOK = seq, v, ok
		p.cond.Broadcast()
	}
	return p.last, p.lastOK
}

// query runs the pragma; only the running read calls it.
func (p *versionProbe) query() (v int64, ok bool) {
	if p.conn == nil {
		conn, err := p.db.Conn(context.Background())
		if err != nil {
			return 0, false
		}
		stmt, err := conn.PrepareContext(context.Background(), "PRAGMA data_version")
		if err != nil {
			_ = conn.Close()
			return 0, false
		}
		p.conn, p.stmt = conn, stmt
	}
	if err := p.stmt.QueryRow().Scan(&v); err != nil {
		p.reset()
		return 0, false
	}
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
	p.cond.Broadcast()
}

// pageCacheFor returns the page cache of the app's read pool, or nil when
// the app's read builder is not a plain dbx.DB.
func (s *Service) pageCacheFor() *pageCache {
	s.pagesOnce.Do(func() {
		if db, ok := s.app.ConcurrentDB().(*dbx.DB); ok {
			s.pages = newPageCache(db.DB())
		}
	})
	return s.pages
}
