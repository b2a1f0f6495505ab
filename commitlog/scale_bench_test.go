package commitlog

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

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
// (x-commit). PLTEST_BENCH_VERSIONS overrides the sizes (comma-separated).
// MinIO runs when PLTEST_MINIO names its binary (make bench sets it).
func BenchmarkCommitScale(b *testing.B) {
	sizes := benchSizes(b, "PLTEST_BENCH_VERSIONS", []int{100, 1000, 10000, 20000})
	b.Run("store=local", func(b *testing.B) { commitScale(b, newLocal(b), sizes) })
	b.Run("store=minio", func(b *testing.B) { commitScale(b, newS3(b, s3test.StartMinIO(b)), sizes) })
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

func commitScale(b *testing.B, inner storage.Store, sizes []int) {
	ctx := context.Background()
	fs := faulty.New(inner) // no faults: counts calls
	tbl, err := Open(fs, Config{DisableCheckpoints: true})
	if err != nil {
		b.Fatal(err)
	}
	// Every commit through these is a checkpoint commit: in the background
	// as ingest writes them, and in the foreground.
	cpTbl, err := Open(fs, Config{CheckpointInterval: 1, BackgroundCheckpoints: true})
	if err != nil {
		b.Fatal(err)
	}
	syncTbl, err := Open(fs, Config{CheckpointInterval: 1})
	if err != nil {
		b.Fatal(err)
	}
	kept, err := tbl.Create(ctx, testSpec())
	if err != nil {
		b.Fatal(err)
	}
	var offset int64
	// commit commits one streaming batch from kept through t.
	commit := func(t *Table) CommitResult {
		tx := t.NewTransaction(kept)
		day := "2026-01-01"
		tx.Add(Add{Path: fmt.Sprintf("day=%s/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", day, offset),
			PartitionValues: map[string]*string{"day": &day}, Size: 1 << 20, DataChange: true, Stats: scaleStats})
		for p := int32(0); p < 12; p++ {
			tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: p, First: offset, Last: offset})
		}
		tx.SetOperation(OpStreamingUpdate, nil)
		offset++
		res, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Snapshot == nil {
			b.Fatal("commit returned no snapshot")
		}
		if t == syncTbl && (!res.Checkpointed || res.CheckpointErr != nil) {
			b.Fatalf("no checkpoint at %d: %v", res.Version, res.CheckpointErr)
		}
		if t == cpTbl && !res.CheckpointStarted {
			b.Fatalf("no background checkpoint at %d", res.Version)
		}
		return res
	}
	// rollback deletes what a measured commit wrote (off the clock, on the
	// inner store: not counted), so that every measured commit is made at
	// exactly the size being measured.
	rollback := func(v int64) {
		for _, k := range []string{CommitKey(v), CheckpointKey(v)} {
			if err := inner.Delete(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	}
	base := map[string][2]float64{}
	for _, n := range sizes {
		for kept.Version() < int64(n) {
			kept = commit(tbl).Snapshot
		}
		var commitNs float64
		for _, kind := range []string{"commit", "checkpoint-commit", "checkpoint-commit-sync"} {
			t := map[string]*Table{"commit": tbl, "checkpoint-commit": cpTbl, "checkpoint-commit-sync": syncTbl}[kind]
			b.Run(fmt.Sprintf("versions=%d/%s", n, kind), func(b *testing.B) {
				calls, lists := 0, 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					c0, l0 := fs.Calls(""), fs.Calls(faulty.OpList)
					res := commit(t)
					b.StopTimer()
					// A background checkpoint runs off the clock, so that
					// each op starts one.
					t.WaitCheckpoints()
					calls += fs.Calls("") - c0
					lists += fs.Calls(faulty.OpList) - l0
					rollback(res.Version)
					b.StartTimer()
				}
				b.StopTimer()
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				perCall := float64(calls) / float64(b.N)
				b.ReportMetric(perCall, "calls/op")
				b.ReportMetric(float64(lists)/float64(b.N), "lists/op")
				if n == sizes[0] {
					base[kind] = [2]float64{ns, perCall}
				}
				if bs := base[kind]; bs[0] > 0 {
					b.ReportMetric(ns/bs[0], "x100-time")
					b.ReportMetric(perCall/bs[1], "x100-calls")
				}
				if kind == "commit" {
					commitNs = ns
				} else if commitNs > 0 {
					b.ReportMetric(ns/commitNs, "x-commit")
				}
			})
		}
	}
}
