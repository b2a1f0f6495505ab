package deadline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/protolake/protolake/storage"
)

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.PageLister = (*Store)(nil)
	_ storage.Statter    = (*Store)(nil)
)

// ErrTimeout is wrapped by the error of a call that ran out of time.
var ErrTimeout = errors.New("storage request timed out")

// Op names a Store method in a Result.
type Op string

// The Store methods.
const (
	OpGet         Op = "get"
	OpPut         Op = "put"
	OpPutIfAbsent Op = "put_if_absent"
	OpList        Op = "list"
	OpDelete      Op = "delete"
)

// Result describes one finished call.
type Result struct {
	Op  Op
	Key string
	// Duration is how long the call took (for Get, until the body was
	// closed or failed).
	Duration time.Duration
	// Err is the call's error; nil for answers the contract defines
	// (ErrNotExist, ErrExist) and for calls the caller cancelled.
	Err error
}

// Store is a storage.Store whose calls time out. Create it with New.
type Store struct {
	inner    storage.Store
	timeout  time.Duration
	observe  func(Result)
	mu       sync.Mutex
	inflight map[*call]struct{}
}

type call struct{ start time.Time }

// New wraps inner: every call is cancelled after timeout (0: no deadline,
// only observation). observe, if not nil, is called after every call, from
// the goroutine that made it.
func New(inner storage.Store, timeout time.Duration, observe func(Result)) *Store {
	return &Store{inner: inner, timeout: timeout, observe: observe, inflight: map[*call]struct{}{}}
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() storage.Store { return s.inner }

// Close closes the wrapped store if it is an io.Closer.
func (s *Store) Close() error {
	if c, ok := s.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Oldest returns the start of the oldest call still running (zero when none
// is): a store that stopped answering shows here before any call times out.
func (s *Store) Oldest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for c := range s.inflight {
		if t.IsZero() || c.start.Before(t) {
			t = c.start
		}
	}
	return t
}

func (s *Store) begin() (*call, func()) {
	c := &call{start: time.Now()}
	s.mu.Lock()
	s.inflight[c] = struct{}{}
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		delete(s.inflight, c)
		s.mu.Unlock()
	}
}

func (s *Store) done(ctx context.Context, op Op, key string, c *call, err error) {
	if s.observe == nil {
		return
	}
	res := Result{Op: op, Key: key, Duration: time.Since(c.start), Err: err}
	if errors.Is(err, storage.ErrNotExist) || errors.Is(err, storage.ErrExist) || (ctx.Err() != nil && !errors.Is(err, ErrTimeout)) {
		res.Err = nil
	}
	s.observe(res)
}

// run calls fn with a deadline and returns its error, or a timeout error as
// soon as the deadline passes (fn then finishes on its own).
func (s *Store) run(ctx context.Context, op Op, key string, fn func(ctx context.Context) error) error {
	if s.timeout <= 0 {
		return fn(ctx)
	}
	cctx, cancel := context.WithTimeoutCause(ctx, s.timeout, ErrTimeout)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- fn(cctx) }()
	select {
	case err := <-res:
		if err != nil && errors.Is(context.Cause(cctx), ErrTimeout) && ctx.Err() == nil {
			return s.timeoutErr(op, key, err)
		}
		return err
	case <-cctx.Done():
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.timeoutErr(op, key, context.DeadlineExceeded)
	}
}

func (s *Store) timeoutErr(op Op, key string, err error) error {
	if op == OpPutIfAbsent {
		return fmt.Errorf("%s %s: no answer within %v: %w (%w, %w)", op, key, s.timeout, ErrTimeout, storage.ErrAmbiguous, err)
	}
	return fmt.Errorf("%s %s: no answer within %v: %w (%w)", op, key, s.timeout, ErrTimeout, err)
}

// Get implements storage.Store. The deadline covers reading the body.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c, end := s.begin()
	if s.timeout <= 0 {
		rc, err := s.inner.Get(ctx, key)
		end()
		s.done(ctx, OpGet, key, c, err)
		return rc, err
	}
	cctx, cancel := context.WithTimeoutCause(ctx, s.timeout, ErrTimeout)
	type got struct {
		rc  io.ReadCloser
		err error
	}
	res := make(chan got, 1)
	go func() {
		rc, err := s.inner.Get(cctx, key)
		res <- got{rc, err}
	}()
	var g got
	select {
	case g = <-res:
	case <-cctx.Done():
		go func() {
			if g := <-res; g.rc != nil {
				_ = g.rc.Close()
			}
		}()
		g.err = cctx.Err()
	}
	if g.err != nil {
		cancel()
		end()
		if errors.Is(context.Cause(cctx), ErrTimeout) && ctx.Err() == nil {
			g.err = s.timeoutErr(OpGet, key, g.err)
		}
		s.done(ctx, OpGet, key, c, g.err)
		return nil, g.err
	}
	return &body{rc: g.rc, s: s, ctx: ctx, cctx: cctx, key: key, c: c, cancel: cancel, end: end}, nil
}

// body is a Get's body under the call's deadline.
type body struct {
	rc     io.ReadCloser
	s      *Store
	ctx    context.Context
	cctx   context.Context
	key    string
	c      *call
	cancel context.CancelFunc
	end    func()
	once   sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(context.Cause(b.cctx), ErrTimeout) && b.ctx.Err() == nil {
			err = b.s.timeoutErr(OpGet, b.key, err)
		}
		b.finish(err)
	}
	return n, err
}

func (b *body) finish(err error) {
	b.once.Do(func() {
		b.end()
		b.s.done(b.ctx, OpGet, b.key, b.c, err)
	})
}

func (b *body) Close() error {
	err := b.rc.Close()
	b.cancel()
	b.finish(nil)
	return err
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, OpPut, key, r, s.inner.Put)
}

// PutIfAbsent implements storage.Store. A timeout is ambiguous.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, OpPutIfAbsent, key, r, s.inner.PutIfAbsent)
}

func (s *Store) put(ctx context.Context, op Op, key string, r io.Reader, fn func(context.Context, string, io.Reader) error) error {
	c, end := s.begin()
	defer end()
	fr := &fencedReader{r: r}
	err := s.run(ctx, op, key, func(ctx context.Context) error { return fn(ctx, key, fr) })
	fr.fence()
	s.done(ctx, op, key, c, err)
	return err
}

// fencedReader stops an abandoned call from reading the caller's reader
// after the call returned.
type fencedReader struct {
	mu     sync.Mutex
	r      io.Reader
	fenced bool
}

var errAbandoned = errors.New("storage request abandoned after its deadline")

func (f *fencedReader) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fenced {
		return 0, errAbandoned
	}
	return f.r.Read(p)
}

func (f *fencedReader) fence() {
	f.mu.Lock()
	f.fenced = true
	f.mu.Unlock()
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	return runValue(s, ctx, OpList, prefix, func(ctx context.Context) ([]storage.Object, error) {
		return s.inner.List(ctx, prefix)
	})
}

// ListPage implements storage.PageLister when the wrapped store does (else
// its error wraps errors.ErrUnsupported). It is observed as OpList.
func (s *Store) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Object, error) {
	pl, ok := s.inner.(storage.PageLister)
	if !ok {
		return nil, fmt.Errorf("list page %q: %w", prefix, errors.ErrUnsupported)
	}
	return runValue(s, ctx, OpList, prefix, func(ctx context.Context) ([]storage.Object, error) {
		return pl.ListPage(ctx, prefix, startAfter, limit)
	})
}

// Stat implements storage.Statter when the wrapped store does (else its
// error wraps errors.ErrUnsupported). It is observed as OpGet.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	st, ok := s.inner.(storage.Statter)
	if !ok {
		return storage.Object{}, fmt.Errorf("stat %s: %w", key, errors.ErrUnsupported)
	}
	return runValue(s, ctx, OpGet, key, func(ctx context.Context) (storage.Object, error) {
		return st.Stat(ctx, key)
	})
}

// runValue is run for a call that returns a value: the value is handed
// over only if fn finished in time (fn may still be running after a
// timeout).
func runValue[T any](s *Store, ctx context.Context, op Op, key string, fn func(ctx context.Context) (T, error)) (T, error) {
	c, end := s.begin()
	defer end()
	var out T
	var mu sync.Mutex
	err := s.run(ctx, op, key, func(ctx context.Context) error {
		v, err := fn(ctx)
		mu.Lock()
		out = v
		mu.Unlock()
		return err
	})
	s.done(ctx, op, key, c, err)
	if err != nil {
		var zero T
		return zero, err
	}
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	c, end := s.begin()
	defer end()
	err := s.run(ctx, OpDelete, key, func(ctx context.Context) error { return s.inner.Delete(ctx, key) })
	s.done(ctx, OpDelete, key, c, err)
	return err
}
