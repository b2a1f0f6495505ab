package commitlog

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

// wideSnapshot is a snapshot of n files with wide statistics (bigStats, 32
// columns, about 3 KB per file), whose checkpoint is large.
func wideSnapshot(n int) *Snapshot {
	s := bigSnapshot(0)
	for i := 0; i < n; i++ {
		day := fmt.Sprintf("2026-01-%02d", i%28+1)
		s.apply(Action{Add: &Add{
			Path:            fmt.Sprintf("day=%s/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", day, i),
			PartitionValues: map[string]*string{"day": &day},
			Size:            int64(1000 + i), ModificationTime: 1767225600000, DataChange: true,
			Stats: bigStats(i, 32),
		}})
	}
	return s.freeze()
}

// s3Requests counts, on the wire in front of an S3 server, the requests
// that upload an object: conditional PutObjects and multipart parts.
type s3Requests struct {
	conditionalPuts, parts, completes atomic.Int64
}

// countingS3 puts a counting proxy in front of the S3 server of cfg and
// returns a store (with the smallest part size) that goes through it.
func countingS3(tb testing.TB, cfg s3.Config) (*s3.Store, *s3Requests) {
	tb.Helper()
	target, err := url.Parse(cfg.Endpoint)
	if err != nil {
		tb.Fatal(err)
	}
	var n s3Requests
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*":
			n.conditionalPuts.Add(1)
		case r.Method == http.MethodPut && q.Get("uploadId") != "":
			n.parts.Add(1)
		case r.Method == http.MethodPost && q.Get("uploadId") != "":
			n.completes.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	cfg.Endpoint = srv.URL
	cfg.PartSize = s3.MinPartSize
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return st, &n
}

// TestCheckpointStreamsToS3: a checkpoint larger than the S3 part size is
// uploaded in parts as it is encoded (a multipart upload, visible only when
// complete), not read whole into memory for one conditional PutObject; it
// reads back as the snapshot it was written from, and writing it again
// replaces it with an equivalent one.
func TestCheckpointStreamsToS3(t *testing.T) {
	ctx := context.Background()
	st, n := countingS3(t, s3test.StartGoFakeS3(t))
	tbl, err := Open(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := wideSnapshot(25000)
	for round := 1; round <= 2; round++ {
		info, err := tbl.writeCheckpoint(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if info.SizeInBytes <= 2*s3.MinPartSize {
			t.Fatalf("checkpoint of %d bytes: the test needs more than 2 parts of %d", info.SizeInBytes, s3.MinPartSize)
		}
		wantParts := (info.SizeInBytes + s3.MinPartSize - 1) / s3.MinPartSize
		if c, p, done := n.conditionalPuts.Load(), n.parts.Load(), n.completes.Load(); c != 0 || p != int64(round)*wantParts || done != int64(round) {
			t.Errorf("round %d: %d conditional PutObjects, %d parts, %d completions; want a multipart upload of %d parts each time, nothing conditional", round, c, p, done, wantParts)
		}
	}
	back := newSnapshot()
	if err := loadCheckpoint(ctx, st, []logFile{{key: CheckpointKey(s.Version())}}, back); err != nil {
		t.Fatal(err)
	}
	if back.NumFiles() != s.NumFiles() || !back.hasProtocol || !back.hasMetadata {
		t.Errorf("read back %d files (protocol %v, metaData %v), want %d", back.NumFiles(), back.hasProtocol, back.hasMetadata, s.NumFiles())
	}
}

// heapPeak samples the heap's object bytes every millisecond until stop is
// called, which returns the peak above the level when it started (after a
// GC). The GC runs at GOGC=1 meanwhile, so that the samples are close to
// the live heap, not to garbage waiting for a collection.
func heapPeak() (stop func() uint64) {
	gogc := debug.SetGCPercent(1)
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		debug.SetGCPercent(gogc)
		if p := peak.Load(); p > base {
			return p - base
		}
		return 0
	}
}

// BenchmarkCheckpointWriteMemory measures the peak heap (sampled every
// millisecond, above the level before the write) of writing a large
// checkpoint (files=N, about 3 KB of statistics per file) to MinIO with
// the default 16 MiB part size: write=put-if-absent is the old path (one
// conditional PutObject, the object read whole into memory first),
// write=put the streamed multipart upload checkpoints use now. It reports
// peak-MiB, the checkpoint's cp-MiB, and peak/cp. MinIO runs when
// PLTEST_MINIO names its binary.
func BenchmarkCheckpointWriteMemory(b *testing.B) {
	cfg := s3test.StartMinIO(b)
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := Open(st, Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, files := range benchSizes(b, "PLTEST_BENCH_CHECKPOINT_FILES", []int{20000, 100000}) {
		s := wideSnapshot(files)
		for _, w := range []struct {
			name  string
			write func(ctx context.Context, key string, r io.Reader) error
		}{{"put-if-absent", st.PutIfAbsent}, {"put", st.Put}} {
			b.Run(fmt.Sprintf("files=%d/write=%s", files, w.name), func(b *testing.B) {
				ctx := context.Background()
				var peak uint64
				var info CheckpointInfo
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					if err := st.Delete(ctx, CheckpointKey(s.Version())); err != nil {
						b.Fatal(err)
					}
					stop := heapPeak()
					b.StartTimer()
					info, err = tbl.streamCheckpoint(ctx, s, w.write)
					b.StopTimer()
					peak = max(peak, stop())
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.StopTimer()
				mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
				b.ReportMetric(mib(peak), "peak-MiB")
				b.ReportMetric(mib(uint64(info.SizeInBytes)), "cp-MiB")
				b.ReportMetric(float64(peak)/float64(info.SizeInBytes), "peak/cp")
			})
		}
	}
}
