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

// walPathCheckEvery is how often header looks up the WAL index's path to
// check that it still names the file opened; in between it only asks the
// open file whether it is still linked (see header).
const walPathCheckEvery = 250 * time.Millisecond

type fileID struct{ dev, ino uint64 }

// walIndex reads a database's WAL index header.
type walIndex struct {
	path    string
	f       *os.File
	id      fileID
	checked time.Time // the path last named f
}

// openWALIndex opens the WAL index at path; nil when it cannot be.
func openWALIndex(path string) *walIndex {
	f, id, ok := openWALIndexFile(path)
	if !ok {
		return nil
	}
	return &walIndex{path: path, f: f, id: id, checked: time.Now()}
}

// header reads the header as it is now; ok is false when the file opened
// is no longer the database's WAL index (the database was closed and its
// WAL index removed, or it left WAL mode) or is shorter than a header.
//
// SQLite unlinks the WAL index when the last connection closes the
// database or it leaves WAL mode, and the next open makes a new file; a
// file renamed over the path unlinks the old one too. So an fstat of the
// open file saying it has no link left is what a replaced index looks
// like, and it is checked on every read; a path lookup (stat of the path,
// ~4 µs, 3.7% of a get_memories call's CPU when it ran on every read) runs
// at most every walPathCheckEvery, for a directory moved with the file in
// it.
func (w *walIndex) header() (h [walHeaderBytes]byte, ok bool) {
	if !walIndexLinked(w.f) {
		return h, false
	}
	if now := time.Now(); now.Sub(w.checked) >= walPathCheckEvery {
		if id, ok := statWALIndex(w.path); !ok || id != w.id {
			return h, false
		}
		w.checked = now
	}
	if n, err := w.f.ReadAt(h[:], 0); err != nil || n != walHeaderBytes {
		return h, false
	}
	return h, true
}

func (w *walIndex) close() { _ = w.f.Close() }
