// Package storagetest is the acceptance suite every storage.Store backend must
// pass. A backend's test calls Run with a constructor that returns an empty
// store (a fresh directory, bucket prefix, ...) for each subtest:
//
//	func TestStore(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return mem.New() })
//	}
//
// The suite checks the guarantees documented in package storage: round trips
// (empty and multi-MiB objects), overwrite by Put, PutIfAbsent refusing an
// existing key and keeping the original content, lexicographic listing with
// prefixes that do not end on a slash, ErrNotExist, deleting absent keys,
// context cancellation, failed writes leaving nothing behind, and a race of 16
// goroutines on one PutIfAbsent key of which exactly one may win. Stores that
// implement storage.PageLister or storage.Statter have those checked too
// (pages in key order after startAfter, only the prefix's directory, paging
// through a directory page by page; Stat's size, time and ErrNotExist).
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protolake/protolake/storage"
)

// LargeSize is the size of the large objects the suite writes. It is above the
// 5 MiB minimum S3 part size, so a backend configured with a small part size
// takes its multipart path.
const LargeSize = 12<<20 + 12345

// Run runs the acceptance suite. newStore must return an empty store, isolated
// from the stores of other subtests; it may register cleanups on t.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutIfAbsentRoundTrip", testPutIfAbsentRoundTrip},
		{"Overwrite", testOverwrite},
		{"PutIfAbsentExisting", testPutIfAbsentExisting},
		{"GetMissing", testGetMissing},
		{"Delete", testDelete},
		{"ListOrder", testListOrder},
		{"ListPrefix", testListPrefix},
		{"ListEmpty", testListEmpty},
		{"ListPage", testListPage},
		{"Stat", testStat},
		{"InvalidKeys", testInvalidKeys},
		{"ContextCancelled", testContextCancelled},
		{"CancelDuringWrite", testCancelDuringWrite},
		{"ReaderError", testReaderError},
		{"ConcurrentPuts", testConcurrentPuts},
		{"PutIfAbsentRace", testPutIfAbsentRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// content returns deterministic pseudo-random bytes, different for each seed.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func get(t *testing.T, ctx context.Context, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

func mustPut(t *testing.T, ctx context.Context, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func assertContent(t *testing.T, ctx context.Context, s storage.Store, key string, want []byte) {
	t.Helper()
	got := get(t, ctx, s, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %s, want %d bytes %s", key, len(got), preview(got), len(want), preview(want))
	}
}

func assertAbsent(t *testing.T, ctx context.Context, s storage.Store, key string) {
	t.Helper()
	rc, err := s.Get(ctx, key)
	if err == nil {
		rc.Close()
		t.Fatalf("Get(%q) succeeded, want storage.ErrNotExist", key)
	}
	if !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Get(%q) = %v, want storage.ErrNotExist", key, err)
	}
}

func listKeys(t *testing.T, ctx context.Context, s storage.Store, prefix string) []string {
	t.Helper()
	objs, err := s.List(ctx, prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	keys := []string{}
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

func preview(b []byte) string {
	if len(b) > 24 {
		return fmt.Sprintf("%q...", b[:24])
	}
	return fmt.Sprintf("%q", b)
}

func testRoundTrip(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	tests := []struct {
		key  string
		data []byte
	}{
		{"empty", []byte{}},
		{"one-byte", []byte{0}},
		{"text.json", []byte(`{"commitInfo":{}}` + "\n")},
		{"all-bytes", func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}()},
		{"nested/deeper/still/deeper/file.parquet", content(1, 4096)},
		{"part=2026-01-01/hour=03/part-0001.c000.zstd.parquet", content(2, 100_000)},
		{"spaces and ünïcödé/k=v%20x", content(3, 10)},
		{"large/object", content(4, LargeSize)},
	}
	for _, tt := range tests {
		mustPut(t, ctx, s, tt.key, tt.data)
	}
	for _, tt := range tests {
		assertContent(t, ctx, s, tt.key, tt.data)
	}
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(objs) != len(tests) {
		t.Fatalf("List returned %d objects, want %d: %v", len(objs), len(tests), objs)
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[o.Key] = o.Size
	}
	for _, tt := range tests {
		if got, want := sizes[tt.key], int64(len(tt.data)); got != want {
			t.Errorf("List size of %q = %d, want %d", tt.key, got, want)
		}
	}
}

func testPutIfAbsentRoundTrip(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	tests := []struct {
		key  string
		data []byte
	}{
		{"_delta_log/00000000000000000000.json", []byte(`{"protocol":{}}` + "\n")},
		{"_delta_log/00000000000000000001.json", []byte{}},
		{"big/commit", content(5, LargeSize)},
	}
	for _, tt := range tests {
		if err := s.PutIfAbsent(ctx, tt.key, bytes.NewReader(tt.data)); err != nil {
			t.Fatalf("PutIfAbsent(%q): %v", tt.key, err)
		}
	}
	for _, tt := range tests {
		assertContent(t, ctx, s, tt.key, tt.data)
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	mustPut(t, ctx, s, "k", []byte("first version, longer"))
	mustPut(t, ctx, s, "k", []byte("second"))
	assertContent(t, ctx, s, "k", []byte("second"))
	objs, err := s.List(ctx, "k")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(objs) != 1 || objs[0].Size != int64(len("second")) {
		t.Fatalf("List after overwrite = %v, want one object of size %d", objs, len("second"))
	}
	// Put also replaces an object created by PutIfAbsent.
	if err := s.PutIfAbsent(ctx, "c", bytes.NewReader([]byte("one"))); err != nil {
		t.Fatalf("PutIfAbsent: %v", err)
	}
	mustPut(t, ctx, s, "c", []byte("two"))
	assertContent(t, ctx, s, "c", []byte("two"))
}

func testPutIfAbsentExisting(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	key := "_delta_log/00000000000000000007.json"
	if err := s.PutIfAbsent(ctx, key, strings.NewReader("original")); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := s.PutIfAbsent(ctx, key, strings.NewReader("intruder, and longer"))
	if !errors.Is(err, storage.ErrExist) {
		t.Fatalf("second PutIfAbsent = %v, want storage.ErrExist", err)
	}
	if errors.Is(err, storage.ErrAmbiguous) {
		t.Fatalf("second PutIfAbsent = %v, want a definite storage.ErrExist, not ErrAmbiguous", err)
	}
	assertContent(t, ctx, s, key, []byte("original"))

	// An object written by Put counts as existing too, also when empty.
	mustPut(t, ctx, s, "by-put", []byte{})
	if err := s.PutIfAbsent(ctx, "by-put", strings.NewReader("x")); !errors.Is(err, storage.ErrExist) {
		t.Fatalf("PutIfAbsent over Put object = %v, want storage.ErrExist", err)
	}
	assertContent(t, ctx, s, "by-put", []byte{})

	// A deleted key can be created again.
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.PutIfAbsent(ctx, key, strings.NewReader("again")); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	assertContent(t, ctx, s, key, []byte("again"))
}

func testGetMissing(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	assertAbsent(t, ctx, s, "missing")
	assertAbsent(t, ctx, s, "missing/deeper/key")
	mustPut(t, ctx, s, "dir/file", []byte("x"))
	// A key that is only a "directory" of other keys is not an object, and
	// neither is a key "below" an object.
	assertAbsent(t, ctx, s, "dir")
	assertAbsent(t, ctx, s, "dir/file/below")
	assertAbsent(t, ctx, s, "dir/fil")
}

func testDelete(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	if err := s.Delete(ctx, "never-existed"); err != nil {
		t.Fatalf("Delete of absent key: %v", err)
	}
	if err := s.Delete(ctx, "never/existed/either"); err != nil {
		t.Fatalf("Delete of absent nested key: %v", err)
	}
	mustPut(t, ctx, s, "a/1", []byte("1"))
	mustPut(t, ctx, s, "a/2", []byte("2"))
	if err := s.Delete(ctx, "a/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertAbsent(t, ctx, s, "a/1")
	assertContent(t, ctx, s, "a/2", []byte("2"))
	if got, want := listKeys(t, ctx, s, ""), []string{"a/2"}; !slices.Equal(got, want) {
		t.Fatalf("List after Delete = %q, want %q", got, want)
	}
	if err := s.Delete(ctx, "a/1"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

// trickyKeys sort differently by key than by a per-directory walk:
// '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0' (0x30), and uppercase before
// lowercase, multi-byte UTF-8 last.
var trickyKeys = []string{
	"A",
	"a-b",
	"a.b",
	"a/b",
	"a/b-c",
	"a/b.c",
	"a/b0/x",
	"a/ba",
	"a/c/d",
	"a0",
	"aa",
	"b/x/y/z",
	"z",
	"é",
}

func putTricky(t *testing.T, ctx context.Context, s storage.Store) {
	t.Helper()
	shuffled := slices.Clone(trickyKeys)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	for _, k := range shuffled {
		// Sizes differ per key so a mixed-up Size is noticed.
		mustPut(t, ctx, s, k, []byte("content of "+k))
	}
}

func testListOrder(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	before := time.Now()
	putTricky(t, ctx, s)
	after := time.Now()
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
		if want := int64(len("content of " + o.Key)); o.Size != want {
			t.Errorf("List: %q has Size %d, want %d", o.Key, o.Size, want)
		}
		// Generous bounds: object stores keep second precision, and the
		// server's clock is the machine's.
		if o.ModTime.Before(before.Add(-time.Hour)) || o.ModTime.After(after.Add(time.Hour)) {
			t.Errorf("List: %q has ModTime %v, want around %v", o.Key, o.ModTime, before)
		}
	}
	if !slices.Equal(got, trickyKeys) {
		t.Fatalf("List(\"\") =\n%q\nwant\n%q", got, trickyKeys)
	}
}

func testListPrefix(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	putTricky(t, ctx, s)
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", trickyKeys},
		{"a", []string{"a-b", "a.b", "a/b", "a/b-c", "a/b.c", "a/b0/x", "a/ba", "a/c/d", "a0", "aa"}},
		{"a/", []string{"a/b", "a/b-c", "a/b.c", "a/b0/x", "a/ba", "a/c/d"}},
		{"a/b", []string{"a/b", "a/b-c", "a/b.c", "a/b0/x", "a/ba"}},
		{"a/b.", []string{"a/b.c"}},
		{"a/b0", []string{"a/b0/x"}},
		{"a/b0/", []string{"a/b0/x"}},
		{"a/c", []string{"a/c/d"}},
		{"a/c/d", []string{"a/c/d"}},
		{"a/c/d/", []string{}},
		{"a.", []string{"a.b"}},
		{"b/x/y/", []string{"b/x/y/z"}},
		{"b/x/y/z", []string{"b/x/y/z"}},
		{"A", []string{"A"}},
		{"é", []string{"é"}},
		{"nope", []string{}},
		{"nope/deeper/", []string{}},
	}
	for _, tt := range tests {
		if got := listKeys(t, ctx, s, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func testListEmpty(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	for _, prefix := range []string{"", "x", "x/"} {
		if got := listKeys(t, ctx, s, prefix); len(got) != 0 {
			t.Errorf("List(%q) on an empty store = %q, want nothing", prefix, got)
		}
	}
}

// pageLister returns s as a storage.PageLister, or skips the test when s
// does not implement one (or wraps a store that does not).
func pageLister(t *testing.T, ctx context.Context, s storage.Store) storage.PageLister {
	t.Helper()
	pl, ok := s.(storage.PageLister)
	if !ok {
		t.Skip("the store does not implement storage.PageLister")
	}
	if _, err := pl.ListPage(ctx, "", "", 1); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("the wrapped store does not implement storage.PageLister: %v", err)
	}
	return pl
}

func testListPage(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	pl := pageLister(t, ctx, s)
	// ASCII keys only: the order of other names is the store's (see
	// storage.PageLister).
	var ascii []string
	for _, k := range trickyKeys {
		if k != "é" {
			ascii = append(ascii, k)
			mustPut(t, ctx, s, k, []byte("content of "+k))
		}
	}
	for _, prefix := range []string{"", "a", "a/", "a/b", "a/b.", "a/c/", "b/x/y/", "nope", "nope/"} {
		for _, after := range []string{"", "A", "a/b", "a/b-", "a/b-c", "a/b0", "a/b0/x", "a/bz", "b", "zz"} {
			var want []string
			for _, k := range ascii {
				if k > after && storage.InDir(k, prefix) {
					want = append(want, k)
				}
			}
			for _, limit := range []int{1, 2, 1000} {
				objs, err := pl.ListPage(ctx, prefix, after, limit)
				if err != nil {
					t.Fatalf("ListPage(%q, %q, %d): %v", prefix, after, limit, err)
				}
				var got []string
				for _, o := range objs {
					got = append(got, o.Key)
					if w := int64(len("content of " + o.Key)); o.Size != w {
						t.Errorf("ListPage: %q has Size %d, want %d", o.Key, o.Size, w)
					}
				}
				if w := want[:min(len(want), limit)]; !slices.Equal(got, w) {
					t.Errorf("ListPage(%q, %q, %d) = %q, want %q", prefix, after, limit, got, w)
				}
			}
		}
	}
	// Paging through a directory one page after another.
	for i := range 25 {
		mustPut(t, ctx, s, fmt.Sprintf("dir/%03d", i), []byte("x"))
	}
	mustPut(t, ctx, s, "dir/sub/below", []byte("x"))
	var got []string
	after, pages := "", 0
	for {
		objs, err := pl.ListPage(ctx, "dir/", after, 7)
		if err != nil {
			t.Fatalf("ListPage(dir/, %q, 7): %v", after, err)
		}
		pages++
		for _, o := range objs {
			got = append(got, o.Key)
		}
		if len(objs) < 7 {
			break
		}
		after = objs[len(objs)-1].Key
	}
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("dir/%03d", i))
	}
	if !slices.Equal(got, want) || pages != 4 {
		t.Errorf("paging dir/ by 7: %d pages, %q; want 4 pages, %q", pages, got, want)
	}
	if _, err := pl.ListPage(ctx, "dir/", "", 0); err == nil {
		t.Errorf("ListPage with limit 0 succeeded, want an error")
	}
}

func testStat(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	st, ok := s.(storage.Statter)
	if !ok {
		t.Skip("the store does not implement storage.Statter")
	}
	if _, err := st.Stat(ctx, "nope"); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("the wrapped store does not implement storage.Statter: %v", err)
	} else if !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Stat of a missing key = %v, want storage.ErrNotExist", err)
	}
	before := time.Now()
	putTricky(t, ctx, s)
	for _, k := range trickyKeys {
		o, err := st.Stat(ctx, k)
		if err != nil {
			t.Fatalf("Stat(%q): %v", k, err)
		}
		if o.Key != k || o.Size != int64(len("content of "+k)) || o.ModTime.Before(before.Add(-time.Hour)) || o.ModTime.After(time.Now().Add(time.Hour)) {
			t.Errorf("Stat(%q) = %+v, want its key, size %d and a time around %v", k, o, len("content of "+k), before)
		}
	}
	for _, k := range []string{"a/c", "a/c/d/e", "b/x"} { // a directory; below a file
		if _, err := st.Stat(ctx, k); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want storage.ErrNotExist", k, err)
		}
	}
	if _, err := st.Stat(ctx, "a//b"); err == nil || errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat of an invalid key = %v, want an invalid-key error", err)
	}
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	for _, key := range []string{"", "/abs", "a//b", "a/../../escape", "../escape", "./a", "trailing/"} {
		if err := s.Put(ctx, key, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", key)
		}
		if err := s.PutIfAbsent(ctx, key, strings.NewReader("x")); err == nil {
			t.Errorf("PutIfAbsent(%q) succeeded, want an error", key)
		}
		if rc, err := s.Get(ctx, key); err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded, want an error", key)
		}
	}
	if got := listKeys(t, ctx, s, ""); len(got) != 0 {
		t.Errorf("List after invalid writes = %q, want nothing", got)
	}
}

func testContextCancelled(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	mustPut(t, ctx, s, "existing", []byte("x"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	if err := s.Put(cancelled, "put", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled context = %v, want context.Canceled", err)
	}
	if err := s.PutIfAbsent(cancelled, "pia", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("PutIfAbsent with cancelled context = %v, want context.Canceled", err)
	}
	if rc, err := s.Get(cancelled, "existing"); !errors.Is(err, context.Canceled) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get with cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.List(cancelled, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with cancelled context = %v, want context.Canceled", err)
	}
	if err := s.Delete(cancelled, "existing"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with cancelled context = %v, want context.Canceled", err)
	}
	assertAbsent(t, ctx, s, "put")
	assertAbsent(t, ctx, s, "pia")
	assertContent(t, ctx, s, "existing", []byte("x"))
}

// cancellingReader returns n bytes, cancels its context, then keeps returning
// data as if the caller had not noticed.
type cancellingReader struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
		for i := range p {
			p[i] = 'y'
		}
		return len(p), nil // never EOF: only cancellation ends the write
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = 'x'
	}
	r.n -= len(p)
	return len(p), nil
}

func testCancelDuringWrite(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	for _, size := range []int{100, LargeSize} {
		for _, op := range []string{"Put", "PutIfAbsent"} {
			key := fmt.Sprintf("cancel/%s-%d", op, size)
			cctx, cancel := context.WithCancel(ctx)
			r := &cancellingReader{n: size, cancel: cancel}
			var err error
			if op == "Put" {
				err = s.Put(cctx, key, r)
			} else {
				err = s.PutIfAbsent(cctx, key, r)
			}
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled after %d bytes = %v, want context.Canceled", op, size, err)
			}
			assertAbsent(t, ctx, s, key)
		}
	}
	if got := listKeys(t, ctx, s, ""); len(got) != 0 {
		t.Errorf("List after cancelled writes = %q, want nothing", got)
	}
}

var errReader = errors.New("storagetest: reader failed on purpose")

// failingReader returns n bytes and then errReader.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errReader
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = 'z'
	}
	r.n -= len(p)
	return len(p), nil
}

func testReaderError(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	mustPut(t, ctx, s, "kept", []byte("old content"))
	for _, size := range []int{0, 1000, LargeSize} {
		if err := s.Put(ctx, "kept", &failingReader{n: size}); !errors.Is(err, errReader) {
			t.Errorf("Put with a reader failing after %d bytes = %v, want the reader's error", size, err)
		}
		assertContent(t, ctx, s, "kept", []byte("old content"))

		key := fmt.Sprintf("commit-%d", size)
		if err := s.PutIfAbsent(ctx, key, &failingReader{n: size}); !errors.Is(err, errReader) {
			t.Errorf("PutIfAbsent with a reader failing after %d bytes = %v, want the reader's error", size, err)
		}
		assertAbsent(t, ctx, s, key)
		// The failed attempt did not claim the key.
		if err := s.PutIfAbsent(ctx, key, strings.NewReader("real")); err != nil {
			t.Fatalf("PutIfAbsent after a failed attempt: %v", err)
		}
		assertContent(t, ctx, s, key, []byte("real"))
	}
	if got, want := listKeys(t, ctx, s, ""), []string{"commit-0", "commit-1000", fmt.Sprintf("commit-%d", LargeSize), "kept"}; !slices.Equal(got, want) {
		t.Errorf("List after failed writes = %q, want %q", got, want)
	}
}

func testConcurrentPuts(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// All in one new directory, so backends that create parents
			// race on creating it.
			errs[i] = s.Put(ctx, fmt.Sprintf("new/dir/part-%02d", i), bytes.NewReader(content(uint64(i), 1000+i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	keys := listKeys(t, ctx, s, "new/dir/")
	if len(keys) != n {
		t.Fatalf("List after %d concurrent Puts = %q", n, keys)
	}
	for i := range n {
		assertContent(t, ctx, s, fmt.Sprintf("new/dir/part-%02d", i), content(uint64(i), 1000+i))
	}
}

func testPutIfAbsentRace(t *testing.T, s storage.Store) {
	ctx := ctxFor(t)
	const writers = 16
	for round := range 3 {
		key := fmt.Sprintf("_delta_log/%020d.json", round)
		payload := func(i int) []byte {
			return []byte(fmt.Sprintf(`{"commitInfo":{"txnId":"writer-%02d"}}`+"\n%s", i, strings.Repeat("p", 100*i)))
		}
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = s.PutIfAbsent(ctx, key, bytes.NewReader(payload(i)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won PutIfAbsent(%q)", round, winner, i, key)
				}
				winner = i
			case errors.Is(err, storage.ErrExist) && !errors.Is(err, storage.ErrAmbiguous):
			default:
				t.Errorf("round %d: writer %d: %v, want nil or a definite storage.ErrExist", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won PutIfAbsent(%q): %v", round, key, errs)
		}
		assertContent(t, ctx, s, key, payload(winner))
	}
}
