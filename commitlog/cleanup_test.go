package commitlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/hdfs"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

// The head logs below: versions 0..49 (a real table, 1 file per commit)
// and a checkpoint at 40 are older than the cutoff; commit 50 and the
// bare commits 51..n after it are younger. So R = 50, C = 40, and cleanup
// deletes commits 0..39.
const (
	headR = 50
	headC = 40
)

// buildHeadLog writes the head log of n versions to st and returns the
// cutoff between its old and young parts. gap is how long it waits on each
// side of the cutoff (object stores keep coarse modification times);
// before runs just before the cutoff, to add old entries.
func buildHeadLog(tb testing.TB, st storage.Store, n int, gap time.Duration, before func()) time.Time {
	tb.Helper()
	ctx := context.Background()
	tbl, err := Open(st, Config{DisableCheckpoints: true, DisableLogCleanup: true})
	if err != nil {
		tb.Fatal(err)
	}
	kept, err := tbl.Create(ctx, testSpec())
	if err != nil {
		tb.Fatal(err)
	}
	commit := func(name string) {
		tx := tbl.NewTransaction(kept)
		tx.Add(testAdd(name))
		res, err := tx.Commit(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		kept = res.Snapshot
	}
	for i := 1; i < headR; i++ {
		commit(fmt.Sprint("f", i))
	}
	if _, err := tbl.Checkpoint(ctx, headC); err != nil {
		tb.Fatal(err)
	}
	if before != nil {
		before()
	}
	time.Sleep(gap)
	cutoff := time.Now()
	time.Sleep(gap)
	commit("young")
	var g errgroup.Group
	g.SetLimit(8)
	for v := headR + 1; v <= n; v++ {
		g.Go(func() error {
			return st.Put(ctx, CommitKey(int64(v)), strings.NewReader(`{"commitInfo":{"timestamp":1}}`+"\n"))
		})
	}
	if err := g.Wait(); err != nil {
		tb.Fatal(err)
	}
	return cutoff
}

// entryCounter counts the storage calls (through faulty) and the log
// entries listings return.
type entryCounter struct {
	*faulty.Store
	mu      sync.Mutex
	lists   int // successful List and ListPage calls
	entries int
	statted []string
}

func (c *entryCounter) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	objs, err := c.Store.List(ctx, prefix)
	c.mu.Lock()
	c.count(len(objs), err)
	c.mu.Unlock()
	return objs, err
}

func (c *entryCounter) ListPage(ctx context.Context, prefix, after string, limit int) ([]storage.Object, error) {
	objs, err := c.Store.ListPage(ctx, prefix, after, limit)
	c.mu.Lock()
	c.count(len(objs), err)
	c.mu.Unlock()
	return objs, err
}

// count records a listing's result; c.mu is held.
func (c *entryCounter) count(entries int, err error) {
	if err == nil {
		c.lists++
	}
	c.entries += entries
}

func (c *entryCounter) Stat(ctx context.Context, key string) (storage.Object, error) {
	c.mu.Lock()
	c.statted = append(c.statted, key)
	c.mu.Unlock()
	return c.Store.Stat(ctx, key)
}

// listOnly hides a store's optional interfaces (PageLister, Statter).
type listOnly struct{ inner storage.Store }

func (s listOnly) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.inner.Get(ctx, key)
}
func (s listOnly) Put(ctx context.Context, key string, r io.Reader) error {
	return s.inner.Put(ctx, key, r)
}
func (s listOnly) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	return s.inner.PutIfAbsent(ctx, key, r)
}
func (s listOnly) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	return s.inner.List(ctx, prefix)
}
func (s listOnly) Delete(ctx context.Context, key string) error { return s.inner.Delete(ctx, key) }

// headStores are the three ways cleanup reads the head: pages (mem, and
// gofakes3 for S3), probes by name (local disk), and a whole listing (a
// store with neither).
func headStores(tb testing.TB) map[string]func() storage.Store {
	stores := map[string]func() storage.Store{
		"pages": func() storage.Store { return mem.New() },
		"pages-gofakes3": func() storage.Store {
			cfg := s3test.StartGoFakeS3(tb)
			st, err := s3.New(context.Background(), cfg)
			if err != nil {
				tb.Fatal(err)
			}
			return st
		},
		"probes": func() storage.Store {
			st, err := local.New(tb.TempDir())
			if err != nil {
				tb.Fatal(err)
			}
			return st
		},
		"list": func() storage.Store { return listOnly{mem.New()} },
	}
	// With a running HDFS (the interop tier starts one), pages from the
	// namenode too.
	if raw := os.Getenv("PLTEST_HDFS_URL"); raw != "" {
		stores["pages-hdfs"] = func() storage.Store {
			cfg, err := hdfs.ParseURL(raw)
			if err != nil {
				tb.Fatal(err)
			}
			cfg.Root = fmt.Sprintf("%s/commitlog-cleanup-%d-%d", strings.TrimSuffix(cfg.Root, "/"), os.Getpid(), time.Now().UnixNano())
			st, err := hdfs.New(context.Background(), cfg)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() {
				objs, _ := st.List(context.Background(), "")
				for _, o := range objs {
					_ = st.Delete(context.Background(), o.Key)
				}
				st.Close()
			})
			return st
		}
	}
	return stores
}

// TestCleanupReadsOnlyTheExpiredHead: log cleanup reads the log from its
// oldest entry to R (the first young commit), whatever comes after: the
// same LIST pages and entries at 200 and 2,000 versions through a
// PageLister; on a local disk no listing at all, one stat per candidate
// name of versions 0..R plus a binary search for the oldest commit. Only a
// store with neither lists the whole log.
func TestCleanupReadsOnlyTheExpiredHead(t *testing.T) {
	defer func(n int) { headPageSize = n }(headPageSize)
	headPageSize = 10
	ctx := context.Background()
	for name, newStore := range headStores(t) {
		t.Run(name, func(t *testing.T) {
			var entries []int
			for _, n := range []int{200, 2000} {
				st := newStore()
				cutoff := buildHeadLog(t, st, n, 5*time.Millisecond, nil)
				c := &entryCounter{Store: faulty.New(st)}
				var cs Store = c
				if name == "list" {
					cs = listOnly{c}
				}
				tbl, err := Open(cs, Config{})
				if err != nil {
					t.Fatal(err)
				}
				deleted, err := tbl.cleanupLogBefore(ctx, cutoff, int64(n))
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for v := int64(0); v < headC; v++ {
					want = append(want, CommitKey(v))
				}
				if !slices.Equal(deleted, want) {
					t.Errorf("n=%d: deleted %q, want commits 0..%d", n, deleted, headC-1)
				}
				lists, pages, stats := c.Calls(faulty.OpList), c.Calls(faulty.OpListPage), c.Calls(faulty.OpStat)
				t.Logf("n=%d: %d LISTs, %d pages, %d entries listed, %d stats", n, lists, pages, c.entries, stats)
				switch strings.Split(name, "-")[0] {
				case "pages":
					// 0..39, checkpoint 40, 40..50: 52 entries, 6 pages of 10.
					if lists != 0 || pages != 6 || c.entries > 60 || stats != 0 {
						t.Errorf("n=%d: %d LISTs, %d pages, %d entries, %d stats; want 0 LISTs, 6 pages of at most 10 entries, no stats", n, lists, pages, c.entries, stats)
					}
				case "probes":
					beyond := 0
					for _, k := range c.statted {
						if v, ok := logVersion(k); ok && v > headR {
							beyond++
						}
					}
					search := bits.Len(uint(n)) + 1
					// (A ListPage through the wrapper is refused with
					// ErrUnsupported before any I/O: local has none.)
					if lists != 0 || c.entries != 0 || stats > 5*(headR+1)+search || beyond > search {
						t.Errorf("n=%d: %d LISTs, %d entries listed, %d stats (%d of versions after R); want no listing, at most %d stats, %d after R", n, lists, c.entries, stats, beyond, 5*(headR+1)+search, search)
					}
				case "list":
					if lists != 1 || c.entries < n {
						t.Errorf("n=%d: %d LISTs of %d entries; want the whole log once", n, lists, c.entries)
					}
				}
				entries = append(entries, c.entries)
				// Every retained version still loads; the deleted ones not.
				check, err := Open(st, Config{})
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range []int64{headC, headR, int64(n)} {
					if _, err := check.SnapshotAt(ctx, v); err != nil {
						t.Errorf("n=%d: version %d after cleanup: %v", n, v, err)
					}
				}
				if _, err := check.SnapshotAt(ctx, headC-1); !errors.Is(err, ErrVersionNotFound) {
					t.Errorf("n=%d: version %d after cleanup: %v, want ErrVersionNotFound", n, headC-1, err)
				}
			}
			if name != "list" && entries[0] != entries[1] {
				t.Errorf("entries listed at 200 and 2000 versions: %v, want the same", entries)
			}
		})
	}
}

// TestCleanupForeignCheckpoints: checkpoints protolake does not write, or
// cannot use, are never a base; below the base they go with the commits
// when the store can list them, and stay (undeleted, harmless) when it is
// probed by name. An unreadable checkpoint at 48 and an incomplete
// multi-part one at 45 sit between C and R: the base is 40, and neither is
// deleted.
func TestCleanupForeignCheckpoints(t *testing.T) {
	ctx := context.Background()
	mp := func(v, part, parts int) string {
		return fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", LogDir, v, part, parts)
	}
	v2 := fmt.Sprintf("%s%020d.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet", LogDir, 20)
	sum := fmt.Sprintf("%s%020d.crc", LogDir, 10)
	hidden := LogDir + "." + strings.TrimPrefix(CommitKey(10), LogDir) + ".crc"
	foreign := []string{mp(20, 1, 2), mp(20, 2, 2), v2, sum, hidden}
	between := []string{mp(45, 1, 2), CheckpointKey(48)}
	for name, newStore := range headStores(t) {
		t.Run(name, func(t *testing.T) {
			st := newStore()
			cutoff := buildHeadLog(t, st, 60, 5*time.Millisecond, func() {
				for _, k := range append(slices.Clone(foreign), between...) {
					if err := st.Put(ctx, k, strings.NewReader("not a checkpoint")); err != nil {
						t.Fatal(err)
					}
				}
			})
			tbl, err := Open(st, Config{})
			if err != nil {
				t.Fatal(err)
			}
			deleted, err := tbl.cleanupLogBefore(ctx, cutoff, 60)
			if err != nil {
				t.Fatal(err)
			}
			var wantGone, wantKept []string
			for v := int64(0); v < headC; v++ {
				wantGone = append(wantGone, CommitKey(v))
			}
			switch strings.Split(name, "-")[0] {
			case "pages": // lists the numbered entries: not the hidden .crc
				wantGone = append(wantGone, mp(20, 1, 2), mp(20, 2, 2), v2, sum)
				wantKept = append(wantKept, hidden)
			case "probes": // knows the names it can guess
				wantGone = append(wantGone, sum, hidden)
				wantKept = append(wantKept, mp(20, 1, 2), mp(20, 2, 2), v2)
			case "list":
				wantGone = append(wantGone, foreign...)
			}
			wantKept = append(wantKept, between...)
			wantKept = append(wantKept, CheckpointKey(headC), CommitKey(headC))
			slices.Sort(wantGone)
			got := slices.Sorted(slices.Values(deleted))
			if !slices.Equal(got, wantGone) {
				t.Errorf("deleted\n%q\nwant\n%q", got, wantGone)
			}
			for _, k := range wantKept {
				rc, err := st.Get(ctx, k)
				if err != nil {
					t.Errorf("%s after cleanup: %v, want it kept", k, err)
					continue
				}
				rc.Close()
			}
			for _, v := range []int64{headC, headR, 60} {
				if _, err := tbl.SnapshotAt(ctx, v); err != nil {
					t.Errorf("version %d after cleanup: %v", v, err)
				}
			}
		})
	}
}

// keepDeletes counts Deletes and drops them, so that every benchmark
// iteration cleans the same head.
type keepDeletes struct {
	*entryCounter
	deletes int
}

func (k *keepDeletes) Delete(ctx context.Context, key string) error {
	k.deletes++
	return nil
}

// BenchmarkCleanupScale measures one log cleanup as the log grows (1,000
// and 20,000 versions, the same expired head of 50 versions with a
// checkpoint at 40): on a local disk (probes by name), on gofakes3 and
// MinIO (S3 pages of 1,000 keys from the start of the log), and, as the
// baseline in the same run, the whole-log listing the cleanup did before
// (strategy=list, on local disk). Deletes are counted and dropped, so every
// iteration does the same work; the checkpoint is parsed once. It reports
// the LIST calls (List and ListPage), listed entries and stats per cleanup,
// and the ratio of time and of entries+stats to the 1,000-version figure
// (x1k-time, x1k-reads). PLTEST_BENCH_CLEANUP_VERSIONS overrides the sizes;
// MinIO runs when PLTEST_MINIO names its binary.
func BenchmarkCleanupScale(b *testing.B) {
	sizes := benchSizes(b, "PLTEST_BENCH_CLEANUP_VERSIONS", []int{1000, 20000})
	for _, tt := range []struct {
		name  string
		store func(b *testing.B) storage.Store
		gap   time.Duration
		wrap  func(Store) Store
	}{
		{"store=local/strategy=probe", func(b *testing.B) storage.Store { return newLocal(b) }, 5 * time.Millisecond, nil},
		{"store=local/strategy=list", func(b *testing.B) storage.Store { return newLocal(b) }, 5 * time.Millisecond, func(s Store) Store { return listOnly{s} }},
		{"store=gofakes3/strategy=pages", func(b *testing.B) storage.Store { return newS3(b, s3test.StartGoFakeS3(b)) }, 1100 * time.Millisecond, nil},
		{"store=minio/strategy=pages", func(b *testing.B) storage.Store { return newS3(b, s3test.StartMinIO(b)) }, 1100 * time.Millisecond, nil},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var base [2]float64
			for _, n := range sizes {
				st := tt.store(b)
				cutoff := buildHeadLog(b, st, n, tt.gap, nil)
				c := &keepDeletes{entryCounter: &entryCounter{Store: faulty.New(st)}}
				var s Store = c
				if tt.wrap != nil {
					s = tt.wrap(c)
				}
				tbl, err := Open(s, Config{})
				if err != nil {
					b.Fatal(err)
				}
				// Off the clock: the first cleanup parses the checkpoint.
				if _, err := tbl.cleanupLogBefore(context.Background(), cutoff, int64(n)); err != nil {
					b.Fatal(err)
				}
				b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
					c.lists, c.entries, c.statted, c.deletes = 0, 0, nil, 0
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if _, err := tbl.cleanupLogBefore(context.Background(), cutoff, int64(n)); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					per := func(x int) float64 { return float64(x) / float64(b.N) }
					lists := per(c.lists)
					reads := per(c.entries + len(c.statted))
					ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
					b.ReportMetric(lists, "lists/op")
					b.ReportMetric(per(c.entries), "entries/op")
					b.ReportMetric(per(len(c.statted)), "stats/op")
					b.ReportMetric(per(c.deletes), "deletes/op")
					if n == sizes[0] {
						base = [2]float64{ns, reads}
					}
					b.ReportMetric(ns/base[0], "x1k-time")
					b.ReportMetric(reads/base[1], "x1k-reads")
				})
			}
		})
	}
}
