package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/protolake/protolake/storage/internal/keys"
)

// ErrNotExist is returned (wrapped) when a key does not exist.
var ErrNotExist = errors.New("object does not exist")

// ErrExist is returned (wrapped) by PutIfAbsent when the key already exists.
var ErrExist = errors.New("object already exists")

// ErrAmbiguous is returned (wrapped) by PutIfAbsent when the outcome is
// unknown: the object may or may not have been written by this call.
var ErrAmbiguous = errors.New("outcome of conditional write is unknown")

// Object describes one stored object as returned by List.
type Object struct {
	// Key is the object's key relative to the store's root.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is the time the object was last written.
	ModTime time.Time
}

// Store is the contract every backend implements. See the package
// documentation for the guarantees.
type Store interface {
	// Get opens the object at key for reading.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Put writes the object at key, replacing any existing object.
	Put(ctx context.Context, key string, r io.Reader) error
	// PutIfAbsent writes the object at key only if no object exists there.
	PutIfAbsent(ctx context.Context, key string, r io.Reader) error
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object at key; deleting an absent key succeeds.
	Delete(ctx context.Context, key string) error
}

// PageLister is implemented by stores that can list one directory a page
// at a time, in key order, starting after a given key, so that a caller that
// needs only the first keys of a large directory (log cleanup reads only the
// expired head of _delta_log) does not read all of it: storage/s3
// (ListObjectsV2 with StartAfter), storage/hdfs (the namenode's getListing
// with startAfter) and storage/mem. A local directory cannot be read in key
// order, so storage/local does not implement it. Wrappers (storage/faulty,
// storage/deadline) pass the call on and return an error wrapping
// errors.ErrUnsupported when the store they wrap does not implement it.
type PageLister interface {
	// ListPage returns, sorted by key, at most limit (>= 1) objects whose
	// keys start with prefix, sort after startAfter ("" for no lower bound)
	// and lie directly in the prefix's directory (no "/" after the last "/"
	// of prefix; keys below a subdirectory are not returned). Fewer than
	// limit objects means there are no more. Order and startAfter are byte
	// order for ASCII names (all of a Delta log's are); names with bytes
	// >= 0x80 may come in the store's own order (the HDFS namenode
	// compares names as signed Java bytes, so "é" sorts before "A").
	ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]Object, error)
}

// Statter is implemented by stores that can describe one object by its key
// without listing or reading it (storage/local, storage/mem; wrappers pass
// the call on, or return an error wrapping errors.ErrUnsupported).
type Statter interface {
	// Stat returns the object at key with its Size and ModTime, or
	// ErrNotExist (wrapped) when there is none.
	Stat(ctx context.Context, key string) (Object, error)
}

// InDir reports whether key is one ListPage(prefix, ...) can return: it
// starts with prefix and has no "/" after the last "/" of prefix.
func InDir(key, prefix string) bool {
	rest, ok := strings.CutPrefix(key, prefix)
	return ok && !strings.Contains(rest, "/")
}

// CheckKey reports whether key is a key every backend accepts: non-empty,
// slash-separated, relative, without empty, "." or ".." segments, without a
// trailing slash or NUL bytes. Such a key cannot name anything outside the
// store's root.
func CheckKey(key string) error { return keys.Check(key) }
