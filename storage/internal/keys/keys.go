// Package keys validates object keys the same way in every backend, so a key
// that one backend accepts is never refused (or silently rewritten) by another.
package keys

import (
	"fmt"
	"strings"
)

// Check reports whether key is a valid object key: non-empty, slash-separated,
// relative (no leading slash), without empty, "." or ".." segments, without a
// trailing slash, and without NUL bytes. Those rules keep a key from escaping
// a local root directory and make it mean the same object on every backend.
func Check(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("invalid key %q: empty", key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("invalid key %q: starts with a slash (keys are relative to the store's root)", key)
	case strings.HasSuffix(key, "/"):
		return fmt.Errorf("invalid key %q: ends with a slash", key)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("invalid key %q: contains a NUL byte", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("invalid key %q: empty path segment", key)
		case ".", "..":
			return fmt.Errorf("invalid key %q: %q path segment", key, seg)
		}
	}
	return nil
}
