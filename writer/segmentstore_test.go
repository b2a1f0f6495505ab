package writer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// lendingStore is a SegmentStore that keeps the segments of every file, as
// ingest's uploader does until the upload lands, and a copy of the bytes
// they held when they were handed over.
type lendingStore struct {
	*mem.Store
	lent map[string][2][][]byte // key → {segments, [copy]}
}

func (s *lendingStore) PutSegments(_ context.Context, key string, segs [][]byte, size int64) error {
	snap := bytes.Join(segs, nil)
	if int64(len(snap)) != size {
		return fmt.Errorf("%s: segments of %d bytes, size says %d", key, len(snap), size)
	}
	s.lent[key] = [2][][]byte{segs, {snap}}
	return nil
}

// TestSegmentStoreKeepsSegments: a file handed to a SegmentStore stays
// as it was handed while the Writer goes on writing files of the same
// partition (whose buffers would be the first file's, reused, with a
// store that copies), and every such file reads back whole.
func TestSegmentStoreKeepsSegments(t *testing.T) {
	st := &lendingStore{Store: mem.New(), lent: map[string][2][][]byte{}}
	w, err := NewTable(Config{}, deriveTable(t, "edge/edge.binpb", "edge.Scalars", schema.Options{Partitions: []string{"f_int32"}}), st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := Kafka{Topic: "t", Timestamp: time.UnixMilli(0)}
	const rounds, rows = 4, 3000
	var files []File
	for r := range rounds {
		for i := range rows {
			// Compressible values: their pages go in the columns' chunk
			// buffers, the ones a copying store's next file reuses.
			v := bytes.Repeat(fmt.Appendf(nil, "round %d row %d;", r, i), 8)
			if err := w.Write(ctx, tagB(tagV(nil, 1, 7), 15, v), k); err != nil {
				t.Fatal(err)
			}
			k.Offset++
		}
		fs, err := w.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	if len(files) != rounds {
		t.Fatalf("%d files, want %d", len(files), rounds)
	}
	for _, f := range files {
		l, ok := st.lent[f.Path]
		if !ok {
			t.Fatalf("%s was not handed to PutSegments", f.Path)
		}
		now := bytes.Join(l[0], nil)
		if !bytes.Equal(now, l[1][0]) {
			t.Fatalf("%s: its segments changed after PutSegments (the Writer wrote into them)", f.Path)
		}
		if err := st.Put(ctx, f.Path, bytes.NewReader(now)); err != nil {
			t.Fatal(err)
		}
	}
	got := readRows(t, export(t, st.Store, files))
	if len(got) != rounds*rows {
		t.Fatalf("read %d rows, want %d", len(got), rounds*rows)
	}
	for n, row := range got {
		r, i := n/rows, n%rows
		want := string(bytes.Repeat(fmt.Appendf(nil, "round %d row %d;", r, i), 8))
		if v, _ := row["f_bytes"].([]byte); string(v) != want {
			t.Fatalf("row %d: f_bytes %q, want %q", n, v, want)
		}
	}
}
