package deadline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/deadline"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/storagetest"
)

func TestAcceptance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return deadline.New(mem.New(), time.Minute, nil) })
}

// hung returns a store whose calls block, ignoring their context, until
// release is closed: a stopped server on a connection without timeouts.
func hung(t *testing.T) (*faulty.Store, chan struct{}) {
	fs := faulty.New(mem.New())
	release := make(chan struct{})
	fs.OnBefore(func(context.Context, faulty.Call) error { <-release; return nil })
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return fs, release
}

func TestTimeout(t *testing.T) {
	ctx := context.Background()
	const timeout = 100 * time.Millisecond
	var mu sync.Mutex
	var results []deadline.Result
	fs, release := hung(t)
	s := deadline.New(fs, timeout, func(r deadline.Result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	check := func(op string, err error, ambiguous bool) {
		t.Helper()
		if !errors.Is(err, deadline.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want ErrTimeout", op, err)
		}
		if got := errors.Is(err, storage.ErrAmbiguous); got != ambiguous {
			t.Errorf("%s: ambiguous = %v, want %v (%v)", op, got, ambiguous, err)
		}
	}
	start := time.Now()
	go func() {
		time.Sleep(timeout / 2)
		if o := s.Oldest(); o.IsZero() || o.After(time.Now()) {
			t.Errorf("Oldest() = %v while a call hangs", o)
		}
	}()
	_, err := s.Get(ctx, "a")
	check("get", err, false)
	check("put", s.Put(ctx, "a", bytes.NewReader([]byte("x"))), false)
	check("put-if-absent", s.PutIfAbsent(ctx, "_delta_log/0.json", bytes.NewReader([]byte("x"))), true)
	_, err = s.List(ctx, "")
	check("list", err, false)
	check("delete", s.Delete(ctx, "a"), false)
	if d := time.Since(start); d > 5*timeout+time.Second {
		t.Errorf("5 hung calls took %v with a %v deadline", d, timeout)
	}
	if !s.Oldest().IsZero() {
		t.Errorf("Oldest() = %v with no call running", s.Oldest())
	}
	mu.Lock()
	if len(results) != 5 {
		t.Errorf("observed %d results, want 5", len(results))
	}
	for _, r := range results {
		if !errors.Is(r.Err, deadline.ErrTimeout) || r.Duration < timeout {
			t.Errorf("result %+v: want a timeout after at least %v", r, timeout)
		}
	}
	mu.Unlock()
	close(release)

	// The abandoned Put may run now, but it cannot read the caller's
	// buffer any more: nothing (or an error) lands, never other bytes.
	time.Sleep(50 * time.Millisecond)
	if rc, err := fs.Get(ctx, "a"); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		if len(b) != 0 && string(b) != "x" {
			t.Errorf("abandoned put wrote %q", b)
		}
	}
}

// A slow body read runs out of time too; closing it in time is fine.
func TestGetBodyDeadline(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	if err := m.Put(ctx, "k", bytes.NewReader(bytes.Repeat([]byte("y"), 100))); err != nil {
		t.Fatal(err)
	}
	s := deadline.New(m, 50*time.Millisecond, nil)
	rc, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if err != nil || len(b) != 100 {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
	rc.Close()
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("missing key: %v, want ErrNotExist", err)
	}
}

// A caller's own cancellation is reported as such, not as a timeout.
func TestCallerCancel(t *testing.T) {
	fs, _ := hung(t)
	var got []deadline.Result
	s := deadline.New(fs, time.Minute, func(r deadline.Result) { got = append(got, r) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := s.Put(ctx, "a", bytes.NewReader(nil))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, deadline.ErrTimeout) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
	if len(got) != 1 || got[0].Err != nil {
		t.Errorf("observed %+v, want one call that is not a failure", got)
	}
}
