package ingest_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
)

// TestAssignmentReadsNewCommitsOnly: the watermarks of assigned partitions
// are read by bringing the snapshot the Runner opened the table with up to
// date, so a run lists the table's log once (when it opens it), not again
// on assignment.
func TestAssignmentReadsNewCommitsOnly(t *testing.T) {
	const n = 300
	c := startKafka(t, 3, topic)
	p := producer(t, c)
	var src produced
	produce(t, p, &src, 0, n, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	runUntilCaughtUp(t, cfg, ingest.Options{}) // the table has commits and watermarks
	produce(t, p, &src, n, 2*n, marshal)
	var logLists atomic.Int64
	r := runUntilCaughtUp(t, cfg, ingest.Options{WrapStore: func(name string, s storage.Store) storage.Store {
		if name != "ad_impressions" {
			return s
		}
		fs := faulty.New(s)
		fs.OnBefore(func(_ context.Context, c faulty.Call) error {
			if c.Op == faulty.OpList && strings.HasPrefix(c.Key, commitlog.LogDir) {
				logLists.Add(1)
			}
			return nil
		})
		return fs
	}})
	if got := r.Stats()[0].RowsCommitted; got != n {
		t.Errorf("second run committed %d rows, want %d", got, n)
	}
	if got := logLists.Load(); got != 1 {
		t.Errorf("the run listed the table's log %d times, want 1 (opening it)", got)
	}
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
}
