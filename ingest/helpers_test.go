package ingest_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const topic = "ads.click.stream"

// repoRoot is the module root (tests run in their package directory).
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// startKafka starts an in-process Kafka with the topics, each with parts
// partitions.
func startKafka(t testing.TB, parts int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topics...), kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// impression is the i-th test message: deterministic, so a row can be
// compared with the message that produced it.
func impression(i int) *adtrackpb.AdImpression {
	return &adtrackpb.AdImpression{
		ImpressionId: fmt.Sprintf("imp-%07d", i),
		EventTime:    timestamppb.New(time.Date(2026, 11, 20+i%3, i%24, i%60, 0, 0, time.UTC)),
		CampaignId:   "camp-" + strconv.Itoa(i%17),
		AdvertiserId: int64(i) * 7,
		Geo:          &adtrackpb.Geo{Country: []string{"DE", "FR", "US"}[i%3]},
		Segments:     []string{"s" + strconv.Itoa(i%5)},
		Labels:       map[string]string{"i": strconv.Itoa(i)},
	}
}

// produced is where each message landed.
type produced struct {
	byCoord map[[2]int64]int // (partition, offset) → message index
}

// producer returns a client producing to the cluster.
func producer(t testing.TB, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// produce sends values[from:to] (value(i) for each i) and records where each landed.
func produce(t testing.TB, p *kgo.Client, into *produced, from, to int, value func(i int) []byte) {
	t.Helper()
	if into.byCoord == nil {
		into.byCoord = map[[2]int64]int{}
	}
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: value(i)})
	}
	res := p.ProduceSync(context.Background(), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, r := range res {
		i, err := strconv.Atoi(string(r.Record.Key))
		if err != nil {
			t.Fatal(err)
		}
		into.byCoord[[2]int64{int64(r.Record.Partition), r.Record.Offset}] = i
	}
}

func marshal(i int) []byte {
	b, err := proto.Marshal(impression(i))
	if err != nil {
		panic(err)
	}
	return b
}

// baseConfig is a one-table config over the adtrack descriptor.
func baseConfig(t testing.TB, brokers []string, dir string) ingest.Config {
	t.Helper()
	return ingest.Config{
		Kafka: ingest.KafkaConfig{Brokers: brokers, GroupID: "lake"},
		Tables: []ingest.TableConfig{{
			Name:          "ad_impressions",
			URI:           filepath.Join(dir, "ad_impressions"),
			Topics:        []string{topic},
			Message:       "adtrack.v1.AdImpression",
			DescriptorSet: filepath.Join(repoRoot(t), "testdata/proto/adtrack/v1/adtrack.binpb"),
			PartitionBy:   []string{"day(event_time)"},
			Flush:         ingest.FlushConfig{CommitInterval: 300 * time.Millisecond},
		}},
		HTTP:            ingest.HTTPConfig{Listen: "off"},
		ShutdownTimeout: 20 * time.Second,
		DecodeWorkers:   testDecodeWorkers(t),
	}
}

// testDecodeWorkers is the decode_workers of the tests' configs:
// PLTEST_DECODE_WORKERS (1: the sequential path), by default 3, so that the
// tests run the parallel path whatever GOMAXPROCS is, each poll split over
// the shards (splitPolls). Benchmarks take
// PLTEST_DECODE_WORKERS too when it is set, and else the default
// (GOMAXPROCS, which -cpu sets).
func testDecodeWorkers(t testing.TB) int {
	if _, ok := t.(*testing.B); ok {
		return envInt("PLTEST_DECODE_WORKERS", 0)
	}
	return envInt("PLTEST_DECODE_WORKERS", 3)
}

// fastGroup are franz-go options for quick rebalances in tests.
func fastGroup() []kgo.Opt {
	return []kgo.Opt{kgo.SessionTimeout(3 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond), kgo.RebalanceTimeout(10 * time.Second)}
}

// runTimeout bounds runUntilCaughtUp: 60 s, or PLTEST_RUN_TIMEOUT_SECONDS
// (for benchmarks under valgrind).
var runTimeout = time.Duration(envInt("PLTEST_RUN_TIMEOUT_SECONDS", 60)) * time.Second

// runUntilCaughtUp runs a Runner with UntilCaughtUp and fails the test on error.
func runUntilCaughtUp(t testing.TB, cfg ingest.Config, opts ingest.Options) *ingest.Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	opts.UntilCaughtUp = true
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	opts.KafkaOpts = append(append(opts.KafkaOpts, fastGroup()...), valgrindGroup()...)
	r, err := ingest.NewRunner(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	splitPolls(t, r)
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		// Run stops without error when its context ends: it was not
		// caught up, and the table's rows would read as missing. (kfake
		// can keep a member that died while joining in the group for
		// good, holding its partitions: tests that SIGKILL children call
		// awaitKilledMembersGone first.)
		t.Fatalf("Run was stopped by the test's %v timeout before it caught up (stats %+v)", runTimeout, r.Stats())
	}
	return r
}

// tableFiles returns the local paths of a table's active files.
func tableFiles(t testing.TB, dir string) ([]string, *commitlog.Snapshot) {
	t.Helper()
	store, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot of %s: %v", dir, err)
	}
	var paths []string
	for _, f := range snap.Files() {
		p, err := url.PathUnescape(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(dir, filepath.FromSlash(p)))
	}
	return paths, snap
}

// row is one table row as DuckDB reads it.
type row struct {
	partition, offset int64
	id, country       string
	advertiser        int64
}

// readRows reads (partition, offset, impression_id, geo.country,
// advertiser_id) of every row with DuckDB.
func readRows(t testing.TB, db *sql.DB, dir string) []row {
	t.Helper()
	files, _ := tableFiles(t, dir)
	if len(files) == 0 {
		return nil
	}
	q := "SELECT _kafka.partition, _kafka.offset, impression_id, geo.country, advertiser_id FROM " + ducktest.ReadParquet(files...)
	var out []row
	for _, r := range ducktest.Rows(t, db, q) {
		p, _ := strconv.ParseInt(r[0], 10, 64)
		o, _ := strconv.ParseInt(r[1], 10, 64)
		a, _ := strconv.ParseInt(r[4], 10, 64)
		out = append(out, row{p, o, r[2], r[3], a})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].partition != out[j].partition {
			return out[i].partition < out[j].partition
		}
		return out[i].offset < out[j].offset
	})
	return out
}

// checkExactlyOnce asserts the table holds exactly the produced good
// messages (bad ones excluded), each once, with the source's values.
func checkExactlyOnce(t testing.TB, rows []row, src *produced, bad func(i int) bool) {
	t.Helper()
	seen := map[[2]int64]bool{}
	dups, wrong := 0, 0
	for _, r := range rows {
		k := [2]int64{r.partition, r.offset}
		if seen[k] {
			dups++
			if dups < 5 {
				t.Errorf("duplicate row at partition %d offset %d", r.partition, r.offset)
			}
			continue
		}
		seen[k] = true
		i, ok := src.byCoord[k]
		if !ok {
			t.Errorf("row at partition %d offset %d was never produced", r.partition, r.offset)
			continue
		}
		want := impression(i)
		if r.id != want.ImpressionId || r.country != want.Geo.Country || r.advertiser != want.AdvertiserId {
			wrong++
			if wrong < 5 {
				t.Errorf("row at %d/%d = %+v, want message %d %v", r.partition, r.offset, r, i, want)
			}
		}
	}
	missing := 0
	good := 0
	for k, i := range src.byCoord {
		if bad != nil && bad(i) {
			continue
		}
		good++
		if !seen[k] {
			missing++
			if missing < 5 {
				t.Errorf("message %d at partition %d offset %d is missing", i, k[0], k[1])
			}
		}
	}
	if dups+missing+wrong > 0 || len(seen) != good {
		t.Fatalf("table has %d rows (%d distinct), want %d: %d duplicates, %d missing, %d wrong", len(rows), len(seen), good, dups, missing, wrong)
	}
}

// testLogger logs to the test output at debug level with
// PLTEST_LOG=debug, else warnings only.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PLTEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func tempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ingest-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// running is a Runner running in the background: see startRunner.
type running struct {
	*ingest.Runner
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// startRunner creates a Runner for cfg and opts (failing the test if
// NewRunner fails) and runs it in the background until ctx ends, stop is
// called or the test ends.
func startRunner(ctx context.Context, t testing.TB, cfg ingest.Config, opts ingest.Options) *running {
	t.Helper()
	r, err := ingest.NewRunner(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	return goRun(ctx, t, r)
}

// splitPolls makes a test's Runner split each poll's records of a table
// decoded in parallel over all its shards (a shard gets at least 1 byte,
// not minShardBytes, 256 KiB, which the tests' polls seldom reach), so
// that a Kafka partition's records of one poll go to several shards, as
// they do at high rates. Benchmarks keep the default.
func splitPolls(t testing.TB, r *ingest.Runner) {
	if _, ok := t.(*testing.B); !ok {
		ingest.SetMinShardBytes(r, 1)
	}
}

// goRun runs r in the background, as startRunner does: for a test that
// sets something up between NewRunner and Run.
func goRun(ctx context.Context, t testing.TB, r *ingest.Runner) *running {
	splitPolls(t, r)
	ctx, cancel := context.WithCancel(ctx)
	b := &running{Runner: r, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- r.Run(ctx) }()
	t.Cleanup(func() { _ = b.stop() }) // also when the test fails early: no logging after it ends
	return b
}

// wait waits for Run to return and returns its error.
func (b *running) wait() error {
	if !b.ended {
		b.err, b.ended = <-b.done, true
	}
	return b.err
}

// waitWithin is wait for at most d: false when Run has not returned by then.
func (b *running) waitWithin(d time.Duration) (bool, error) {
	if !b.ended {
		select {
		case b.err = <-b.done:
			b.ended = true
		case <-time.After(d):
			return false, nil
		}
	}
	return true, b.err
}

// stop cancels Run's context and returns Run's error.
func (b *running) stop() error {
	b.cancel()
	return b.wait()
}
