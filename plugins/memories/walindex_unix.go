//go:build unix

package memories

import (
	"os"
	"syscall"
)

// openWALIndexFile opens path for reading its header with pread. It is not
// mapped: SQLite truncates a WAL index when a connection finds it
// uninitialised, and reading a mapping past the end of its file kills the
// process (SIGBUS); a read just comes back short.
func openWALIndexFile(path string) (f *os.File, id fileID, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, false
	}
	st, err := f.Stat()
	sys, isUnix := st.Sys().(*syscall.Stat_t)
	if err != nil || !isUnix {
		f.Close()
		return nil, fileID{}, false
	}
	return f, fileID{dev: uint64(sys.Dev), ino: uint64(sys.Ino)}, true //nolint:unconvert // Dev is not uint64 everywhere
}

// statWALIndex says which file path names now.
func statWALIndex(path string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // Dev is not uint64 everywhere
}

// walIndexLinked says whether the open file f still has a directory entry.
func walIndexLinked(f *os.File) bool {
	var st syscall.Stat_t
	// Fstat through the raw descriptor: f.Stat would build an os.FileInfo
	// on every read.
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Nlink > 0
}
