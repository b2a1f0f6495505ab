// Package local is a storage.Store on a local (or mounted) filesystem, for
// file:// URLs and bare paths.
//
// Guarantees, on top of the storage package documentation:
//
//   - Put and PutIfAbsent write the content to a temporary file in the
//     target's directory and fsync it before it becomes visible under the key,
//     so a reader never sees a partial object, and a crash leaves either the
//     old state or the whole new object (plus, at worst, a stray temporary
//     file, which List never returns).
//   - PutIfAbsent makes the temporary file visible with link(2), which fails
//     when the target exists, so of many concurrent writers (in this process
//     or any other on the same filesystem) exactly one wins. rename(2) would
//     silently replace the target and is only used by Put.
//   - After a new name appears, its directory is fsynced (and so is every
//     directory that had to be created), so a committed object survives a
//     crash of the machine.
//   - List walks the tree below the root and returns regular files only,
//     sorted by key; directories that exist only as parents are not objects.
//     A directory has no order to read it in, so the store does not offer
//     storage.PageLister; it offers storage.Statter (one lstat per key,
//     through the root like Get), so a caller that knows the names it wants
//     (log cleanup) need not read a large directory.
//   - Nothing outside the root is read, listed, written or deleted: keys
//     cannot contain "." or ".." segments, List does not follow symlinks
//     below its start and refuses a start that resolves outside the root,
//     and Get, Stat, Put, PutIfAbsent and Delete resolve every name through an
//     os.Root, so a symlink (a symlinked partition directory, say) is
//     followed only while it stays below the root; one that leaves it is
//     an error ("path escapes from parent"), never a file created,
//     replaced or removed outside the table.
//
// Temporary files are named ".protolake-tmp-*" and live next to their target.
// Empty directories left behind by Delete are not removed. The filesystem must
// support hard links (every local POSIX filesystem does; some network and FUSE
// filesystems do not, and PutIfAbsent then fails with an error rather than
// falling back to something non-atomic).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/internal/ctxio"
	"github.com/protolake/protolake/storage/internal/keys"
	"github.com/protolake/protolake/storage/internal/statobj"
)

var (
	_ storage.Store   = (*Store)(nil)
	_ storage.Statter = (*Store)(nil)
)

// tempPrefix marks temporary files, which List skips.
const tempPrefix = ".protolake-tmp-"

// Store is a storage.Store rooted at a directory. It is safe for concurrent
// use by many goroutines and processes.
type Store struct {
	root string // absolute, cleaned
}

// New returns a store rooted at dir. It writes nothing: the directory is
// created by the first Put (so opening a table that is never written, e.g.
// when a start-up check fails, leaves nothing behind). A dir that exists
// but is not a directory is an error.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("local store: empty root directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("local store %s: not a directory", dir)
	} else if err != nil && !notExist(err) {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	return &Store{root: abs}, nil
}

// Root returns the absolute directory the store is rooted at.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Get opens the file for key. A missing key, a key that names a directory and a
// key below a regular file all report storage.ErrNotExist. A symlink on the
// way is followed only if it resolves below the root; one that leaves it is
// an error ("path escapes from parent").
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	// OpenInRoot follows a symlink only while it stays below the root: a
	// link out of the table is not part of it.
	f, err := os.OpenInRoot(s.root, filepath.FromSlash(key))
	if err != nil {
		if notExist(err) {
			return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return f, nil
}

// Put writes r to a temporary file and renames it over key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := s.put(ctx, key, r, false); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutIfAbsent writes r to a temporary file and hard-links it to key, failing
// with storage.ErrExist if key exists.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := s.put(ctx, key, r, true); err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, exclusive bool) (err error) {
	if err := check(ctx, key); err != nil {
		return err
	}
	root, err := s.openRoot(true)
	if err != nil {
		return err
	}
	defer root.Close()
	// Every name below is resolved through root: a symlinked directory on
	// the way is followed only while it stays below the root, so nothing
	// is created, linked or renamed outside the table.
	target := filepath.FromSlash(key)
	dir := filepath.Dir(target)
	if err := mkdirAll(root, dir); err != nil {
		return err
	}
	tmp, tmpName, err := createTemp(root, dir)
	if err != nil {
		return err
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		// After a link the temporary name is a second name of the object;
		// after a rename it no longer exists. Either way remove it.
		if rmErr := root.Remove(tmpName); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = rmErr
		}
	}()
	if _, err := io.Copy(tmp, ctxio.Reader(ctx, r)); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		tmp = nil
		return err
	}
	tmp = nil
	if exclusive {
		if err := root.Link(tmpName, target); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := root.Lstat(target); serr == nil && fi.IsDir() {
					return fmt.Errorf("%s is a directory", s.path(key))
				}
				return storage.ErrExist
			}
			return err
		}
	} else if err := root.Rename(tmpName, target); err != nil {
		return err
	}
	return syncDir(root, dir)
}

// openRoot opens the store's root directory; with create it first creates
// a missing root (and fsyncs its parent).
func (s *Store) openRoot(create bool) (*os.Root, error) {
	if create {
		if _, err := os.Stat(s.root); notExist(err) {
			if err := os.MkdirAll(s.root, 0o755); err != nil {
				return nil, err
			}
			d, err := os.Open(filepath.Dir(s.root))
			if err != nil {
				return nil, err
			}
			err = d.Sync()
			if cerr := d.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return os.OpenRoot(s.root)
}

// createTemp creates a new temporary file in dir below root, as
// os.CreateTemp does (mode 0600, a random name that did not exist).
func createTemp(root *os.Root, dir string) (*os.File, string, error) {
	for range 10000 {
		name := filepath.Join(dir, tempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("create a temporary file in %s: too many names taken", dir)
}

// mkdirAll creates dir and its missing parents below root, fsyncing the
// parent of every directory it creates so the new names are durable.
func mkdirAll(root *os.Root, dir string) error {
	if fi, err := root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", filepath.Join(root.Name(), dir))
		}
		return nil
	}
	if dir == "." {
		return nil
	}
	cur := ""
	for _, seg := range strings.Split(dir, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, seg)
		err := root.Mkdir(cur, 0o755)
		if err == nil {
			if parent == "" {
				parent = "."
			}
			if err := syncDir(root, parent); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// List walks only the directories that can contain keys with prefix, so
// listing one table's _delta_log does not walk its data files.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	// The deepest directory every matching key is under.
	base := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
	}
	start := s.root
	if base != "" {
		start = filepath.Join(s.root, filepath.FromSlash(base))
		// The walk below follows no symlink, but the start's own parents
		// are resolved by the kernel: refuse a start that resolves
		// outside the root (a symlinked directory leaving it).
		if err := s.checkInRoot(filepath.FromSlash(base)); notExist(err) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
	}
	var out []storage.Object
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && notExist(err) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p == start {
				return nil
			}
			// Descend only if keys below this directory can match.
			dirKey := key + "/"
			if !strings.HasPrefix(dirKey, prefix) && !strings.HasPrefix(prefix, dirKey) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tempPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if notExist(err) { // deleted while we walked
				return nil
			}
			return err
		}
		out = append(out, storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	// Walk order is per directory, which is not key order: "a/b" would come
	// before "a-b" because the directory "a" sorts first.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// checkInRoot reports an error when name does not resolve below the root.
func (s *Store) checkInRoot(name string) error {
	root, err := s.openRoot(false)
	if err != nil {
		return err
	}
	defer root.Close()
	_, err = root.Stat(name)
	return err
}

// Stat describes the regular file for key with one lstat(2) through the
// root, without reading its directory. A symlink on the way is followed
// only while it stays below the root; the key itself is not followed: a
// key that names a symlink, a directory or nothing is storage.ErrNotExist.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := check(ctx, key); err != nil {
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, err)
	}
	root, err := s.openRoot(false)
	if err != nil {
		return statobj.Object(key, nil, err, notExist)
	}
	defer root.Close()
	fi, err := root.Lstat(filepath.FromSlash(key))
	return statobj.Object(key, fi, err, notExist)
}

// Delete removes the file for key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	root, err := s.openRoot(false)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	defer root.Close()
	// Through root: a key below a symlinked directory that leaves the
	// root is an error, not a file removed outside the table.
	p := filepath.FromSlash(key)
	if fi, err := root.Lstat(p); err == nil && fi.IsDir() {
		return nil // a directory is not an object
	}
	if err := root.Remove(p); err != nil && !notExist(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return keys.Check(key)
}

// notExist reports errors that mean "no such object": a missing path, or a
// path whose parent is a regular file.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
