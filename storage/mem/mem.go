// Package mem is an in-memory storage.Store for unit tests (URL scheme
// mem://).
//
// Guarantees: everything in the storage package documentation. Objects are
// kept in a map guarded by one mutex, so Put and PutIfAbsent are atomic with
// respect to each other and to readers; a reader opened by Get keeps seeing the
// content it opened even if the key is overwritten or deleted afterwards.
// Nothing is persisted: the data lives as long as the Store value.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/internal/ctxio"
	"github.com/protolake/protolake/storage/internal/keys"
)

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.PageLister = (*Store)(nil)
	_ storage.Statter    = (*Store)(nil)
)

type object struct {
	data    []byte // never modified after it is stored
	modTime time.Time
}

// Store is an in-memory storage.Store. The zero value is not usable; call New.
// It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	objects map[string]object
}

// New returns an empty in-memory store.
func New() *Store {
	return &Store{objects: make(map[string]object)}
}

// Get returns a reader over the object's content at the time of the call.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(o.data)), nil
}

// Put reads r to the end and then stores its content under key, replacing any
// existing object. If reading fails, nothing is stored.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	data, err := read(ctx, key, r)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	s.mu.Lock()
	s.objects[key] = object{data: data, modTime: time.Now()}
	s.mu.Unlock()
	return nil
}

// PutIfAbsent reads r to the end and stores its content under key unless an
// object already exists there, in which case it returns storage.ErrExist.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	data, err := read(ctx, key, r)
	if err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; ok {
		return fmt.Errorf("put-if-absent %s: %w", key, storage.ErrExist)
	}
	s.objects[key] = object{data: data, modTime: time.Now()}
	return nil
}

// List returns the objects whose keys start with prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	s.mu.Lock()
	var out []storage.Object
	for k, o := range s.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, storage.Object{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ListPage returns up to limit objects of the prefix's directory after
// startAfter, sorted by key (see storage.PageLister).
func (s *Store) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list page %q: %w", prefix, err)
	}
	if limit < 1 {
		return nil, fmt.Errorf("list page %q: limit %d, want >= 1", prefix, limit)
	}
	s.mu.Lock()
	var out []storage.Object
	for k, o := range s.objects {
		if k > startAfter && storage.InDir(k, prefix) {
			out = append(out, storage.Object{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out[:min(len(out), limit)], nil
}

// Stat describes the object at key.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := check(ctx, key); err != nil {
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, err)
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.Object{Key: key, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// Delete removes the object at key; an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.objects, key)
	s.mu.Unlock()
	return nil
}

func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return keys.Check(key)
}

// read validates key and drains r, giving up when ctx is cancelled.
func read(ctx context.Context, key string, r io.Reader) ([]byte, error) {
	if err := check(ctx, key); err != nil {
		return nil, err
	}
	// A reader that tells its length (the writer's files do, as
	// bytes.Reader does) is read into one buffer of that size: io.ReadAll
	// grows its buffer by doubling, which copied a 13 MB file about twice
	// and allocated twice its size.
	var buf bytes.Buffer
	if l, ok := r.(interface{ Len() int }); ok {
		buf.Grow(l.Len() + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(ctxio.Reader(ctx, r)); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	// A cancellation during the last read is still a cancellation.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return data, nil
}
