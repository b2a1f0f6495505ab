package ingest_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"google.golang.org/protobuf/encoding/protowire"
)

// corrupt is a message whose impression_id is not valid UTF-8: the writer
// rejects it at field path impression_id.
func corrupt(i int) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{'x', 0xff, 0xfe, byte(i)})
	return b
}

// TestDeadLetters interleaves 1% corrupt messages: the table has the good
// ones, the dead-letter table the bad ones with their coordinates, raw bytes,
// error and field path, and together they hold every message once.
func TestDeadLetters(t *testing.T) {
	const n = 2000
	isBad := func(i int) bool { return i%100 == 37 }
	c := startKafka(t, 6, topic)
	var src produced
	produce(t, producer(t, c), &src, 0, n, func(i int) []byte {
		if isBad(i) {
			return corrupt(i)
		}
		return marshal(i)
	})
	dir := tempDir(t)
	r := runUntilCaughtUp(t, baseConfig(t, c.ListenAddrs(), dir), ingest.Options{})
	if st := r.Stats()[0]; st.DeadLetters != n/100 || st.RowsCommitted != n-n/100 {
		t.Errorf("Stats = %+v, want %d rows and %d dead letters", st, n-n/100, n/100)
	}
	db := ducktest.Open(t)
	checkExactlyOnce(t, readRows(t, db, filepath.Join(dir, "ad_impressions")), &src, isBad)

	files, _ := tableFiles(t, filepath.Join(dir, "ad_impressions_dlq"))
	got := ducktest.Rows(t, db, "SELECT _kafka.topic, _kafka.partition, _kafka.offset, hex(value), hex(key), field_path, error, descriptor_fingerprint <> '', message, \"table\" FROM "+
		ducktest.ReadParquet(files...)+" ORDER BY 2, 3")
	want := map[[2]int64]int{}
	for k, i := range src.byCoord {
		if isBad(i) {
			want[k] = i
		}
	}
	if len(got) != len(want) {
		t.Fatalf("dead-letter table has %d rows, want %d", len(got), len(want))
	}
	for _, r := range got {
		p, _ := strconv.ParseInt(r[1], 10, 64)
		o, _ := strconv.ParseInt(r[2], 10, 64)
		i, ok := want[[2]int64{p, o}]
		if !ok {
			t.Errorf("dead letter at %s/%d is not a corrupt message", r[1], o)
			continue
		}
		delete(want, [2]int64{p, o})
		wantRow := []string{topic, r[1], r[2], hexUpper(corrupt(i)), hexUpper([]byte(strconv.Itoa(i))), "impression_id", r[6], "true", "adtrack.v1.AdImpression", "ad_impressions"}
		for j := range wantRow {
			if r[j] != wantRow[j] {
				t.Errorf("dead letter %d column %d = %q, want %q", i, j, r[j], wantRow[j])
			}
		}
		if r[6] == "" {
			t.Errorf("dead letter %d has no error text", i)
		}
	}
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
