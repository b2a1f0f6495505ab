package ingest_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/writer"
)

// distinctPartitions is the Kafka partition count of the distinct-record
// benchmarks: more partitions than the cores of the machines they run on,
// so scaling is bounded by the cores, not by the partitions.
const distinctPartitions = 8

var (
	distinctMu    sync.Mutex
	distinctCache = map[int][][]byte{}
)

// distinctRecords returns n distinct AdImpressions from the demo generator
// (internal/adtrack, the messages `protolake demo` and the writer's
// benchmark corpus are made of: ~480 bytes on the wire, event times 8 s
// apart), generated once per test binary and n.
func distinctRecords(n int) ([][]byte, int64) {
	distinctMu.Lock()
	defer distinctMu.Unlock()
	recs, ok := distinctCache[n]
	if !ok {
		recs, _ = adtrack.Corpus(20261201, 16, n, 8*time.Second)
		distinctCache[n] = recs
	}
	var total int64
	for _, b := range recs {
		total += int64(len(b))
	}
	return recs, total
}

// processCPU is the process's user+system CPU time: with the in-process
// Kafka it includes the broker's work, which a real deployment does
// elsewhere, so msgs/cpu-s here is a lower bound.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports msgs/s (wall), msgs/cpu-s, cpu-ns/op, MB/cpu-s and
// cores (CPU time over wall time: how many cores the run kept busy, which
// on a shared machine is also bounded by what the others leave).
func reportRates(b *testing.B, total int64, cpu time.Duration) {
	b.ReportMetric(cpu.Seconds()/b.Elapsed().Seconds(), "cores")
	b.SetBytes(total / int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(total)/cpu.Seconds()/1e6, "MB/cpu-s")
}

// BenchmarkEndToEndDistinct: b.N distinct generated AdImpressions, produced
// to 8 partitions of an in-process kfake before the timer starts, consumed
// by one Runner until caught up into a day-partitioned Delta table on local
// disk with the default configuration; every row committed. Unlike
// BenchmarkEndToEnd (1,000 messages repeated) no two records are alike, so
// dictionaries, compression and the page index work as on real data. Run it
// with -cpu 1,2 beside BenchmarkWriterOnlyDistinct (`make bench` does and
// prints the ratios with ingest/testdata/benchratio.awk).
func BenchmarkEndToEndDistinct(b *testing.B) {
	recs, total := distinctRecords(b.N)
	c := startKafka(b, distinctPartitions, topic)
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for from := 0; from < b.N; from += 10000 {
		var batch []*kgo.Record
		for _, v := range recs[from:min(b.N, from+10000)] {
			batch = append(batch, &kgo.Record{Topic: topic, Value: v})
		}
		if err := p.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	dir := tempDir(b)
	cfg := baseConfig(b, c.ListenAddrs(), dir)
	cfg.Tables[0].Flush.CommitInterval = 10 * time.Second
	cfg.DecodeWorkers = 0 // the default: GOMAXPROCS, which -cpu sets
	runtime.GC()
	b.ResetTimer()
	start := processCPU()
	r := runUntilCaughtUp(b, cfg, ingest.Options{})
	cpu := processCPU() - start
	b.StopTimer()
	if got := r.Stats()[0].RowsCommitted; got != int64(b.N) {
		b.Fatalf("committed %d rows, want %d", got, b.N)
	}
	reportRates(b, total, cpu)
	var size int64
	err = filepath.WalkDir(filepath.Join(dir, "ad_impressions"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		info, err := d.Info()
		size += info.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/float64(b.N), "file-B/row")
}

// BenchmarkWriterOnlyDistinct is the baseline of BenchmarkEndToEndDistinct:
// the same records through the same table's writer (its schema, partitioning
// and writer.Config) into files on local disk, without Kafka, commits or
// the Runner. The ratio of the two is what consuming and committing cost.
func BenchmarkWriterOnlyDistinct(b *testing.B) {
	recs, total := distinctRecords(b.N)
	cfg := baseConfig(b, []string{"127.0.0.1:1"}, tempDir(b))
	cfg.ApplyDefaults()
	tc := cfg.Tables[0]
	files, err := schema.ReadDescriptorSet(tc.DescriptorSet)
	if err != nil {
		b.Fatal(err)
	}
	md, err := schema.FindMessage(files, tc.Message, tc.DescriptorSet)
	if err != nil {
		b.Fatal(err)
	}
	tab, err := schema.Derive(md, tc.Schema)
	if err != nil {
		b.Fatal(err)
	}
	st, err := local.New(filepath.Join(tc.URI))
	if err != nil {
		b.Fatal(err)
	}
	w, err := writer.NewTable(tc.WriterConfig(), tab, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	runtime.GC()
	b.ResetTimer()
	start := processCPU()
	for i, v := range recs {
		k := writer.Kafka{Topic: topic, Partition: int32(i % distinctPartitions), Offset: int64(i / distinctPartitions), Timestamp: now}
		if err := w.Write(ctx, v, k); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 0 {
			w.TakeFinished()
		}
	}
	if _, err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - start
	b.StopTimer()
	reportRates(b, total, cpu)
}
