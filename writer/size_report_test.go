package writer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// writeCorpusFile writes the benchmark corpus as one file with cfg and
// returns its bytes.
func writeCorpusFile(t testing.TB, cfg Config) []byte {
	t.Helper()
	msgs, _ := benchCorpus()
	tab := deriveTable(t, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression", schema.Options{})
	st := mem.New()
	w, err := NewTable(cfg, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := Kafka{Topic: "ads", Partition: 3, Timestamp: benchKafkaTime}
	for i, m := range msgs {
		k.Offset = int64(i)
		if err := w.Write(ctx, m, k); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	return readStored(t, st, files[0].Path)
}

// columnSizes returns each leaf column's compressed chunk size by dotted
// path, with its codec and encodings, read by parquet-go.
func columnSizes(t testing.TB, b []byte) (map[string]int64, map[string]string, int64) {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	sizes, desc := map[string]int64{}, map[string]string{}
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			p := strings.Join(c.MetaData.PathInSchema, ".")
			sizes[p] += c.MetaData.TotalCompressedSize
			desc[p] = fmt.Sprintf("%s %v", c.MetaData.Codec, c.MetaData.Encoding)
		}
	}
	return sizes, desc, pf.NumRows()
}

// TestSizeReport prints bytes per row of each column of the corpus written
// with the default Config (go test -run SizeReport -v). With
// PLTEST_SIZE_REPORT_DIR set it also writes the file there, for the
// Spark comparison in docs/operations.md.
func TestSizeReport(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 rows")
	}
	b := writeCorpusFile(t, Config{})
	sizes, desc, rows := columnSizes(t, b)
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return sizes[names[i]] > sizes[names[j]] })
	for _, n := range names {
		t.Logf("%-45s %7.2f B/row  %s", n, float64(sizes[n])/float64(rows), desc[n])
	}
	t.Logf("file: %d bytes, %d rows, %.1f B/row", len(b), rows, float64(len(b))/float64(rows))
	if dir := os.Getenv("PLTEST_SIZE_REPORT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "protolake.parquet"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
