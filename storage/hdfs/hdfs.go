package hdfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/colinmarc/hdfs/v2"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/internal/ctxio"
	"github.com/protolake/protolake/storage/internal/keys"
	"github.com/protolake/protolake/storage/internal/statobj"
)

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.PageLister = (*Store)(nil)
	_ storage.Statter    = (*Store)(nil)
)

// DefaultPort is the namenode RPC port used when a URL names none.
const DefaultPort = 8020

// tempPrefix marks temporary files, which List skips.
const tempPrefix = ".protolake-tmp-"

// Config configures a Store.
type Config struct {
	// Addresses are the namenode RPC addresses (host:port); several for an
	// HA pair, tried in order. Required.
	Addresses []string
	// Root is the absolute HDFS path of the store's root directory, such as
	// "/lake/events". Required. It is created if missing.
	Root string
	// User is the HDFS user for simple authentication. Default:
	// HADOOP_USER_NAME, else the current OS user.
	User string
	// UseDatanodeHostname connects to datanodes by hostname instead of IP
	// address (dfs.client.use.datanode.hostname). Default false.
	UseDatanodeHostname bool
	// DialTimeout bounds connecting to a namenode or datanode. Default 10s.
	DialTimeout time.Duration
}

// Validate reports whether c can be used to build a Store.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addresses) == 0 {
		errs = append(errs, errors.New("at least one namenode address is required"))
	}
	for _, a := range c.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("namenode address %q: want host:port", a))
		}
	}
	if !strings.HasPrefix(c.Root, "/") {
		errs = append(errs, fmt.Errorf("root %q must be an absolute path", c.Root))
	} else if c.Root != "/" && path.Clean(c.Root) != c.Root {
		errs = append(errs, fmt.Errorf("root %q is not a clean path", c.Root))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial timeout %v is negative", c.DialTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hdfs config: %w", err)
	}
	return nil
}

// ParseURL parses "hdfs://host[:port]/path" (port default 8020) into a
// Config. Query parameters: user=NAME, datanode_hostname=true. Several
// namenodes of an HA pair are given as host1:port1,host2:port2. The result
// is validated.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return Config{}, fmt.Errorf("parse hdfs url: %w", err)
	}
	if u.Scheme != "hdfs" {
		return Config{}, fmt.Errorf("parse hdfs url: scheme is %q, want hdfs", u.Scheme)
	}
	if u.Host == "" {
		return Config{}, errors.New("parse hdfs url: no namenode host (want hdfs://namenode:port/path)")
	}
	var c Config
	for _, h := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, strconv.Itoa(DefaultPort))
		}
		c.Addresses = append(c.Addresses, h)
	}
	c.Root = path.Clean("/" + u.Path)
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "user":
			c.User = v
		case "datanode_hostname":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("parse hdfs url: datanode_hostname=%q is not a boolean", v)
			}
			c.UseDatanodeHostname = b
		default:
			return Config{}, fmt.Errorf("parse hdfs url: unknown parameter %q (known: user, datanode_hostname)", k)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("parse hdfs url: %w", err)
	}
	return c, nil
}

// Store is a storage.Store rooted at an HDFS directory. It is safe for
// concurrent use. Close it when done.
type Store struct {
	client *hdfs.Client
	rpc    *namenodeRPC
	root   string
}

// New connects to the namenode and returns a store rooted at cfg.Root,
// creating the directory if needed.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	userName := cfg.User
	if userName == "" {
		userName = os.Getenv("HADOOP_USER_NAME")
	}
	if userName == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("hdfs store %s: no user given and the OS user is unknown: %w", cfg.Root, err)
		}
		userName = u.Username
	}
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: timeout}
	client, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses:           cfg.Addresses,
		User:                userName,
		UseDatanodeHostname: cfg.UseDatanodeHostname,
		NamenodeDialFunc:    dialer.DialContext,
		DatanodeDialFunc:    dialer.DialContext,
	})
	if err != nil {
		return nil, fmt.Errorf("hdfs store %s: connect to %s: %w", cfg.Root, strings.Join(cfg.Addresses, ","), err)
	}
	if err := client.MkdirAll(cfg.Root, 0o755); err != nil {
		client.Close()
		return nil, fmt.Errorf("hdfs store %s: create root: %w", cfg.Root, err)
	}
	return &Store{
		client: client,
		rpc:    newNamenodeRPC(cfg.Addresses, userName, dialer.DialContext),
		root:   cfg.Root,
	}, nil
}

// Close closes the connection to the namenode.
func (s *Store) Close() error { return s.client.Close() }

func (s *Store) path(key string) string { return path.Join(s.root, key) }

func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return keys.Check(key)
}

// notExist reports errors that mean "no such object". HDFS answers a path
// below a regular file with ParentNotDirectoryException or
// FileNotFoundException depending on the call.
func notExist(err error) bool {
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	var he hdfs.Error
	return errors.As(err, &he) && strings.HasSuffix(he.Exception(), "ParentNotDirectoryException")
}

// Get opens the file for key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := s.client.Open(s.path(key))
	if err != nil {
		if notExist(err) {
			return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if f.Stat().IsDir() {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return f, nil
}

// Put writes r to a temporary file and renames it over key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := s.writeTemp(ctx, key, r)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.client.Rename(tmp, s.path(key)); err != nil {
		_ = s.client.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutIfAbsent writes r to a temporary file and renames it to key without
// overwriting; see the package documentation.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	tmp, err := s.writeTemp(ctx, key, r)
	if err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	if err := s.renameNoReplace(ctx, tmp, s.path(key)); err != nil {
		return fmt.Errorf("put-if-absent %s: %w", key, err)
	}
	return nil
}

func (s *Store) renameNoReplace(ctx context.Context, tmp, target string) error {
	if err := ctx.Err(); err != nil {
		_ = s.client.Remove(tmp)
		return err
	}
	err := s.rpc.rename2(ctx, tmp, target)
	if err == nil {
		return nil
	}
	var re *remoteError
	if errors.As(err, &re) {
		// The namenode answered: the rename did not happen.
		_ = s.client.Remove(tmp)
		if re.exception == exceptionFileAlreadyExists {
			if fi, serr := s.client.Stat(target); serr == nil && fi.IsDir() {
				return fmt.Errorf("%s is a directory", target)
			}
			return storage.ErrExist
		}
		return err
	}
	var te *transportError
	if errors.As(err, &te) && !te.sent {
		_ = s.client.Remove(tmp)
		return err
	}
	// The request may have been processed. Settle it by deleting the
	// temporary file: if it was still there, the rename did not happen and
	// now never will; if it was gone, the rename happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	existed, derr := s.rpc.delete(rctx, tmp)
	switch {
	case derr != nil:
		return fmt.Errorf("%w: rename %s: %w (and the temporary file could not be checked: %v)", storage.ErrAmbiguous, path.Base(target), err, derr)
	case existed:
		return err // not renamed: a plain, retryable failure
	default:
		return nil // renamed: our content is in place
	}
}

// writeTemp writes r to a new temporary file in key's directory and returns
// its path. On failure the temporary file is removed.
func (s *Store) writeTemp(ctx context.Context, key string, r io.Reader) (string, error) {
	dir := path.Dir(s.path(key))
	if err := s.client.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
	w, err := s.client.Create(tmp)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(w, ctxio.Reader(ctx, r))
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = closeWriter(ctx, w)
	} else {
		_ = w.Close()
	}
	if err != nil {
		_ = s.client.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// closeWriter completes the file, retrying while the namenode waits for the
// last block to reach its minimal replication, as the Java client does.
func closeWriter(ctx context.Context, w *hdfs.FileWriter) error {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := w.Close()
		if err == nil || !hdfs.IsErrReplicating(err) || attempt == 8 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// List returns the regular files under the store's root whose keys start
// with prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	base := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
	}
	if base != "" {
		fi, err := s.client.Stat(s.path(base))
		if err != nil && !notExist(err) {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		if err != nil || !fi.IsDir() {
			return []storage.Object{}, nil
		}
	}
	var out []storage.Object
	if err := s.walk(ctx, base, prefix, &out); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// walk appends the matching files below the directory dirKey ("" for the
// root), descending only into directories that can hold matches.
func (s *Store) walk(ctx context.Context, dirKey, prefix string, out *[]storage.Object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.root
	if dirKey != "" {
		dir = s.path(dirKey)
	}
	entries, err := s.client.ReadDir(dir)
	if err != nil {
		if notExist(err) { // deleted while we walked
			return nil
		}
		return err
	}
	for _, e := range entries {
		key := e.Name()
		if dirKey != "" {
			key = dirKey + "/" + e.Name()
		}
		if e.IsDir() {
			sub := key + "/"
			if strings.HasPrefix(sub, prefix) || strings.HasPrefix(prefix, sub) {
				if err := s.walk(ctx, key, prefix, out); err != nil {
					return err
				}
			}
			continue
		}
		if !e.Mode().IsRegular() || strings.HasPrefix(e.Name(), tempPrefix) || !strings.HasPrefix(key, prefix) {
			continue
		}
		*out = append(*out, storage.Object{Key: key, Size: e.Size(), ModTime: e.ModTime()})
	}
	return nil
}

// ListPage reads the prefix's directory with the namenode's getListing,
// starting after startAfter (or just before the names with the prefix), one
// batch after another until it has limit objects or passes the prefix. The
// namenode keeps a directory's names in byte order, so the pages come sorted.
func (s *Store) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list page %q: %w", prefix, err)
	}
	if limit < 1 {
		return nil, fmt.Errorf("list page %q: limit %d, want >= 1", prefix, limit)
	}
	dirKey, namePrefix := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey, namePrefix = prefix[:i], prefix[i+1:]
	}
	dir := s.root
	dirPrefix := ""
	if dirKey != "" {
		dir, dirPrefix = s.path(dirKey), dirKey+"/"
	}
	start := startName(namePrefix)
	if startAfter != "" {
		switch rest, ok := strings.CutPrefix(startAfter, dirPrefix); {
		case ok:
			start = max(start, rest)
		case startAfter > dirPrefix:
			return []storage.Object{}, nil // every key of the directory sorts before startAfter
		}
	}
	out := []storage.Object{}
	for len(out) < limit {
		entries, remaining, err := s.rpc.getListing(ctx, dir, start)
		if err != nil {
			return nil, fmt.Errorf("list page %q: %w", prefix, err)
		}
		for _, e := range entries {
			start = e.name
			if !strings.HasPrefix(e.name, namePrefix) {
				if e.name > namePrefix {
					return out, nil // past the prefix
				}
				continue
			}
			if !e.isFile || strings.HasPrefix(e.name, tempPrefix) {
				continue
			}
			out = append(out, storage.Object{Key: dirPrefix + e.name, Size: e.size, ModTime: time.UnixMilli(e.modTime)})
			if len(out) == limit {
				return out, nil
			}
		}
		if remaining == 0 || len(entries) == 0 {
			break
		}
	}
	return out, nil
}

// Stat describes the regular file for key with one namenode getFileInfo.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := check(ctx, key); err != nil {
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := s.client.Stat(s.path(key))
	return statobj.Object(key, fi, err, notExist)
}

// startName is a getListing startAfter that every name with the prefix
// sorts after and (almost) every name before the prefix does not: the
// prefix with its last byte lowered by one and 0xff appended (a byte valid
// UTF-8 names never contain). "" for an empty prefix.
func startName(prefix string) string {
	if prefix == "" || prefix[len(prefix)-1] == 0 {
		return ""
	}
	return prefix[:len(prefix)-1] + string([]byte{prefix[len(prefix)-1] - 1, 0xff})
}

// Delete removes the file for key; a missing key or a directory is not an
// error (a directory is not an object).
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	p := s.path(key)
	fi, err := s.client.Stat(p)
	if err != nil {
		if notExist(err) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil
	}
	if err := s.client.Remove(p); err != nil && !notExist(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}
