package ingest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
)

// TestKcatInterop ingests messages produced by a second Kafka client, kcat
// (librdkafka), into a kfake listener: each file argument of `kcat -P` is one
// message, so binary protobuf values go through unchanged.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (Debian package kcat; `make test` installs it): skipping the second-client interop test")
	}
	const n = 120
	c := startKafka(t, 6, topic)
	dir := tempDir(t)
	var files []string
	for i := range n {
		f := filepath.Join(dir, "msg-"+strconv.Itoa(i))
		if err := os.WriteFile(f, marshal(i), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	args := append([]string{"-P", "-b", c.ListenAddrs()[0], "-t", topic, "-p", "-1", "-X", "broker.address.family=v4"}, files...)
	if out, err := exec.Command(kcat, args...).CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	r := runUntilCaughtUp(t, baseConfig(t, c.ListenAddrs(), dir), ingest.Options{})
	if st := r.Stats()[0]; st.RowsCommitted != n || st.DeadLetters != 0 {
		t.Fatalf("Stats = %+v, want %d rows and no dead letters", st, n)
	}
	files2, _ := tableFiles(t, filepath.Join(dir, "ad_impressions"))
	got := ducktest.Rows(t, ducktest.Open(t), "SELECT count(DISTINCT impression_id), min(impression_id), max(impression_id), count(DISTINCT (_kafka.partition, _kafka.offset)) FROM "+ducktest.ReadParquet(files2...))
	want := fmt.Sprint([]string{strconv.Itoa(n), impression(0).ImpressionId, impression(n - 1).ImpressionId, strconv.Itoa(n)})
	if fmt.Sprint(got[0]) != want {
		t.Fatalf("DuckDB reads %v, want %v", got[0], want)
	}
}
