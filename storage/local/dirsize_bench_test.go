package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/storage/local"
)

// BenchmarkPutIfAbsentDirSize asks whether a commit's PutIfAbsent (temp
// file, write, fsync, link, remove the temp name, fsync the directory)
// costs more in a _delta_log of 20,000 entries than in one of 100. The two
// directories are written alternately within each op (same moment, same
// machine load), and the per-write times are kept, so it reports medians
// and 90th percentiles per size (p50-100, p50-20000, ...) and their ratio
// (x100-p50, x100-p90), which a loaded machine's fsync outliers do not
// swing the way they swing a mean. Each op writes one key in each
// directory; the key is deleted off the clock.
func BenchmarkPutIfAbsentDirSize(b *testing.B) {
	ctx := context.Background()
	sizes := []int{100, 20000}
	stores := make([]*local.Store, len(sizes))
	for i, n := range sizes {
		s, err := local.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Join(s.Root(), "_delta_log")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for v := 0; v < n; v++ { // setup: no fsync
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.json", v)), []byte(`{"commitInfo":{}}`), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		stores[i] = s
	}
	body := strings.Repeat("x", 3000) // about one streaming commit
	times := make([][]time.Duration, len(sizes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, s := range stores {
			key := fmt.Sprintf("_delta_log/%020d.json", sizes[j]+i)
			start := time.Now()
			if err := s.PutIfAbsent(ctx, key, strings.NewReader(body)); err != nil {
				b.Fatal(err)
			}
			times[j] = append(times[j], time.Since(start))
			b.StopTimer()
			if err := s.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	q := func(d []time.Duration, p float64) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Microseconds())
	}
	for j, n := range sizes {
		b.ReportMetric(q(times[j], 0.5), fmt.Sprintf("p50-%d-µs", n))
		b.ReportMetric(q(times[j], 0.9), fmt.Sprintf("p90-%d-µs", n))
	}
	last := len(sizes) - 1
	b.ReportMetric(q(times[last], 0.5)/q(times[0], 0.5), "x100-p50")
	b.ReportMetric(q(times[last], 0.9)/q(times[0], 0.9), "x100-p90")
}
