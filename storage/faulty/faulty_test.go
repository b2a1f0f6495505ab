package faulty_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/storagetest"
)

// Without faults the wrapper is a Store like any other.
func TestAcceptance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return faulty.New(mem.New()) })
}

func exists(t *testing.T, s storage.Store, key string) bool {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if errors.Is(err, storage.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	rc.Close()
	return true
}

func TestFailNth(t *testing.T) {
	tests := []struct {
		name     string
		op       faulty.Op
		n        int
		wantFail []bool // per Put call, in order
	}{
		{"first put", faulty.OpPut, 1, []bool{true, false, false}},
		{"third put", faulty.OpPut, 3, []bool{false, false, true}},
		{"second call of any kind", "", 2, []bool{false, true, false}},
		{"other method", faulty.OpDelete, 1, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := mem.New()
			s := faulty.New(inner)
			s.FailNth(tt.op, tt.n)
			for i, wantFail := range tt.wantFail {
				key := []string{"a", "b", "c"}[i]
				err := s.Put(context.Background(), key, strings.NewReader("x"))
				if gotFail := err != nil; gotFail != wantFail {
					t.Fatalf("Put %d: err = %v, want failure %v", i+1, err, wantFail)
				}
				if err != nil {
					if !errors.Is(err, faulty.ErrInjected) || errors.Is(err, storage.ErrAmbiguous) {
						t.Fatalf("Put %d: err = %v, want a definite ErrInjected", i+1, err)
					}
					if !strings.Contains(err.Error(), key) {
						t.Errorf("Put %d: err = %q does not name key %q", i+1, err, key)
					}
				}
				// A fault before the call means nothing was written.
				if got := exists(t, inner, key); got == wantFail {
					t.Fatalf("after Put %d (failed=%v) key exists = %v", i+1, wantFail, got)
				}
			}
		})
	}
}

func TestFailAfterNthWriteLands(t *testing.T) {
	inner := mem.New()
	s := faulty.New(inner)
	ctx := context.Background()
	s.FailAfterNth(faulty.OpPutIfAbsent, 1)
	err := s.PutIfAbsent(ctx, "_delta_log/1.json", strings.NewReader("mine"))
	if !errors.Is(err, storage.ErrAmbiguous) || !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("PutIfAbsent = %v, want ErrAmbiguous and ErrInjected", err)
	}
	rc, err := inner.Get(ctx, "_delta_log/1.json")
	if err != nil {
		t.Fatalf("the write did not land: %v", err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != "mine" {
		t.Fatalf("landed content = %q", b)
	}
	// The fault is spent: the next call behaves normally.
	if err := s.PutIfAbsent(ctx, "_delta_log/1.json", strings.NewReader("again")); !errors.Is(err, storage.ErrExist) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExist", err)
	}
}

func TestFailAfterRead(t *testing.T) {
	s := faulty.New(mem.New())
	ctx := context.Background()
	if err := s.Put(ctx, "k", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	s.FailAfterNth(faulty.OpGet, 1)
	if rc, err := s.Get(ctx, "k"); !errors.Is(err, faulty.ErrInjected) || errors.Is(err, storage.ErrAmbiguous) || rc != nil {
		t.Fatalf("Get = %v, %v; want nil reader and a plain ErrInjected", rc, err)
	}
}

func TestMatchAndCustomError(t *testing.T) {
	errCrash := errors.New("simulated crash")
	s := faulty.New(mem.New())
	ctx := context.Background()
	s.Inject(faulty.Fault{
		Op:    faulty.OpPutIfAbsent,
		Match: func(c faulty.Call) bool { return strings.HasPrefix(c.Key, "_delta_log/") },
		Err:   errCrash,
	})
	// Data files pass; every commit fails (Nth 0 = every time).
	if err := s.Put(ctx, "part-1.parquet", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIfAbsent(ctx, "other", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.PutIfAbsent(ctx, "_delta_log/0.json", strings.NewReader("x")); !errors.Is(err, errCrash) {
			t.Fatalf("commit = %v, want the custom error", err)
		}
	}
	s.Reset()
	if err := s.PutIfAbsent(ctx, "_delta_log/0.json", strings.NewReader("x")); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	if got := s.Calls(faulty.OpPutIfAbsent); got != 5 {
		t.Errorf("Calls(PutIfAbsent) = %d, want 5", got)
	}
	if got := s.Calls(""); got != 6 {
		t.Errorf("Calls(all) = %d, want 6", got)
	}
}

func TestLatency(t *testing.T) {
	s := faulty.New(mem.New())
	s.SetLatency(faulty.OpList, 50*time.Millisecond)
	start := time.Now()
	if _, err := s.List(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("List took %v, want at least the 50ms latency", d)
	}
	// A cancelled context ends the wait.
	s.SetLatency("", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Put(ctx, "k", strings.NewReader("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with an hour of latency and a 20ms deadline = %v, want DeadlineExceeded", err)
	}
}

func TestHooks(t *testing.T) {
	s := faulty.New(mem.New())
	ctx := context.Background()
	var mu sync.Mutex
	var before []faulty.Call
	var afterErrs []error
	s.OnBefore(func(_ context.Context, c faulty.Call) error {
		mu.Lock()
		defer mu.Unlock()
		before = append(before, c)
		if c.Op == faulty.OpDelete {
			return errors.New("no deletes today")
		}
		return nil
	})
	s.OnAfter(func(_ context.Context, c faulty.Call, err error) {
		mu.Lock()
		defer mu.Unlock()
		afterErrs = append(afterErrs, err)
	})
	_ = s.Put(ctx, "a", strings.NewReader("x"))
	_, _ = s.List(ctx, "pre")
	err := s.Delete(ctx, "a")
	if err == nil || !strings.Contains(err.Error(), "no deletes today") {
		t.Fatalf("Delete = %v, want the hook's error", err)
	}
	want := []faulty.Call{{Op: faulty.OpPut, Key: "a", Seq: 1}, {Op: faulty.OpList, Key: "pre", Seq: 2}, {Op: faulty.OpDelete, Key: "a", Seq: 3}}
	if len(before) != len(want) {
		t.Fatalf("before hook saw %v, want %v", before, want)
	}
	for i := range want {
		if before[i] != want[i] {
			t.Errorf("before hook call %d = %+v, want %+v", i, before[i], want[i])
		}
	}
	if len(afterErrs) != 3 || afterErrs[0] != nil || afterErrs[1] != nil || afterErrs[2] == nil {
		t.Errorf("after hook errors = %v, want [nil nil error]", afterErrs)
	}
	if !exists(t, s, "a") {
		t.Error("the hook's error did not stop the Delete")
	}
}
