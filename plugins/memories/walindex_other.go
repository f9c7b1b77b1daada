//go:build !unix

package memories

func mapWALIndex(string) ([]byte, fileID, bool) { return nil, fileID{}, false }

func unmapWALIndex([]byte) {}

func statWALIndex(string) (fileID, bool) { return fileID{}, false }
