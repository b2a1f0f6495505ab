// Package faulty wraps a storage.Store to inject faults, for crash and
// failure tests of the code above storage (the commit log, the writer).
//
// Without faults the wrapper is transparent: it passes the storage acceptance
// suite. Faults are injected with Inject (or the FailNth and FailAfterNth
// shorthands) and fire on matching calls, counted from the moment the fault
// is injected:
//
//   - a fault "before" fails the call with its error without reaching the
//     wrapped store: nothing is written;
//   - a fault "after" lets the call reach the wrapped store and then replaces
//     its result: a write (Put, PutIfAbsent, Delete) has landed, or been
//     refused, but the caller gets an error wrapping storage.ErrAmbiguous, as
//     when a response is lost; a read's result is discarded.
//
// Every matching call counts towards every fault it matches; when several
// faults fire on the same call, the one injected first decides its fate (the
// others are spent all the same if they have an Nth).
//
// Every injected error wraps ErrInjected (or the fault's own error). SetLatency
// delays calls, honouring context cancellation, and OnBefore/OnAfter run a
// function around every call (to count, to block, or to cancel a context at an
// exact point). A Store is safe for concurrent use; faults and hooks may be
// changed while calls are running.
package faulty

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

// ErrInjected is wrapped by every error the wrapper makes up.
var ErrInjected = errors.New("injected fault")

// Op names a Store method.
type Op string

// The Store methods. The zero Op matches every method in a Fault.
const (
	OpGet         Op = "get"
	OpPut         Op = "put"
	OpPutIfAbsent Op = "put-if-absent"
	OpList        Op = "list"
	OpListPage    Op = "list-page"
	OpStat        Op = "stat"
	OpDelete      Op = "delete"
)

func (o Op) writes() bool { return o == OpPut || o == OpPutIfAbsent || o == OpDelete }

// Call describes one call through the wrapper.
type Call struct {
	// Op is the method.
	Op Op
	// Key is the key, or the prefix for List and ListPage.
	Key string
	// Seq numbers the calls through this Store, from 1.
	Seq int
}

// Fault describes an injected failure.
type Fault struct {
	// Op restricts the fault to one method; "" matches all.
	Op Op
	// Match, if set, restricts the fault further (by key, say).
	Match func(Call) bool
	// Nth fires the fault on the Nth matching call only (1-based);
	// 0 fires it on every matching call until Reset.
	Nth int
	// After lets the call reach the wrapped store before failing it.
	After bool
	// Err is the error to return; default ErrInjected. An "after" fault on a
	// write wraps it together with storage.ErrAmbiguous.
	Err error
}

type fault struct {
	Fault
	seen  int
	spent bool
}

// Store is a fault-injecting storage.Store. Create it with New.
type Store struct {
	inner storage.Store

	mu      sync.Mutex
	seq     int
	calls   map[Op]int
	faults  []*fault
	latency map[Op]time.Duration
	before  func(context.Context, Call) error
	after   func(context.Context, Call, error)
}

// New wraps inner. Without faults, the wrapper behaves exactly like inner.
func New(inner storage.Store) *Store {
	return &Store{inner: inner, calls: make(map[Op]int), latency: make(map[Op]time.Duration)}
}

// Inject adds a fault.
func (s *Store) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f})
}

// FailNth fails the nth call of op from now on (op "" counts every call)
// before it reaches the wrapped store.
func (s *Store) FailNth(op Op, n int) { s.Inject(Fault{Op: op, Nth: n}) }

// FailAfterNth lets the nth call of op from now on reach the wrapped store
// and then fails it; for a write the error wraps storage.ErrAmbiguous.
func (s *Store) FailAfterNth(op Op, n int) { s.Inject(Fault{Op: op, Nth: n, After: true}) }

// SetLatency delays every call of op (every call for op "") by d before it
// reaches the wrapped store. A cancelled context ends the delay with the
// context's error. d = 0 removes the delay.
func (s *Store) SetLatency(op Op, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency[op] = d
}

// OnBefore sets a function run before every call (after the latency); a
// non-nil error fails the call without reaching the wrapped store. nil
// removes it.
func (s *Store) OnBefore(fn func(ctx context.Context, c Call) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = fn
}

// OnAfter sets a function run after every call with the error the caller will
// get. nil removes it.
func (s *Store) OnAfter(fn func(ctx context.Context, c Call, err error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after = fn
}

// Reset removes all faults, latencies and hooks. Call counts are kept.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.latency = make(map[Op]time.Duration)
	s.before, s.after = nil, nil
}

// Calls returns how many calls of op went through the wrapper (all calls for
// op ""), including failed ones.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		return s.seq
	}
	return s.calls[op]
}

// begin registers a call and decides its fate.
func (s *Store) begin(op Op, key string) (c Call, f *fault, delay time.Duration, before func(context.Context, Call) error, after func(context.Context, Call, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.calls[op]++
	c = Call{Op: op, Key: key, Seq: s.seq}
	for _, ft := range s.faults {
		if ft.spent || (ft.Op != "" && ft.Op != op) || (ft.Match != nil && !ft.Match(c)) {
			continue
		}
		ft.seen++
		if ft.Nth == 0 || ft.seen == ft.Nth {
			if ft.Nth != 0 {
				ft.spent = true
			}
			if f == nil {
				f = ft
			}
		}
	}
	delay = s.latency[op] + s.latency[""]
	return c, f, delay, s.before, s.after
}

// do runs one call: latency, hook, fault, the call itself, fault, hook.
// Errors the wrapper makes up get the operation and key; errors of the
// wrapped store already carry them and pass through unchanged.
func (s *Store) do(ctx context.Context, op Op, key string, call func() error, discard func()) error {
	c, f, delay, before, after := s.begin(op, key)
	fromInner, err := func() (bool, error) {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, ctx.Err()
			case <-t.C:
			}
		}
		if before != nil {
			if err := before(ctx, c); err != nil {
				return false, err
			}
		}
		if f != nil && !f.After {
			return false, f.err()
		}
		err := call()
		if f == nil || !f.After {
			return true, err
		}
		if err == nil && discard != nil {
			discard()
		}
		if op.writes() {
			return false, fmt.Errorf("%w (the call reached the store): %w", storage.ErrAmbiguous, f.err())
		}
		return false, f.err()
	}()
	if err != nil && !fromInner {
		err = fmt.Errorf("%s %s: %w", op, key, err)
	}
	if after != nil {
		after(ctx, c, err)
	}
	return err
}

func (f *fault) err() error {
	if f.Err != nil {
		return f.Err
	}
	return ErrInjected
}

// Get calls the wrapped store's Get unless a fault says otherwise.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := s.do(ctx, OpGet, key, func() (err error) {
		rc, err = s.inner.Get(ctx, key)
		return err
	}, func() { rc.Close() })
	if err != nil {
		return nil, err
	}
	return rc, nil
}

// Put calls the wrapped store's Put unless a fault says otherwise.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	return s.do(ctx, OpPut, key, func() error { return s.inner.Put(ctx, key, r) }, nil)
}

// PutIfAbsent calls the wrapped store's PutIfAbsent unless a fault says
// otherwise.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	return s.do(ctx, OpPutIfAbsent, key, func() error { return s.inner.PutIfAbsent(ctx, key, r) }, nil)
}

// List calls the wrapped store's List unless a fault says otherwise.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	var objs []storage.Object
	err := s.do(ctx, OpList, prefix, func() (err error) {
		objs, err = s.inner.List(ctx, prefix)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// ListPage calls the wrapped store's ListPage unless a fault says otherwise;
// a wrapped store without one gives an error wrapping errors.ErrUnsupported
// (counted as a call all the same).
func (s *Store) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Object, error) {
	var objs []storage.Object
	err := s.do(ctx, OpListPage, prefix, func() (err error) {
		pl, ok := s.inner.(storage.PageLister)
		if !ok {
			return fmt.Errorf("list page %q: %w", prefix, errors.ErrUnsupported)
		}
		objs, err = pl.ListPage(ctx, prefix, startAfter, limit)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// Stat calls the wrapped store's Stat unless a fault says otherwise; a
// wrapped store without one gives an error wrapping errors.ErrUnsupported.
func (s *Store) Stat(ctx context.Context, key string) (storage.Object, error) {
	var o storage.Object
	err := s.do(ctx, OpStat, key, func() (err error) {
		st, ok := s.inner.(storage.Statter)
		if !ok {
			return fmt.Errorf("stat %s: %w", key, errors.ErrUnsupported)
		}
		o, err = st.Stat(ctx, key)
		return err
	}, nil)
	if err != nil {
		return storage.Object{}, err
	}
	return o, nil
}

// Delete calls the wrapped store's Delete unless a fault says otherwise.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, OpDelete, key, func() error { return s.inner.Delete(ctx, key) }, nil)
}
