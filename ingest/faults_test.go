package ingest_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/protobuf/proto"
)

func isCommit(c faulty.Call) bool {
	return strings.HasPrefix(c.Key, "_delta_log/") && strings.HasSuffix(c.Key, ".json")
}

func isDataFile(c faulty.Call) bool {
	return strings.HasSuffix(c.Key, ".parquet") && !strings.HasPrefix(c.Key, "_delta_log/")
}

// wrapMain wraps the main table's store in a faulty store, set in *fs.
func wrapMain(fs **faulty.Store) func(string, storage.Store) storage.Store {
	return func(name string, s storage.Store) storage.Store {
		if name == "ad_impressions" {
			*fs = faulty.New(s)
			return *fs
		}
		return s
	}
}

// startFaulty builds a Runner whose main table store is wrapped by a faulty
// store, runs it until caught up in the background, and returns the store
// and the running Runner.
func startFaulty(t *testing.T, c []string, dir string, setup func(fs *faulty.Store)) (*faulty.Store, *running) {
	t.Helper()
	var fs *faulty.Store
	opts := ingest.Options{
		Logger:        testLogger(t),
		UntilCaughtUp: true,
		KafkaOpts:     fastGroup(),
		WrapStore:     wrapMain(&fs),
	}
	cfg := baseConfig(t, c, dir)
	cfg.ShutdownTimeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	r, err := ingest.NewRunner(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	setup(fs)
	return fs, goRun(ctx, t, r)
}

// TestStorageFailures makes the table's storage fail while records arrive.
func TestStorageFailures(t *testing.T) {
	const n = 1500

	// Every commit fails for a while: the buffers are kept (no record is
	// read twice), neither the table nor the group offsets move, /readyz
	// says not ready; when the store recovers everything is committed once.
	t.Run("commits fail", func(t *testing.T) {
		c := startKafka(t, 6, topic)
		var src produced
		produce(t, producer(t, c), &src, 0, n, marshal)
		dir := tempDir(t)
		fs, r := startFaulty(t, c.ListenAddrs(), dir, func(fs *faulty.Store) {
			fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Match: isCommit})
		})
		waitFor(t, "not every record consumed", func() bool { return r.Stats()[0].RecordsConsumed >= n })
		waitFor(t, "fewer than 3 commit attempts while failing", func() bool { return fs.Calls(faulty.OpPutIfAbsent) >= 3 })
		waitFor(t, "not Ready while every commit fails", func() bool { return !r.Ready() })
		if _, snap := tableFiles(t, filepath.Join(dir, "ad_impressions")); snap.Version() != 0 || len(snap.Txns()) != 0 {
			t.Errorf("table moved while commits failed: version %d, txns %v", snap.Version(), snap.Txns())
		}
		adm := kadm.NewClient(producer(t, c))
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		offs, err := adm.FetchOffsets(fctx, "lake")
		fcancel()
		if err != nil {
			t.Fatal(err)
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.At >= 0 {
				t.Errorf("group offset of %s/%d committed (%d) before the table commit", o.Topic, o.Partition, o.At)
			}
		})
		fs.Reset()
		if err := r.wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		st := r.Stats()[0]
		if st.RecordsConsumed != n || st.RowsCommitted != n {
			t.Errorf("Stats = %+v: want %d records consumed once (buffers kept) and committed", st, n)
		}
		checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
		offs, err = adm.FetchOffsets(context.Background(), "lake")
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		if sum != n {
			t.Errorf("group offsets sum to %d after the commit, want %d", sum, n)
		}
	})

	// A commit lands but its response is lost (ambiguous): resolved by
	// txnId, committed once.
	t.Run("ambiguous commits", func(t *testing.T) {
		c := startKafka(t, 6, topic)
		var src produced
		p := producer(t, c)
		produce(t, p, &src, 0, n, marshal)
		dir := tempDir(t)
		_, r := startFaulty(t, c.ListenAddrs(), dir, func(fs *faulty.Store) {
			fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Match: isCommit, Nth: 1, After: true})
			fs.Inject(faulty.Fault{Op: faulty.OpGet, Match: isCommit, Nth: 2})
		})
		if err := r.wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
	})

	// A commit lands, its response is lost, and the log cannot be read
	// back for a while: the outcome stays unknown, so the buffers are
	// dropped and the partitions re-read from the watermarks once the
	// table is readable again — the landed rows are not written twice.
	t.Run("unresolvable ambiguous commit", func(t *testing.T) {
		c := startKafka(t, 6, topic)
		var src produced
		produce(t, producer(t, c), &src, 0, n, marshal)
		dir := tempDir(t)
		var ambiguous atomic.Bool
		fs, r := startFaulty(t, c.ListenAddrs(), dir, func(fs *faulty.Store) {
			fs.OnAfter(func(_ context.Context, call faulty.Call, _ error) {
				if call.Op == faulty.OpPutIfAbsent && isCommit(call) {
					ambiguous.Store(true)
					// From the first commit on, reads of the log fail.
					fs.Inject(faulty.Fault{Op: faulty.OpGet, Match: func(c faulty.Call) bool { return strings.HasPrefix(c.Key, "_delta_log/") }})
					fs.Inject(faulty.Fault{Op: faulty.OpList})
					fs.OnAfter(nil)
				}
			})
			fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Match: isCommit, Nth: 1, After: true})
		})
		// Several reads of the log fail after the ambiguous commit before
		// the store recovers.
		waitFor(t, "no ambiguous commit", ambiguous.Load)
		reads := func() int { return fs.Calls(faulty.OpGet) + fs.Calls(faulty.OpList) }
		base := reads()
		waitFor(t, "fewer than 3 failed log reads after the ambiguous commit", func() bool { return reads() >= base+3 })
		fs.Reset()
		if err := r.wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
		t.Logf("stats %+v", r.Stats()[0])
	})

	// Uploading data files fails for a while: the files are kept and their
	// uploads retried (nothing is read twice), the failures are counted
	// and /readyz says why; the commit waits for the uploads.
	t.Run("data file fails", func(t *testing.T) {
		c := startKafka(t, 6, topic)
		var src produced
		produce(t, producer(t, c), &src, 0, n, marshal)
		dir := tempDir(t)
		var failing atomic.Bool
		failing.Store(true)
		fs, r := startFaulty(t, c.ListenAddrs(), dir, func(fs *faulty.Store) {
			fs.Inject(faulty.Fault{Op: faulty.OpPut, Match: func(c faulty.Call) bool { return isDataFile(c) && failing.Load() }})
		})
		deadline := time.Now().Add(20 * time.Second)
		for fs.Calls(faulty.OpPut) < 6 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if why := r.NotReady(); !strings.Contains(why, "fail") {
			t.Errorf("NotReady() = %q while uploads fail", why)
		}
		if st := r.Stats()[0]; st.RowsCommitted != 0 {
			t.Errorf("committed %d rows while their files could not be uploaded", st.RowsCommitted)
		}
		failing.Store(false)
		if err := r.wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if st := r.Stats()[0]; st.RecordsConsumed != n || st.RowsCommitted != n {
			t.Errorf("Stats = %+v: want %d records consumed once (files kept) and committed", st, n)
		}
		checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
	})
}

// TestBackpressure: with every commit failing, the buffers grow until the
// memory limit, then fetching pauses; when the store recovers, everything is
// committed once and fetching resumes.
func TestBackpressure(t *testing.T) {
	if testing.Short() {
		t.Skip("produces 80 MB")
	}
	if raceEnabled {
		// Buffers must outgrow the limit between two commit retries, which
		// the race detector's slowdown prevents.
		t.Skip("timing-dependent; not run under the race detector")
	}
	// The pause comes after about twice the limit was read (one limit's
	// worth flushed into files whose commit fails, then one buffered), so n
	// must be well above that for the test to see fetching stop.
	const n = 80_000
	c := startKafka(t, 6, topic)
	var src produced
	p := producer(t, c)
	rng := rand.New(rand.NewPCG(1, 2))
	incompressible := func(i int) []byte {
		m := impression(i)
		m.TraceContext = make([]byte, 1000)
		for j := range m.TraceContext {
			m.TraceContext[j] = byte(rng.Uint32())
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for from := 0; from < n; from += 5_000 {
		produce(t, p, &src, from, from+5_000, incompressible)
	}
	dir := tempDir(t)
	reg := prometheus.NewRegistry()
	var fs *faulty.Store
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.MemoryLimit = 16 << 20
	cfg.Tables[0].Flush.CommitInterval = time.Hour // only the memory limit flushes
	cfg.ShutdownTimeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t), Registerer: reg, UntilCaughtUp: true, KafkaOpts: fastGroup(),
		WrapStore: wrapMain(&fs)})
	if err != nil {
		t.Fatal(err)
	}
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Match: isCommit})
	run := goRun(ctx, t, r)
	paused := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "protolake_ingest_fetch_paused" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return 0
	}
	// Files being uploaded also pause fetching for a moment (more than half
	// the limit in flight); wait for the pause that lasts.
	for since := time.Now(); ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
		if paused() != 1 {
			since = time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			break
		}
	}
	consumed := r.Stats()[0].RecordsConsumed
	// Not a synchronisation: fetching must stay stopped for a while.
	time.Sleep(500 * time.Millisecond)
	if got := r.Stats()[0].RecordsConsumed; got >= n || got > consumed+10_000 {
		t.Errorf("consumed %d records, then %d while paused: fetching did not stop", consumed, got)
	}
	fs.Reset()
	if err := run.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if paused() != 0 {
		t.Error("still paused after the commits succeeded")
	}
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
}

// TestRebalanceWithSlowUploads: instance A's data-file uploads take 8s
// each when instance B joins the group. A's revoke callback gives up on its
// uploads within rebalance_timeout instead of waiting for them, so A is not
// kicked out of the group (no "partitions lost"), both instances hold
// partitions and B commits within rebalance_timeout + 3s; at the end every
// record is in the table once.
func TestRebalanceWithSlowUploads(t *testing.T) {
	const n = 3000
	const rebalance = 4 * time.Second
	c := startKafka(t, 6, topic)
	var src produced
	p := producer(t, c)
	produce(t, p, &src, 0, n/2, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.Kafka.SessionTimeout = 3 * time.Second
	cfg.Kafka.HeartbeatInterval = 300 * time.Millisecond
	cfg.Kafka.RebalanceTimeout = rebalance
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logsA := newLogLines(testLogger(t).Handler())
	var fs *faulty.Store
	a := startRunner(ctx, t, cfg, ingest.Options{Logger: slog.New(logsA), WrapStore: wrapMain(&fs)})
	for a.Stats()[0].RowsCommitted < n/2 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	// From now on A's uploads take 8s; records keep arriving.
	fs.SetLatency(faulty.OpPut, 8*time.Second)
	puts := fs.Calls(faulty.OpPut)
	produce(t, p, &src, n/2, n, marshal)
	for fs.Calls(faulty.OpPut) == puts && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	joined := time.Now()
	b := startRunner(ctx, t, cfg, ingest.Options{Logger: testLogger(t)})
	adm := kadm.NewClient(p)
	for {
		gs, err := adm.DescribeGroups(ctx, "lake")
		both := err == nil && len(gs["lake"].Members) == 2
		if both {
			for _, m := range gs["lake"].Members {
				if ca, ok := m.Assigned.AsConsumer(); !ok || len(ca.Topics) == 0 {
					both = false
				}
			}
		}
		if both && b.Stats()[0].Commits > 0 {
			break
		}
		if time.Since(joined) > rebalance+3*time.Second {
			t.Fatalf("%v after B joined: both members hold partitions = %v, B's commits %d", time.Since(joined), both, b.Stats()[0].Commits)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("B joined and committed, A kept partitions: %v after B started", time.Since(joined).Round(time.Millisecond))
	if got := logsA.n("partitions lost"); got != 0 {
		t.Errorf("A lost its partitions %d times: its revoke callback outlived the rebalance", got)
	}
	fs.SetLatency(faulty.OpPut, 0)
	cancel()
	for _, r := range []*running{a, b} {
		if err := r.wait(); err != nil {
			t.Logf("Run: %v (the rest is read again)", err)
		}
	}
	runUntilCaughtUp(t, cfg, ingest.Options{})
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
}
