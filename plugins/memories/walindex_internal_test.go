//go:build unix

package memories

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWALIndexNoticesReplacement: once the WAL index opened is no longer
// the database's (removed when the database closed and made again, a file
// renamed over it, its directory moved away), its header is not read as
// the database's, so the version probe asks SQLite instead of trusting
// a header that no commit will change again.
func TestWALIndexNoticesReplacement(t *testing.T) {
	write := func(path string, fill byte) {
		t.Helper()
		if err := os.WriteFile(path, bytes.Repeat([]byte{fill}, 2*walHeaderBytes), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	open := func(path string, fill byte) *walIndex {
		t.Helper()
		w := openWALIndex(path)
		if w == nil {
			t.Fatal("cannot open the WAL index")
		}
		t.Cleanup(w.close)
		if h, ok := w.header(); !ok || h[0] != fill {
			t.Fatalf("header of a fresh file: ok=%v first byte %d, want %d", ok, h[0], fill)
		}
		return w
	}

	t.Run("removed and made again", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data.db-shm")
		write(path, 1)
		w := open(path, 1)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		write(path, 2)
		if _, ok := w.header(); ok {
			t.Fatal("the removed WAL index's header was still read")
		}
		open(path, 2)
	})

	t.Run("renamed over", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "data.db-shm")
		write(path, 1)
		w := open(path, 1)
		write(filepath.Join(dir, "new"), 3)
		if err := os.Rename(filepath.Join(dir, "new"), path); err != nil {
			t.Fatal(err)
		}
		if _, ok := w.header(); ok {
			t.Fatal("the header of the file renamed over was still read")
		}
	})

	t.Run("directory moved", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "pb_data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "data.db-shm")
		write(path, 1)
		w := open(path, 1)
		if err := os.Rename(dir, filepath.Join(root, "old")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		write(path, 4)
		w.checked = time.Now().Add(-walPathCheckEvery) // the path is due for a look-up
		if _, ok := w.header(); ok {
			t.Fatal("the moved WAL index's header was still read after the path check was due")
		}
	})

	t.Run("unchanged", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data.db-shm")
		write(path, 5)
		w := open(path, 5)
		w.checked = time.Now().Add(-walPathCheckEvery)
		for range 3 {
			if h, ok := w.header(); !ok || h[0] != 5 {
				t.Fatalf("the same file: ok=%v first byte %d", ok, h[0])
			}
		}
	})
}
