//go:build unix

package memories

import (
	"os"
	"syscall"
)

// mapWALIndex maps the first bytes of path, read only and shared, so what
// SQLite's connections write there is seen at once; ok is false when the
// file cannot be mapped (then the probe always asks SQLite).
func mapWALIndex(path string) (mem []byte, id fileID, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < walHeaderBytes {
		return nil, fileID{}, false
	}
	sys, isUnix := st.Sys().(*syscall.Stat_t)
	if !isUnix {
		return nil, fileID{}, false
	}
	mem, err = syscall.Mmap(int(f.Fd()), 0, walHeaderBytes, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fileID{}, false
	}
	return mem, fileID{dev: uint64(sys.Dev), ino: uint64(sys.Ino)}, true //nolint:unconvert // Dev is not uint64 everywhere
}

func unmapWALIndex(mem []byte) { _ = syscall.Munmap(mem) }

// statWALIndex says which file path names now.
func statWALIndex(path string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // Dev is not uint64 everywhere
}
