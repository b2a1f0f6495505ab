package commitlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

// BenchmarkCommitScale measures what ingest's commits cost as a table
// grows: a writer that keeps its snapshot between commits (as ingest's sink
// does) commits 1 add + 12 txns per version, on local disk and on MinIO, at
// 100, 1,000, 10,000 and 20,000 versions (one active file per version).
// Each measured commit is rolled back off the clock, so it is made at
// exactly the size named. For each size it reports, for a normal commit and for a commit that
// writes a checkpoint (checkpoint-commit: in the background, as ingest does,
// the time until Commit returns; checkpoint-commit-sync: written before
// Commit returns, the whole cost): ns/op, storage calls and LISTs per commit, and the
// ratio of each to the 100-version figure (x100-time, x100-calls); for the
// checkpoint commit also its ratio to a normal commit at that size
// (x-commit); and the medians of the same (p50-ms; x100-p50 against a
// 100-version table committed to alternately; x-commit-p50 against normal
// commits made alternately at the same size; see commitScale). PLTEST_BENCH_VERSIONS overrides the sizes (comma-separated).
// MinIO runs when PLTEST_MINIO names its binary (make bench sets it).
func BenchmarkCommitScale(b *testing.B) {
	sizes := benchSizes(b, "PLTEST_BENCH_VERSIONS", []int{100, 1000, 10000, 20000})
	b.Run("store=local", func(b *testing.B) {
		commitScale(b, func() storage.Store { return newLocal(b) }, sizes)
	})
	b.Run("store=minio", func(b *testing.B) {
		cfg := s3test.StartMinIO(b)
		prefix := 0
		commitScale(b, func() storage.Store {
			prefix++
			c := cfg
			c.Prefix = fmt.Sprintf("table-%d", prefix)
			return newS3(b, c)
		}, sizes)
	})
}

// benchSizes returns the version counts named by the environment variable
// env (comma-separated), or def.
func benchSizes(b *testing.B, env string, def []int) []int {
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			b.Fatalf("%s: %q is not a version count >= 2", env, f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// newLocal returns a local store in a fresh temporary directory.
func newLocal(b *testing.B) *local.Store {
	st, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// newS3 returns an S3 store for cfg.
func newS3(b *testing.B, cfg s3.Config) *s3.Store {
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// scaleStats is the stats string of one benchmark file: 12 columns, about
// what an ingest file of a small message carries.
var scaleStats = func() string {
	var mins, maxs, nulls []string
	for i := 0; i < 12; i++ {
		mins = append(mins, fmt.Sprintf(`"c%02d":"2026-01-01T00:00:00.000Z"`, i))
		maxs = append(maxs, fmt.Sprintf(`"c%02d":"2026-01-01T23:59:59.999Z"`, i))
		nulls = append(nulls, fmt.Sprintf(`"c%02d":0`, i))
	}
	return `{"numRecords":1000,"minValues":{` + strings.Join(mins, ",") + `},"maxValues":{` + strings.Join(maxs, ",") + `},"nullCount":{` + strings.Join(nulls, ",") + `}}`
}()

// scaleTables are the three tables of one store commitScale commits
// through (all on the same log), and the snapshot they commit from.
type scaleTables struct {
	fs                  *faulty.Store
	inner               storage.Store
	tbl, cpTbl, syncTbl *Table
	kept                *Snapshot
}

func newScaleTables(b *testing.B, inner storage.Store) *scaleTables {
	ctx := context.Background()
	st := &scaleTables{fs: faulty.New(inner), inner: inner} // no faults: counts calls
	var err error
	if st.tbl, err = Open(st.fs, Config{DisableCheckpoints: true}); err != nil {
		b.Fatal(err)
	}
	// Every commit through these is a checkpoint commit: in the background
	// as ingest writes them, and in the foreground.
	if st.cpTbl, err = Open(st.fs, Config{CheckpointInterval: 1, BackgroundCheckpoints: true}); err != nil {
		b.Fatal(err)
	}
	if st.syncTbl, err = Open(st.fs, Config{CheckpointInterval: 1}); err != nil {
		b.Fatal(err)
	}
	if st.kept, err = st.tbl.Create(ctx, testSpec()); err != nil {
		b.Fatal(err)
	}
	return st
}

// kind returns the table that makes commits of kind.
func (st *scaleTables) kind(kind string) *Table {
	return map[string]*Table{"commit": st.tbl, "checkpoint-commit": st.cpTbl, "checkpoint-commit-sync": st.syncTbl}[kind]
}

// commit commits one streaming batch (1 add, 12 txns) from st.kept
// through t and returns its result and how long Commit took.
func (st *scaleTables) commit(b *testing.B, t *Table, offset int64) (CommitResult, time.Duration) {
	tx := t.NewTransaction(st.kept)
	day := "2026-01-01"
	tx.Add(Add{Path: fmt.Sprintf("day=%s/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", day, offset),
		PartitionValues: map[string]*string{"day": &day}, Size: 1 << 20, DataChange: true, Stats: scaleStats})
	for p := int32(0); p < 12; p++ {
		tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: p, First: offset, Last: offset})
	}
	tx.SetOperation(OpStreamingUpdate, nil)
	start := time.Now()
	res, err := tx.Commit(context.Background())
	took := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if res.Snapshot == nil {
		b.Fatal("commit returned no snapshot")
	}
	if t == st.syncTbl && (!res.Checkpointed || res.CheckpointErr != nil) {
		b.Fatalf("no checkpoint at %d: %v", res.Version, res.CheckpointErr)
	}
	if t == st.cpTbl && !res.CheckpointStarted {
		b.Fatalf("no background checkpoint at %d", res.Version)
	}
	return res, took
}

// rollback deletes what a measured commit wrote (off the clock, on the
// inner store: not counted), so that every measured commit is made at
// exactly the size being measured.
func (st *scaleTables) rollback(b *testing.B, t *Table, v int64) {
	// A background checkpoint runs off the clock, so that each op starts
	// one.
	t.WaitCheckpoints()
	for _, k := range []string{CommitKey(v), CheckpointKey(v)} {
		if err := st.inner.Delete(context.Background(), k); err != nil {
			b.Fatal(err)
		}
	}
	// Collect the garbage a background checkpoint left: in the benchmark
	// every commit is a checkpoint commit, so without this each measured
	// Commit would pay, in GC assists, for the previous op's checkpoint of
	// the whole table (a streaming table checkpoints every 100 commits).
	runtime.GC()
	// On local disk the unlinks are metadata the filesystem's journal
	// would otherwise commit with the next measured commit's fsync (a
	// deleted checkpoint frees blocks, so checkpoint commits paid more for
	// the rollback than normal ones): commit it now, off the clock.
	if ls, ok := st.inner.(*local.Store); ok {
		d, err := os.Open(filepath.Join(ls.Root(), filepath.FromSlash(LogDir)))
		if err != nil {
			b.Fatal(err)
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// median returns the middle of d.
func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// commitScale runs BenchmarkCommitScale on one kind of store; newStore
// returns an empty store of that kind. Besides the mean (ns/op) it keeps
// each commit's time and reports the median (p50-ms). On a loaded machine
// an fsync or a request now and then takes ten times the median, which
// swings a mean of 30 commits either way; and the sizes are measured
// minutes apart, under different load. So each measured commit is
// followed, off the clock, by the same kind of commit on a second table
// held at the first size, and each checkpoint commit by a normal commit at
// the same size: x100-p50 and x-commit-p50 are ratios of medians taken at
// the same moments.
func commitScale(b *testing.B, newStore func() storage.Store, sizes []int) {
	main, base := newScaleTables(b, newStore()), newScaleTables(b, newStore())
	var offset int64
	grow := func(st *scaleTables, n int) {
		for st.kept.Version() < int64(n) {
			res, _ := st.commit(b, st.tbl, offset)
			offset++
			st.kept = res.Snapshot
		}
	}
	grow(base, sizes[0])
	mean := map[string][2]float64{}
	for _, n := range sizes {
		grow(main, n)
		var commitNs float64
		for _, kind := range []string{"commit", "checkpoint-commit", "checkpoint-commit-sync"} {
			b.Run(fmt.Sprintf("versions=%d/%s", n, kind), func(b *testing.B) {
				t, bt := main.kind(kind), base.kind(kind)
				calls, lists := 0, 0
				var times, baseTimes, normalTimes []time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// The baseline commit goes first every other time, so
					// that neither is always the one after the other.
					// For a checkpoint commit, a normal commit at the same
					// size is made alongside too (x-commit-p50).
					baseline := func() {
						bres, btook := base.commit(b, bt, offset)
						offset++
						baseTimes = append(baseTimes, btook)
						base.rollback(b, bt, bres.Version)
						if kind != "commit" {
							nres, ntook := main.commit(b, main.tbl, offset)
							offset++
							normalTimes = append(normalTimes, ntook)
							main.rollback(b, main.tbl, nres.Version)
						}
					}
					if i%2 == 1 {
						b.StopTimer()
						baseline()
						b.StartTimer()
					}
					c0, l0 := main.fs.Calls(""), main.fs.Calls(faulty.OpList)+main.fs.Calls(faulty.OpListPage)
					res, took := main.commit(b, t, offset)
					b.StopTimer()
					offset++
					times = append(times, took)
					main.rollback(b, t, res.Version)
					calls += main.fs.Calls("") - c0
					lists += main.fs.Calls(faulty.OpList) + main.fs.Calls(faulty.OpListPage) - l0
					if i%2 == 0 {
						baseline()
					}
					b.StartTimer()
				}
				b.StopTimer()
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				perCall := float64(calls) / float64(b.N)
				p50 := median(times)
				b.ReportMetric(perCall, "calls/op")
				b.ReportMetric(float64(lists)/float64(b.N), "lists/op")
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(p50)/float64(median(baseTimes)), "x100-p50")
				if n == sizes[0] {
					mean[kind] = [2]float64{ns, perCall}
				}
				if bs := mean[kind]; bs[0] > 0 {
					b.ReportMetric(ns/bs[0], "x100-time")
					b.ReportMetric(perCall/bs[1], "x100-calls")
				}
				if kind == "commit" {
					commitNs = ns
				} else {
					b.ReportMetric(ns/commitNs, "x-commit")
					b.ReportMetric(float64(p50)/float64(median(normalTimes)), "x-commit-p50")
				}
			})
		}
	}
}
