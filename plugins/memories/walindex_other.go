//go:build !unix

package memories

import "os"

func openWALIndexFile(string) (*os.File, fileID, bool) { return nil, fileID{}, false }

func statWALIndex(string) (fileID, bool) { return fileID{}, false }

func walIndexLinked(*os.File) bool { return false }
