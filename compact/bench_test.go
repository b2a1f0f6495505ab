package compact_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/compact"
)

// BenchmarkCompact compacts one partition of 40 files of 2,500 adtrack
// impressions each (the files the streaming writer leaves after short commit
// intervals) into one file. Bytes/s is input bytes per second. The baseline
// reads and decodes every input row without writing, the floor of any
// rewrite.
//
//	go test -run XXX -bench Compact -benchtime 5x ./compact
func BenchmarkCompact(b *testing.B) {
	tt := newTestTable(b)
	for i := 0; i < 40; i++ {
		tt.appendBatch(b, 2500, 1)
	}
	ctx := context.Background()
	snap, err := tt.tbl.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	files := localFiles(tt.dir, snap)
	size := snap.TotalSize()

	b.Run("baseline-read-rows", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]parquet.Row, 256)
		for b.Loop() {
			for _, p := range files {
				data, err := os.ReadFile(p)
				if err != nil {
					b.Fatal(err)
				}
				f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
				if err != nil {
					b.Fatal(err)
				}
				for _, rg := range f.RowGroups() {
					rows := rg.Rows()
					for {
						n, err := rows.ReadRows(buf)
						if n == 0 || err != nil {
							break
						}
					}
					rows.Close()
				}
			}
		}
	})
	for _, bc := range []struct {
		name string
		cfg  compact.Config
	}{
		{"compact", compact.Config{}},
		{"compact-sort-by-campaign", compact.Config{SortBy: "campaign_id"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			var out int64
			for b.Loop() {
				// Plan from the original snapshot every time: the commit is
				// the only thing measured twice.
				b.StopTimer()
				tt2 := cloneTable(b, tt.dir)
				b.StartTimer()
				res, err := compact.Run(ctx, tt2, bc.cfg)
				if err != nil || res.Err() != nil || len(res.Partitions) != 1 {
					b.Fatalf("%v %v %+v", err, res.Err(), res.Partitions)
				}
				out = res.Partitions[0].AddedBytes
			}
			b.ReportMetric(float64(out)/float64(size), "out/in")
		})
	}
}
