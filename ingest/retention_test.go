package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestExpiredRecords: offsets above a table's watermark that Kafka deleted
// (retention; DeleteRecords here) before they were committed are lost. The
// next run says so, per partition, with a WARN naming the lost offsets and
// counts them in offsets_expired_total, and commits every record left,
// exactly once. (franz-go alone logs the reset to the log start at INFO.)
func TestExpiredRecords(t *testing.T) {
	const parts, lostPer = 2, 10
	c := startKafka(t, parts, topic)
	p := producer(t, c)
	var src produced
	produce(t, p, &src, 0, 100, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	runUntilCaughtUp(t, cfg, ingest.Options{})
	produce(t, p, &src, 100, 200, marshal)

	_, snap := tableFiles(t, filepath.Join(dir, "ad_impressions"))
	del := kadm.Offsets{}
	lost := map[int]bool{}
	var wants []string
	for part := range int32(parts) {
		wm, ok := snap.TxnVersion(commitlog.KafkaAppID("lake", topic, part))
		if !ok {
			t.Fatalf("no watermark for partition %d after the first run", part)
		}
		del.Add(kadm.Offset{Topic: topic, Partition: part, At: wm + 1 + lostPer})
		for k, i := range src.byCoord {
			if k[0] == int64(part) && k[1] > wm && k[1] <= wm+lostPer {
				lost[i] = true
			}
		}
		wants = append(wants, fmt.Sprintf("partition=%d watermark=%d log_start=%d first_lost=%d last_lost=%d lost_offsets=%d",
			part, wm, wm+1+lostPer, wm+1, wm+lostPer, lostPer))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(p).DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}

	var logs strings.Builder // slog's handler serializes its writes
	reg := prometheus.NewRegistry()
	r := runUntilCaughtUp(t, cfg, ingest.Options{Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	out := logs.String()
	for _, w := range wants {
		if !strings.Contains(out, "level=WARN msg=\"Kafka deleted records before they were committed (retention): they are lost; resuming at the log start\" table=ad_impressions topic="+topic+" "+w) {
			t.Errorf("no WARN with %q; logs:\n%s", w, out)
		}
	}
	var expired float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "protolake_ingest_offsets_expired_total" {
			expired = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if expired != parts*lostPer {
		t.Errorf("offsets_expired_total = %v, want %d", expired, parts*lostPer)
	}
	if st := r.Stats()[0]; st.RowsCommitted != 100-parts*lostPer {
		t.Errorf("second run committed %d rows, want %d", st.RowsCommitted, 100-parts*lostPer)
	}
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, func(i int) bool { return lost[i] })
}
