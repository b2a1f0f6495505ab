// Package statobj turns the answer of a filesystem stat into the result of
// storage.Statter.Stat, the same way for every backend with files.
package statobj

import (
	"fmt"
	"io/fs"

	"github.com/protolake/protolake/storage"
)

// Object returns the object for key from a stat's fi and err: a missing
// path (notExist(err)) and anything but a regular file are
// storage.ErrNotExist.
func Object(key string, fi fs.FileInfo, err error, notExist func(error) bool) (storage.Object, error) {
	if err != nil {
		if notExist(err) {
			return storage.Object{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
		}
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}
