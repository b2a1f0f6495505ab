package storage

import (
	"context"
	"errors"
	"io"
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

// CheckKey reports whether key is a key every backend accepts: non-empty,
// slash-separated, relative, without empty, "." or ".." segments, without a
// trailing slash or NUL bytes. Such a key cannot name anything outside the
// store's root.
func CheckKey(key string) error { return keys.Check(key) }
