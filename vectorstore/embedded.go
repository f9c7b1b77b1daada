package vectorstore

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"
)

// EmbeddedStore is a pure-Go Store persisted to a single append-only log
// file. Vectors are L2-normalised at insert and stay on disk: memory holds
// each item's id, metadata and the log offset of its vector. The first
// search of a space builds an approximate index of it in memory (int8
// quantised vectors, see ann.go) that every later write keeps current;
// search filters every item first, ranks the matches by the quantised dot
// product and rescores the best candidates exactly (cosine similarity) from
// the vectors on disk, so a selective filter never starves the result.
//
// Every acknowledged Upsert, SetMeta, Delete and Reset has been written and
// fsynced to the log before the call returns; a torn record at the end of the
// log (a crash in the middle of a write) is discarded when the file is
// reopened. The log is compacted (rewritten to a temporary file, fsynced and
// renamed over the original) when superseded records outweigh live ones.
//
// ExpiresAt and CreatedAt are kept at microsecond precision, like PostgreSQL,
// so both backends filter identically. It is safe for concurrent use.
type EmbeddedStore struct {
	mu      sync.RWMutex
	path    string
	f       *os.File
	lock    *os.File // path+".lock", flocked while open: one process at a time
	spaces  map[Space]*spaceIndex
	live    int // items held, over all spaces
	garbage int // superseded item records in the log
	closed  bool

	kwMu sync.Mutex
	kw   *sqlKeywords // keywords.db beside the log, opened on first use
}

var _ Store = (*EmbeddedStore)(nil)

// spaceIndex is one space's items, slot by slot: id, metadata and the log
// offset of the normalised float32 vector, plus the approximate index once a
// search has built it.
type spaceIndex struct {
	dims  int
	ids   []string
	metas []Meta
	offs  []int64
	pos   map[string]int
	ann   *annIndex // nil until the first search of the space
}

func newSpaceIndex(dims int) *spaceIndex {
	return &spaceIndex{dims: dims, pos: make(map[string]int)}
}

// put inserts or replaces one item whose vector (already normalised) is at
// off in the log; vec is only needed once the approximate index is built.
// It reports whether an existing item was replaced.
func (s *spaceIndex) put(id string, meta Meta, off int64, vec []float32) bool {
	if i, ok := s.pos[id]; ok {
		s.metas[i] = meta
		s.offs[i] = off
		if s.ann != nil {
			s.ann.set(i, vec)
		}
		return true
	}
	s.pos[id] = len(s.ids)
	if s.ann != nil {
		s.ann.set(len(s.ids), vec)
	}
	s.ids = append(s.ids, id)
	s.metas = append(s.metas, meta)
	s.offs = append(s.offs, off)
	return false
}

// remove deletes id by moving the last item into its slot.
func (s *spaceIndex) remove(id string) bool {
	i, ok := s.pos[id]
	if !ok {
		return false
	}
	last := len(s.ids) - 1
	if i != last {
		s.ids[i] = s.ids[last]
		s.metas[i] = s.metas[last]
		s.offs[i] = s.offs[last]
		s.pos[s.ids[i]] = i
	}
	if s.ann != nil {
		s.ann.removeSwap(i)
	}
	s.ids[last] = ""
	s.metas[last] = Meta{}
	s.ids = s.ids[:last]
	s.metas = s.metas[:last]
	s.offs = s.offs[:last]
	delete(s.pos, id)
	return true
}

// Log format: the magic header, then records of
// [payload length uint32][CRC-32C of payload uint32][payload], little endian.
// The payload starts with an op byte.
const (
	logMagic = "PICARDVS1\n"

	opUpsert  byte = 1
	opSetMeta byte = 2
	opDelete  byte = 3
	opReset   byte = 4

	maxRecord = 1 << 30

	// compaction happens once this many superseded records have piled up
	// and they outnumber the live items.
	compactMinGarbage = 1024
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenEmbedded opens (or creates) the store persisted in the file at path,
// creating its directory if needed, and replays the log into memory.
func OpenEmbedded(path string) (*EmbeddedStore, error) {
	if path == "" {
		return nil, errors.New("open embedded vector store: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open embedded vector store: %w", err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	s := &EmbeddedStore{path: path, lock: lock, spaces: make(map[Space]*spaceIndex)}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open embedded vector store: %w", err)
	}
	good, err := s.replay(f)
	if err != nil {
		f.Close()
		lock.Close()
		return nil, fmt.Errorf("open embedded vector store %s: %w", path, err)
	}
	s.f = f
	if good == 0 {
		// new (or empty) file: write the header.
		if err := s.rewrite(); err != nil {
			f.Close()
			return nil, fmt.Errorf("open embedded vector store %s: %w", path, err)
		}
		return s, nil
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open embedded vector store %s: %w", path, err)
	}
	s.maybeCompactLocked()
	return s, nil
}

// replay applies the log to memory and returns the offset after the last
// good record (0 for an empty file). A torn or corrupt tail is truncated.
func (s *EmbeddedStore) replay(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() == 0 {
		return 0, nil
	}
	r := bufio.NewReaderSize(f, 1<<20)
	head := make([]byte, len(logMagic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != logMagic {
		return 0, errors.New("not a picard vector store file")
	}
	good := int64(len(logMagic))
	var hdr [8]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return good, nil
			}
			break // torn header
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n == 0 || n > maxRecord || int64(n) > st.Size()-good {
			break
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			break
		}
		if crc32.Checksum(buf, crcTable) != sum {
			break
		}
		if err := s.apply(buf, good+8); err != nil {
			return 0, fmt.Errorf("record at offset %d: %w", good, err)
		}
		good += 8 + int64(n)
	}
	slog.Warn("vectorstore: discarding torn or corrupt tail of the embedded store log",
		"path", s.path, "kept_bytes", good, "dropped_bytes", st.Size()-good)
	if err := f.Truncate(good); err != nil {
		return 0, fmt.Errorf("truncate torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("truncate torn tail: %w", err)
	}
	return good, nil
}

// apply decodes one record whose payload p starts at offset base of the log
// and applies it to memory (vectors stay on disk: only their offsets are
// kept).
func (s *EmbeddedStore) apply(p []byte, base int64) error {
	d := decoder{b: p[1:]}
	switch p[0] {
	case opUpsert:
		sp := Space{Embedder: d.str(), Model: d.str(), Dims: int(d.uvarint())}
		n := int(d.uvarint())
		if d.err != nil || sp.Dims <= 0 || sp.Dims > 1<<20 {
			return errors.New("bad upsert record")
		}
		for range n {
			id := d.str()
			m := d.meta()
			off := base + int64(len(p)-len(d.b))
			d.bytes(uint64(sp.Dims) * 4)
			if d.err != nil {
				return errors.New("bad upsert record")
			}
			s.put(sp, id, m, off, nil)
		}
	case opSetMeta:
		id := d.str()
		m := d.meta()
		if d.err != nil {
			return errors.New("bad set-meta record")
		}
		s.setMeta(id, m)
	case opDelete:
		n := int(d.uvarint())
		for range n {
			id := d.str()
			if d.err != nil {
				return errors.New("bad delete record")
			}
			s.remove(id)
		}
	case opReset:
		s.reset()
	default:
		return fmt.Errorf("unknown op %d", p[0])
	}
	return d.err
}

func (s *EmbeddedStore) put(sp Space, id string, m Meta, off int64, v []float32) {
	idx := s.spaces[sp]
	if idx == nil {
		idx = newSpaceIndex(sp.Dims)
		s.spaces[sp] = idx
	}
	if idx.put(id, m, off, v) {
		s.garbage++
	} else {
		s.live++
	}
}

func (s *EmbeddedStore) setMeta(id string, m Meta) bool {
	found := false
	for _, idx := range s.spaces {
		if i, ok := idx.pos[id]; ok {
			idx.metas[i] = m
			found = true
		}
	}
	if found {
		s.garbage++
	}
	return found
}

func (s *EmbeddedStore) remove(id string) bool {
	found := false
	for sp, idx := range s.spaces {
		if idx.remove(id) {
			found = true
			s.live--
			s.garbage++
			if len(idx.ids) == 0 {
				delete(s.spaces, sp)
			}
		}
	}
	return found
}

func (s *EmbeddedStore) reset() {
	s.spaces = make(map[Space]*spaceIndex)
	s.garbage += s.live + 1
	s.live = 0
}

func (s *EmbeddedStore) needsCompaction() bool {
	return s.garbage >= compactMinGarbage && s.garbage > s.live
}

// Upsert inserts or replaces items in space; vectors are normalised.
func (s *EmbeddedStore) Upsert(ctx context.Context, space Space, items ...Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded upsert: %w", err)
	}
	if space.Dims <= 0 {
		return fmt.Errorf("embedded upsert: space %s: dims must be positive: %w", space, ErrSpaceMismatch)
	}
	vecs := make([][]float32, len(items))
	for i, it := range items {
		if it.ID == "" {
			return errors.New("embedded upsert: item with empty id")
		}
		v, err := normalized(space, it.Vector)
		if err != nil {
			return fmt.Errorf("embedded upsert %q: %w", it.ID, err)
		}
		vecs[i] = v
	}
	e := encoder{}
	e.byte(opUpsert)
	e.str(space.Embedder)
	e.str(space.Model)
	e.uvarint(uint64(space.Dims))
	e.uvarint(uint64(len(items)))
	metas := make([]Meta, len(items))
	at := make([]int64, len(items)) // each vector's offset in the payload
	for i, it := range items {
		metas[i] = cleanMeta(it.Meta)
		e.str(it.ID)
		e.meta(metas[i])
		at[i] = int64(len(e.b))
		e.floats(vecs[i])
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	base, err := s.writeLocked(e.b)
	if err != nil {
		return fmt.Errorf("embedded upsert: %w", err)
	}
	for i, it := range items {
		s.put(space, it.ID, metas[i], base+at[i], vecs[i])
	}
	s.maybeCompactLocked()
	return nil
}

// SetMeta replaces id's metadata in every space holding it; unknown ids are
// a no-op.
func (s *EmbeddedStore) SetMeta(ctx context.Context, id string, meta Meta) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded set meta: %w", err)
	}
	meta = cleanMeta(meta)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if !s.hasLocked(id) {
		return nil
	}
	e := encoder{}
	e.byte(opSetMeta)
	e.str(id)
	e.meta(meta)
	if _, err := s.writeLocked(e.b); err != nil {
		return fmt.Errorf("embedded set meta: %w", err)
	}
	s.setMeta(id, meta)
	s.maybeCompactLocked()
	return nil
}

// Delete removes ids from every space; unknown ids are ignored.
func (s *EmbeddedStore) Delete(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	var known []string
	for _, id := range ids {
		if s.hasLocked(id) {
			known = append(known, id)
		}
	}
	if len(known) == 0 {
		return nil
	}
	e := encoder{}
	e.byte(opDelete)
	e.uvarint(uint64(len(known)))
	for _, id := range known {
		e.str(id)
	}
	if _, err := s.writeLocked(e.b); err != nil {
		return fmt.Errorf("embedded delete: %w", err)
	}
	for _, id := range known {
		s.remove(id)
	}
	s.maybeCompactLocked()
	return nil
}

// Reset removes every vector of every space, truncates the log and empties
// the keyword index.
func (s *EmbeddedStore) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded reset: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	// The reset record makes the reset durable even if the rewrite that
	// drops the old records fails.
	if _, err := s.writeLocked([]byte{opReset}); err != nil {
		return fmt.Errorf("embedded reset: %w", err)
	}
	s.reset()
	if err := s.rewrite(); err != nil {
		slog.Warn("vectorstore: compacting the embedded store log failed", "path", s.path, "err", err)
	}
	// the keyword index is part of the store: it empties too
	s.kwMu.Lock()
	defer s.kwMu.Unlock()
	if s.kw == nil {
		k, err := openSQLiteKeywords(filepath.Join(filepath.Dir(s.path), "keywords.db"))
		if err != nil {
			return fmt.Errorf("embedded reset: %w", err)
		}
		s.kw = k
	}
	if err := s.kw.ResetKeywords(ctx); err != nil {
		return fmt.Errorf("embedded reset: %w", err)
	}
	return nil
}

// Count returns the number of vectors held in space.
func (s *EmbeddedStore) Count(ctx context.Context, space Space) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errStoreClosed
	}
	if idx := s.spaces[space]; idx != nil {
		return len(idx.ids), nil
	}
	return 0, nil
}

// Ping reports whether the store is open.
func (s *EmbeddedStore) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errStoreClosed
	}
	return nil
}

// Close closes the log file; the store cannot be used afterwards.
func (s *EmbeddedStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.spaces = nil
	s.kwMu.Lock()
	if s.kw != nil {
		s.kw.Close()
		s.kw = nil
	}
	s.kwMu.Unlock()
	defer s.lock.Close() // releases the flock
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("close embedded vector store: %w", err)
	}
	return nil
}

var errStoreClosed = errors.New("embedded vector store is closed")

// Keywords returns the keyword index kept in keywords.db (SQLite) in the
// store's directory, opening it on first use.
func (s *EmbeddedStore) Keywords() (KeywordIndex, error) {
	s.kwMu.Lock()
	defer s.kwMu.Unlock()
	if s.kw == nil {
		k, err := openSQLiteKeywords(filepath.Join(filepath.Dir(s.path), "keywords.db"))
		if err != nil {
			return nil, err
		}
		s.kw = k
	}
	return s.kw, nil
}

// Search ranks the vectors of q.Space that pass q.Filter by cosine
// similarity and returns the best q.Limit, ties broken by id. The ranking
// is approximate beyond the rescored candidates (see ann.go); scores are
// exact.
func (s *EmbeddedStore) Search(ctx context.Context, q Query) ([]Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded search: %w", err)
	}
	qv, err := normalized(q.Space, q.Vector)
	if err != nil {
		return nil, fmt.Errorf("embedded search: %w", err)
	}
	if q.Limit <= 0 || len(q.Filter.Any) == 0 {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errStoreClosed
	}
	idx := s.spaces[q.Space]
	if idx == nil {
		return nil, nil
	}
	if idx.ann == nil {
		// first dense query of this space: build its index under the
		// write lock, then search under the read lock again.
		s.mu.RUnlock()
		err := s.buildIndex(q.Space)
		s.mu.RLock()
		if err != nil {
			return nil, fmt.Errorf("embedded search: %w", err)
		}
		if s.closed {
			return nil, errStoreClosed
		}
		if idx = s.spaces[q.Space]; idx == nil {
			return nil, nil
		}
		if idx.ann == nil { // emptied and refilled meanwhile: exact scan
			return s.searchExact(idx, qv, q)
		}
	}
	return s.searchANN(idx, qv, q)
}

// WarmDenseIndex builds the approximate index of space now instead of on
// its first search (a server with dense search on can call it at start).
// Writes and searches wait while it reads the vectors from disk.
func (s *EmbeddedStore) WarmDenseIndex(ctx context.Context, space Space) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded dense index: %w", err)
	}
	return s.buildIndex(space)
}

// buildIndex builds the approximate index of space if it is not built.
func (s *EmbeddedStore) buildIndex(space Space) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	idx := s.spaces[space]
	if idx == nil || idx.ann != nil {
		return nil
	}
	start := time.Now()
	if err := s.buildANNLocked(idx); err != nil {
		return err
	}
	level := slog.LevelDebug
	if time.Since(start) > 100*time.Millisecond {
		level = slog.LevelInfo
	}
	slog.Log(context.Background(), level, "vectorstore: built the dense index of a space", "space", space.String(),
		"vectors", len(idx.ids), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// searchExact ranks every match by its float32 vector read from disk; the
// caller holds the read lock.
func (s *EmbeddedStore) searchExact(idx *spaceIndex, qv []float32, q Query) ([]Hit, error) {
	buf := make([]byte, 4*idx.dims)
	v := make([]float32, idx.dims)
	h := make(hitHeap, 0, q.Limit)
	for i, m := range idx.metas {
		if !q.Filter.Matches(m) {
			continue
		}
		if err := s.readVector(idx.offs[i], buf, v); err != nil {
			return nil, fmt.Errorf("embedded search: %w", err)
		}
		c := scored{score: dot(qv, v), id: idx.ids[i]}
		if len(h) < q.Limit {
			heap.Push(&h, c)
		} else if worse(h[0], c) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	sort.Slice(h, func(i, j int) bool { return worse(h[j], h[i]) })
	hits := make([]Hit, len(h))
	for i, c := range h {
		hits[i] = Hit{ID: c.id, Score: float64(c.score)}
	}
	return hits, nil
}

// readVector reads the float32 vector at off of the log into v, using buf
// (4*len(v) bytes). Reads go through pread, safe beside appends.
func (s *EmbeddedStore) readVector(off int64, buf []byte, v []float32) error {
	if _, err := s.f.ReadAt(buf, off); err != nil {
		return fmt.Errorf("read vector at offset %d: %w", off, err)
	}
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[i*4:]))
	}
	return nil
}

func (s *EmbeddedStore) hasLocked(id string) bool {
	for _, idx := range s.spaces {
		if _, ok := idx.pos[id]; ok {
			return true
		}
	}
	return false
}

// writeLocked appends one record to the log, fsyncs it and returns the
// offset of its payload in the log.
func (s *EmbeddedStore) writeLocked(payload []byte) (int64, error) {
	if s.closed {
		return 0, errStoreClosed
	}
	if len(payload) > maxRecord {
		return 0, fmt.Errorf("record of %d bytes is too large; upsert fewer items at once", len(payload))
	}
	rec := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(rec[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(payload, crcTable))
	rec = append(rec, payload...)
	off, err := s.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("write log: %w", err)
	}
	if _, err := s.f.Write(rec); err != nil {
		// drop the partial record so the log stays well formed.
		_ = s.f.Truncate(off)
		_, _ = s.f.Seek(off, io.SeekStart)
		return 0, fmt.Errorf("write log: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		_ = s.f.Truncate(off)
		_, _ = s.f.Seek(off, io.SeekStart)
		return 0, fmt.Errorf("sync log: %w", err)
	}
	return off + 8, nil
}

// maybeCompactLocked rewrites the log when it is mostly garbage. A failure
// is only logged: the log is still complete and the next write retries.
func (s *EmbeddedStore) maybeCompactLocked() {
	if !s.needsCompaction() {
		return
	}
	if err := s.rewrite(); err != nil {
		slog.Warn("vectorstore: compacting the embedded store log failed", "path", s.path, "err", err)
	}
}

// rewrite writes the live state to a temporary file, fsyncs it, renames it
// over the log and continues appending to it.
func (s *EmbeddedStore) rewrite() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteString(logMagic); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	pos := int64(len(logMagic))    // offset in the new file
	newOffs := map[Space][]int64{} // applied once the new file is in place
	spaces := make([]Space, 0, len(s.spaces))
	for sp := range s.spaces {
		spaces = append(spaces, sp)
	}
	sort.Slice(spaces, func(i, j int) bool { return spaces[i].String() < spaces[j].String() })
	const chunk = 256 // items per record (vectors are copied through memory)
	for _, sp := range spaces {
		idx := s.spaces[sp]
		offs := make([]int64, len(idx.ids))
		newOffs[sp] = offs
		for lo := 0; lo < len(idx.ids); lo += chunk {
			hi := min(lo+chunk, len(idx.ids))
			e := encoder{}
			e.byte(opUpsert)
			e.str(sp.Embedder)
			e.str(sp.Model)
			e.uvarint(uint64(sp.Dims))
			e.uvarint(uint64(hi - lo))
			for i := lo; i < hi; i++ {
				e.str(idx.ids[i])
				e.meta(idx.metas[i])
				offs[i] = pos + 8 + int64(len(e.b))
				n := len(e.b)
				e.b = slices.Grow(e.b, 4*idx.dims)[:n+4*idx.dims]
				if _, err := s.f.ReadAt(e.b[n:], idx.offs[i]); err != nil {
					return fmt.Errorf("compact: read vector: %w", err)
				}
			}
			pos += 8 + int64(len(e.b))
			var hdr [8]byte
			binary.LittleEndian.PutUint32(hdr[:4], uint32(len(e.b)))
			binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(e.b, crcTable))
			if _, err := w.Write(hdr[:]); err != nil {
				return fmt.Errorf("compact: %w", err)
			}
			if _, err := w.Write(e.b); err != nil {
				return fmt.Errorf("compact: %w", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	ok = true
	syncDir(filepath.Dir(s.path))
	if s.f != nil {
		s.f.Close()
	}
	s.f = f // positioned at its end
	for sp, offs := range newOffs {
		s.spaces[sp].offs = offs
	}
	s.garbage = 0
	return nil
}

// syncDir makes a rename durable; errors are ignored because some
// platforms cannot fsync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// cleanMeta copies the slices (so callers may reuse theirs) and trims times
// to microseconds.
func cleanMeta(m Meta) Meta {
	m.SharedUsers = append([]string(nil), m.SharedUsers...)
	m.SharedGroups = append([]string(nil), m.SharedGroups...)
	m.ExpiresAt = trimTime(m.ExpiresAt)
	m.CreatedAt = trimTime(m.CreatedAt)
	return m
}

// trimTime truncates t to microseconds (PostgreSQL's precision); zero stays
// zero.
func trimTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond)
}

// normalized checks v against space and returns an L2-normalised copy.
func normalized(space Space, v []float32) ([]float32, error) {
	if len(v) != space.Dims {
		return nil, fmt.Errorf("vector has %d dims, space %s needs %d: %w", len(v), space, space.Dims, ErrSpaceMismatch)
	}
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return nil, errors.New("vector is zero or not finite")
	}
	inv := 1 / math.Sqrt(sum)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out, nil
}

// Dot is the store's float32 inner product of two equally long vectors
// (the exact score its dense search ranks by; benchmarks compare against it).
func Dot(a, b []float32) float32 { return dot(a, b) }

// dot is the inner product of two equally long vectors.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

type scored struct {
	score float32
	id    string
	slot  int // the item's slot in its spaceIndex (approximate search)
}

// worse orders candidates: lower score first, then higher id.
func worse(a, b scored) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.id > b.id
}

// hitHeap is a min-heap on worse, so its root is the weakest kept hit.
type hitHeap []scored

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// encoder builds a record payload.
type encoder struct{ b []byte }

func (e *encoder) byte(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) strs(list []string) {
	e.uvarint(uint64(len(list)))
	for _, s := range list {
		e.str(s)
	}
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.byte(0)
		return
	}
	e.byte(1)
	e.b = binary.AppendVarint(e.b, t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

func (e *encoder) meta(m Meta) {
	e.str(m.OwnerID)
	e.str(m.Permission)
	e.strs(m.SharedUsers)
	e.strs(m.SharedGroups)
	e.time(m.ExpiresAt)
	e.time(m.CreatedAt)
}

func (e *encoder) floats(v []float32) {
	e.b = slices.Grow(e.b, 4*len(v))
	for _, x := range v {
		e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(x))
	}
}

// decoder reads a record payload; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errShortRecord = errors.New("short record")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShortRecord
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.bytes(d.uvarint())) }

func (d *decoder) strs() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errShortRecord
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) time() time.Time {
	flag := d.bytes(1)
	if d.err != nil || flag[0] == 0 {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) meta() Meta {
	var m Meta
	m.OwnerID = d.str()
	m.Permission = d.str()
	m.SharedUsers = d.strs()
	m.SharedGroups = d.strs()
	m.ExpiresAt = d.time()
	m.CreatedAt = d.time()
	return m
}

// ErrStoreLocked means another process has the embedded store open.
var ErrStoreLocked = errors.New("embedded vector store is in use by another process (stop the running picard first)")

// lockFile takes an exclusive, non-blocking flock on path.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open embedded vector store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrStoreLocked, path)
		}
		return nil, fmt.Errorf("lock embedded vector store: %w", err)
	}
	return f, nil
}
