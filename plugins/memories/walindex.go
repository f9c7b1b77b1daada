package memories

import "time"

// walHeaderBytes is the part of a WAL index (the -shm file beside a
// database in WAL mode) that SQLite rewrites at every commit, by any
// connection of any process: the index header, twice (48 bytes each; a
// writer updates the second copy, then the first). Its frame count and
// checksums change with every commit, its salts with every restart of the
// log, so a header unchanged since a moment means no commit since then.
const walHeaderBytes = 96

// walRetry is how often a WAL index that could not be mapped is tried again.
const walRetry = time.Second

type fileID struct{ dev, ino uint64 }

// walIndex is a read-only view of a database's WAL index header.
type walIndex struct {
	path string
	mem  []byte
	id   fileID
}

// openWALIndex maps the WAL index at path; nil when it cannot be.
func openWALIndex(path string) *walIndex {
	mem, id, ok := mapWALIndex(path)
	if !ok {
		return nil
	}
	return &walIndex{path: path, mem: mem, id: id}
}

// header copies the header as it is now; ok is false when path no longer
// names the file mapped (the database was closed and its WAL index
// removed, or it left WAL mode).
func (w *walIndex) header() (h [walHeaderBytes]byte, ok bool) {
	if id, ok := statWALIndex(w.path); !ok || id != w.id {
		return h, false
	}
	copy(h[:], w.mem)
	return h, true
}

func (w *walIndex) close() { unmapWALIndex(w.mem) }
