package memories

import (
	"os"
	"time"
)

// walHeaderBytes is the part of a WAL index (the -shm file beside a
// database in WAL mode) that SQLite rewrites at every commit, by any
// connection of any process: the index header, twice (48 bytes each; a
// writer updates the second copy, then the first). Its frame count and
// checksums change with every commit, its salts with every restart of the
// log, so a header unchanged since a moment means no commit since then.
const walHeaderBytes = 96

// walRetry is how often a WAL index that could not be opened is tried again.
const walRetry = time.Second

type fileID struct{ dev, ino uint64 }

// walIndex reads a database's WAL index header.
type walIndex struct {
	path string
	f    *os.File
	id   fileID
}

// openWALIndex opens the WAL index at path; nil when it cannot be.
func openWALIndex(path string) *walIndex {
	f, id, ok := openWALIndexFile(path)
	if !ok {
		return nil
	}
	return &walIndex{path: path, f: f, id: id}
}

// header reads the header as it is now; ok is false when path no longer
// names the file opened (the database was closed and its WAL index
// removed, or it left WAL mode) or the file is shorter than a header.
func (w *walIndex) header() (h [walHeaderBytes]byte, ok bool) {
	if id, ok := statWALIndex(w.path); !ok || id != w.id {
		return h, false
	}
	if n, err := w.f.ReadAt(h[:], 0); err != nil || n != walHeaderBytes {
		return h, false
	}
	return h, true
}

func (w *walIndex) close() { _ = w.f.Close() }
