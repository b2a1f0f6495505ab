package writer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/mem"
)

// benchRowsPerFile finishes a file every this many rows in all three
// benchmarks, so each does the same work per message including file
// assembly and the Put (about 75 MB of input per file).
const benchRowsPerFile = 100_000

var benchKafkaTime = time.UnixMilli(1_790_000_000_000)

// cpuTime is the process's user+system CPU time. With -cpu 1 the process
// runs on one core; CPU time per message is what the targets are about and,
// unlike wall time, it is not inflated when other processes share the
// machine (it still includes GC work).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCommon reports throughput from CPU time: cpu-ns/op, msgs/s per
// core and input MB/s per core, and the corpus's average message size
// (msg-B); start is cpuTime() at ResetTimer.
func reportCommon(b *testing.B, total int64, n int, start time.Duration) {
	b.SetBytes(total / int64(n))
	b.ReportMetric(float64(total)/float64(n), "msg-B")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	cpu := (cpuTime() - start).Seconds()
	b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/cpu, "msgs/cpu-s")
	b.ReportMetric(float64(total)/float64(n)*float64(b.N)/cpu/1e6, "MB/cpu-s")
}

// discardStore reads what is Put and keeps nothing: it separates the
// writer's own allocations from the in-memory store's copy of each file.
type discardStore struct{ storage.Store }

func (discardStore) Put(_ context.Context, _ string, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// BenchmarkWriter: wire bytes → finished zstd Parquet files in a mem store.
func BenchmarkWriter(b *testing.B) { benchWriter(b, Config{}, true, benchCorpus, schema.Options{}) }

// BenchmarkWriter545 is BenchmarkWriter on messages of 545 bytes on
// average (benchCorpus545), the message size of issue 16's writer-only
// target; it reports the average as msg-B.
func BenchmarkWriter545(b *testing.B) {
	msgs, total := benchCorpus545()
	if avg := float64(total) / float64(len(msgs)); avg < corpus545Mean || avg >= corpus545Mean+1 {
		b.Fatalf("corpus545 averages %.1f bytes, want %d", avg, corpus545Mean)
	}
	benchWriter(b, Config{}, true, benchCorpus545, schema.Options{})
}

// BenchmarkWriterDiscardStore is BenchmarkWriter with a store that keeps
// nothing, to show the writer's own allocations.
func BenchmarkWriterDiscardStore(b *testing.B) {
	benchWriter(b, Config{}, false, benchCorpus, schema.Options{})
}

// BenchmarkWriterDay is BenchmarkWriter into a table partitioned by
// day(event_time), the partitioning of the ingest benchmarks' table
// (ingest's baseConfig): the corpus's event times, 8 s apart, span ten
// days, so each pass of it fills ten files of about 10,800 rows, finished
// at the pass's end as a Runner's commit finishes its open files. It fails
// unless the warm-up pass wrote files of more than one partition.
func BenchmarkWriterDay(b *testing.B) {
	benchWriter(b, Config{}, true, benchCorpus, schema.Options{Partitions: []string{"day(event_time)"}})
}

// BenchmarkWriterCompression is BenchmarkWriter at each compression
// setting, reporting the output's bytes per row (file-B/row) beside the CPU
// time: what docs/operations.md quotes as the cost of each setting.
func BenchmarkWriterCompression(b *testing.B) {
	for _, c := range []Config{
		{Compression: CompressionZstd, ZstdLevel: 1},
		{Compression: CompressionZstd, ZstdLevel: 3},
		{Compression: CompressionZstd, ZstdLevel: 7},
		{Compression: CompressionSnappy},
		{Compression: CompressionLZ4},
		{Compression: CompressionNone},
	} {
		name := string(c.Compression)
		if c.ZstdLevel != 0 {
			name = fmt.Sprintf("zstd-%d", c.ZstdLevel)
		}
		b.Run(name, func(b *testing.B) { benchWriter(b, c, false, benchCorpus, schema.Options{}) })
	}
}

// benchWriter writes corpus through a Writer for the AdImpression table
// derived with opts: one warm-up pass, then b.N messages, finishing every
// open file at the end of each pass of the corpus (without partitions the
// pass's last row fills its 100,000-row file, so nothing else is open).
func benchWriter(b *testing.B, cfg Config, memStore bool, corpus func() ([][]byte, int64), opts schema.Options) {
	msgs, total := corpus()
	tab := deriveTable(b, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression", opts)
	var st storage.Store = discardStore{}
	if memStore {
		st = mem.New()
	}
	cfg.MaxRows = benchRowsPerFile
	cfg.NoDictionary = os.Getenv("NODICT") != ""
	w, err := NewTable(cfg, tab, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	k := Kafka{Topic: "ads", Partition: 3, Timestamp: benchKafkaTime}
	// Warm up one file's worth so the steady state is measured.
	for i := range benchRowsPerFile {
		k.Offset = int64(i)
		if err := w.Write(ctx, msgs[i%len(msgs)], k); err != nil {
			b.Fatal(err)
		}
	}
	warm, err := w.Flush(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if len(opts.Partitions) > 0 {
		dirs := map[string]bool{}
		for _, f := range warm {
			dirs[path.Dir(f.Path)] = true
		}
		if len(dirs) < 2 {
			b.Fatalf("partitioned by %v, the warm-up pass wrote files in %d partition directories, want more than one", opts.Partitions, len(dirs))
		}
	}
	var fileBytes, fileRows int64
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		k.Offset = int64(i)
		if err := w.Write(ctx, msgs[i%len(msgs)], k); err != nil {
			b.Fatal(err)
		}

		if i%len(msgs) == len(msgs)-1 {
			files, err := w.Flush(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range files {
				fileBytes += f.Size
				fileRows += f.Rows
			}
			if memStore { // keep the store from growing
				w.store = mem.New()
			}
		}
	}
	b.StopTimer()
	reportCommon(b, total, len(msgs), start)
	if fileRows > 0 {
		b.ReportMetric(float64(fileBytes)/float64(fileRows), "file-B/row")
	}
	if w.peakRows > 0 {
		// Memory of a full file: compressed pages per row, plus the fixed
		// part (current raw pages, dictionaries) per open file.
		b.ReportMetric(float64(w.peakChunk)/float64(w.peakRows), "buf-B/row")
		b.ReportMetric(float64(w.peakBuf-w.peakChunk)/(1<<20), "fixed-MiB/file")
	}
	if _, err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkBaselineGenerated(b *testing.B) {
	msgs, total := benchCorpus()
	st := mem.New()
	g := newGenBaseline(benchRowsPerFile, st.Put)
	for i := range benchRowsPerFile {
		if err := g.write(msgs[i%len(msgs)], int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	var peak int64
	for i := 0; i < b.N; i++ {
		if err := g.write(msgs[i%len(msgs)], int64(i)); err != nil {
			b.Fatal(err)
		}
		if i&1023 == 0 && g.n > 10_000 {
			peak = max(peak, (int64(g.buf.Len())+g.w.Size())/int64(g.n))
		}
		if i%len(msgs) == len(msgs)-1 {
			st = mem.New()
			g.put = st.Put
		}
	}
	b.StopTimer()
	reportCommon(b, total, len(msgs), start)
	b.ReportMetric(float64(peak), "buf-B/row")
}

func BenchmarkBaselineDynamic(b *testing.B) {
	msgs, total := benchCorpus()
	tab := deriveTable(b, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression", schema.Options{})
	var buf bytes.Buffer
	pw := parquet.NewWriter(&buf, tab.Parquet, parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}), parquet.DataPageVersion(1))
	st := mem.New()
	ctx := context.Background()
	n, files := 0, 0
	var row parquet.Row
	kafka := tab.Plan.Kafka
	write := func(m []byte, off int64) error {
		msg := dynamicpb.NewMessage(tab.Plan.Message)
		if err := proto.Unmarshal(m, msg); err != nil {
			return err
		}
		row = shredDynamic(row[:0], tab.Plan.Root, msg, 0)
		row = append(row,
			parquet.ByteArrayValue([]byte("ads")).Level(0, 2, kafka.Topic),
			parquet.Int32Value(3).Level(0, 2, kafka.Partition),
			parquet.Int64Value(off).Level(0, 2, kafka.Offset),
			parquet.Int64Value(benchKafkaTime.UnixMicro()).Level(0, 2, kafka.Timestamp),
			parquet.NullValue().Level(0, 0, tab.Plan.Unknown))
		sortRow(row)
		if _, err := pw.WriteRows([]parquet.Row{row}); err != nil {
			return err
		}
		n++
		if n == benchRowsPerFile {
			if err := pw.Close(); err != nil {
				return err
			}
			files++
			if err := st.Put(ctx, fmt.Sprintf("dyn/part-%d.parquet", files), bytes.NewReader(buf.Bytes())); err != nil {
				return err
			}
			buf.Reset()
			pw.Reset(&buf)
			n = 0
		}
		return nil
	}
	for i := range benchRowsPerFile {
		if err := write(msgs[i%len(msgs)], int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := write(msgs[i%len(msgs)], int64(i)); err != nil {
			b.Fatal(err)
		}
		if i%len(msgs) == len(msgs)-1 {
			st = mem.New()
		}
	}
	b.StopTimer()
	reportCommon(b, total, len(msgs), start)
}
