package ingest_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/storage"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceN produces n AdImpressions (1,000 distinct ones, round robin over
// the partitions) before a benchmark starts its timer.
func produceN(b *testing.B, c *kfake.Cluster, n int) {
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	vals := make([][]byte, 1000)
	for i := range vals {
		vals[i] = marshal(i)
	}
	for from := 0; from < n; from += 10000 {
		var recs []*kgo.Record
		for i := from; i < min(n, from+10000); i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Value: vals[i%len(vals)]})
		}
		if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndToEnd measures kfake → committed Delta table on local disk:
// b.N AdImpressions (about 330 bytes each) are produced to 6 partitions
// before the timer starts, then one Runner consumes them until caught up.
// Reported: msgs/s, and the peak heap (MB) sampled while it runs.
//
//	go test ./ingest -run '^$' -bench EndToEnd -benchtime 200000x -benchmem
func BenchmarkEndToEnd(b *testing.B) {
	c := startKafka(b, 6, topic)
	produceN(b, c, b.N)
	dir := tempDir(b)
	cfg := baseConfig(b, c.ListenAddrs(), dir)
	cfg.Tables[0].Flush.CommitInterval = 10 * time.Second
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	b.ResetTimer()
	r := runUntilCaughtUp(b, cfg, ingest.Options{})
	b.StopTimer()
	close(stop)
	if got := r.Stats()[0].RowsCommitted; got != int64(b.N) {
		b.Fatalf("committed %d rows, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// TestHTTP serves /healthz, /readyz and /metrics of a running Runner;
// /readyz turns 503 once it stopped.
func TestHTTP(t *testing.T) {
	c := startKafka(t, 2, topic)
	var src produced
	produce(t, producer(t, c), &src, 0, 50, marshal)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := ingest.NewRunner(ctx, baseConfig(t, c.ListenAddrs(), tempDir(t)), ingest.Options{Registerer: reg, Logger: testLogger(t), KafkaOpts: fastGroup()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ingest.Handler(r, reg))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz = %d before Run, want 503", code)
	}
	run := goRun(ctx, t, r)
	for r.Stats()[0].RowsCommitted < 50 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d while running and committing", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`protolake_ingest_rows_committed_total{table="ad_impressions"} 50`,
		`protolake_ingest_records_consumed_total{table="ad_impressions"} 50`,
		`protolake_ingest_commit_duration_seconds_count{table="ad_impressions"}`,
		`protolake_ingest_table_version{table="ad_impressions"}`,
		`protolake_ingest_partition_lag{partition="0",topic="ads.click.stream"} 0`,
		`protolake_kafka_`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz = %d after Run returned, want 503", code)
	}
}

// BenchmarkScaleOut runs 1, 2 and 3 Runners in one consumer group (one
// process, in-process Kafka) over b.N messages in 6 partitions and reports
// the rate until every message is committed, and the commits and fenced
// or failed commits the instances made. They commit to the same table with
// optimistic concurrency; on one machine they share its cores.
//
//	go test ./ingest -run '^$' -bench ScaleOut -benchtime 300000x
func BenchmarkScaleOut(b *testing.B) {
	for _, k := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("instances=%d", k), func(b *testing.B) {
			c := startKafka(b, 6, topic)
			p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			v := marshal(1)
			for from := 0; from < b.N; from += 10000 {
				var recs []*kgo.Record
				for i := from; i < min(b.N, from+10000); i++ {
					recs = append(recs, &kgo.Record{Topic: topic, Value: v})
				}
				if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
			cfg := baseConfig(b, c.ListenAddrs(), tempDir(b))
			cfg.Tables[0].Flush.CommitInterval = time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var runners []*ingest.Runner
			regs := make([]*prometheus.Registry, k)
			for i := range k {
				regs[i] = prometheus.NewRegistry()
				r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Registerer: regs[i], KafkaOpts: fastGroup()})
				if err != nil {
					b.Fatal(err)
				}
				runners = append(runners, r)
			}
			b.ResetTimer()
			var bg []*running
			for _, r := range runners {
				bg = append(bg, goRun(ctx, b, r))
			}
			for ctx.Err() == nil {
				var rows int64
				for _, r := range runners {
					rows += r.Stats()[0].RowsCommitted
				}
				if rows >= int64(b.N) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			var commits, failed float64
			for _, reg := range regs {
				mfs, _ := reg.Gather()
				for _, mf := range mfs {
					for _, m := range mf.GetMetric() {
						switch mf.GetName() {
						case "protolake_ingest_commits_total":
							commits += m.GetCounter().GetValue()
						case "protolake_ingest_commit_fenced_total", "protolake_ingest_commit_failures_total":
							failed += m.GetCounter().GetValue()
						}
					}
				}
			}
			b.ReportMetric(commits, "commits")
			b.ReportMetric(failed, "failed-commits")
			cancel()
			for _, r := range bg {
				_ = r.wait()
			}
		})
	}
}

// slowStore is a store behind a slow link: every request waits latency
// before it starts, and the bytes of all requests together move at most at
// bytesPerSec.
type slowStore struct {
	storage.Store
	latency     time.Duration
	bytesPerSec float64

	mu   sync.Mutex
	free time.Time // when the link is free again
}

// wait takes n bytes' worth of the link and sleeps until they have passed.
func (s *slowStore) wait(n int) {
	s.mu.Lock()
	now := time.Now()
	if s.free.Before(now) {
		s.free = now
	}
	s.free = s.free.Add(time.Duration(float64(n) / s.bytesPerSec * float64(time.Second)))
	until := s.free
	s.mu.Unlock()
	time.Sleep(time.Until(until))
}

type slowReader struct {
	r io.Reader
	s *slowStore
}

func (r slowReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.s.wait(n)
	return n, err
}

type slowBody struct {
	slowReader
	c io.Closer
}

func (b slowBody) Close() error { return b.c.Close() }

func (s *slowStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	time.Sleep(s.latency)
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return slowBody{slowReader{rc, s}, rc}, nil
}

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader) error {
	time.Sleep(s.latency)
	return s.Store.Put(ctx, key, slowReader{r, s})
}

func (s *slowStore) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	time.Sleep(s.latency)
	return s.Store.PutIfAbsent(ctx, key, slowReader{r, s})
}

func (s *slowStore) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	time.Sleep(s.latency)
	return s.Store.List(ctx, prefix)
}

func (s *slowStore) Delete(ctx context.Context, key string) error {
	time.Sleep(s.latency)
	return s.Store.Delete(ctx, key)
}

// BenchmarkSlowStore measures end-to-end throughput (kfake → committed
// table, from the start of Run until caught up and committed, committing
// every second; opening the tables is not timed) against local disk and
// against the same disk behind a link that adds 50 ms to every request and
// carries at most 100 MB/s, in the same run, and reports their ratio
// (slow/local; uploads and commits off the poll loop keep it near 1).
//
//	go test ./ingest -run '^$' -bench SlowStore -benchtime 2000000x
func BenchmarkSlowStore(b *testing.B) {
	c := startKafka(b, 6, topic)
	produceN(b, c, b.N)
	run := func(group string, wrap func(storage.Store) storage.Store) (float64, int64) {
		cfg := baseConfig(b, c.ListenAddrs(), tempDir(b))
		cfg.Kafka.GroupID = group
		cfg.Tables[0].Flush.CommitInterval = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Registerer: prometheus.NewRegistry(), UntilCaughtUp: true, KafkaOpts: fastGroup(),
			WrapStore: func(_ string, s storage.Store) storage.Store { return wrap(s) }})
		if err != nil {
			b.Fatal(err)
		}
		// Timed: consuming, uploading and committing everything, from the
		// start of Run to its end (opening the tables is not throughput).
		start := time.Now()
		if err := r.Run(ctx); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if got := r.Stats()[0].RowsCommitted; got != int64(b.N) {
			b.Fatalf("committed %d rows, want %d", got, b.N)
		}
		return float64(b.N) / d.Seconds(), r.Stats()[0].Commits
	}
	b.ResetTimer()
	local, lc := run("local", func(s storage.Store) storage.Store { return s })
	slow, sc := run("slow", func(s storage.Store) storage.Store {
		return &slowStore{Store: s, latency: 50 * time.Millisecond, bytesPerSec: 100e6}
	})
	b.StopTimer()
	b.ReportMetric(local, "local-msgs/s")
	b.ReportMetric(slow, "slow-msgs/s")
	b.ReportMetric(slow/local, "slow/local")
	b.ReportMetric(float64(lc), "local-commits")
	b.ReportMetric(float64(sc), "slow-commits")
}
