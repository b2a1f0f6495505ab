package ingest_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/faulty"
)

// TestParallelDecodeTxnRule streams records to 12 partitions, every 37th
// one corrupt, into a Runner decoding them on a pool (decode_workers 4,
// each poll split over the shards, so that a partition's records of one
// poll are written by several: splitPolls; and 1, the sequential path, as
// the reference),
// with files rotating mid-poll (max_rows 64) and one commit whose outcome
// stays unknown for a while, so the table is dropped and re-read while
// records keep being decoded. Every commit of the main table is then read
// back with DuckDB (SELECT *): for each partition its kafkaOffsets range
// and txn version must be exactly the offsets of its rows in that commit's
// files plus the dead letters between, the ranges of successive commits
// must follow each other without a gap or an overlap, and the two tables
// together hold every record once.
func TestParallelDecodeTxnRule(t *testing.T) {
	for _, workers := range []int{4, 1} {
		t.Run(fmt.Sprintf("decode_workers=%d", workers), func(t *testing.T) {
			testParallelDecode(t, workers)
		})
	}
}

func testParallelDecode(t *testing.T, workers int) {
	const n, parts = 4800, 12
	isBad := func(i int) bool { return i%37 == 5 }
	c := startKafka(t, parts, topic)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.DecodeWorkers = workers
	cfg.Tables[0].Flush = ingest.FlushConfig{CommitInterval: 150 * time.Millisecond, MaxRows: 64}
	var fs *faulty.Store
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t), KafkaOpts: fastGroup(), WrapStore: wrapMain(&fs)})
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	// The 4th commit lands but its answer is lost, and the log cannot be
	// read back until the test lifts the faults: an unresolvable
	// ambiguous commit, after which the table's buffers are dropped.
	var ambiguous atomic.Bool
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Match: isCommit, Nth: 4, After: true})
	fs.OnAfter(func(_ context.Context, call faulty.Call, err error) {
		if call.Op == faulty.OpPutIfAbsent && isCommit(call) && err != nil {
			fs.Inject(faulty.Fault{Op: faulty.OpGet, Match: func(c faulty.Call) bool { return strings.HasPrefix(c.Key, "_delta_log/") }})
			fs.Inject(faulty.Fault{Op: faulty.OpList})
			ambiguous.Store(true)
			fs.OnAfter(nil)
		}
	})
	run := goRun(ctx, t, r)
	bg := produceInBackground(t, producer(t, c), n, 48, 10*time.Millisecond, func(i int) []byte {
		if isBad(i) {
			return corrupt(i)
		}
		return marshal(i)
	})
	waitFor(t, "no ambiguous commit", ambiguous.Load)
	reads := func() int { return fs.Calls(faulty.OpGet) + fs.Calls(faulty.OpList) }
	base := reads()
	waitFor(t, "fewer than 3 failed log reads after the ambiguous commit", func() bool { return reads() >= base+3 })
	fs.Reset()
	src := bg.wait(t)
	ends := map[int32]int64{}
	for k := range src.byCoord {
		ends[int32(k[0])] = max(ends[int32(k[0])], k[1]+1)
	}
	main, dlq := filepath.Join(dir, "ad_impressions"), filepath.Join(dir, "ad_impressions_dlq")
	waitFor(t, "not every record committed", func() bool {
		v := tableVersion(t, main)
		if v < 0 {
			return false
		}
		_, snap := tableFiles(t, main)
		for p, end := range ends {
			if wm, ok := snap.TxnVersion(commitlog.KafkaAppID("lake", topic, p)); !ok || wm != end-1 {
				return false
			}
		}
		return true
	})
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := r.Stats()[0]
	t.Logf("stats %+v", st)
	if st.RecordsConsumed <= int64(n) {
		t.Errorf("consumed %d records: the ambiguous commit did not make the Runner re-read any", st.RecordsConsumed)
	}
	db := ducktest.Open(t)
	badAt := map[[2]int64]bool{}
	for k, i := range src.byCoord {
		if isBad(i) {
			badAt[k] = true
		}
	}
	next := map[int32]int64{} // per partition, the offset the next commit must start at
	for _, cm := range readCommits(t, main) {
		if len(cm.ranges) == 0 {
			continue
		}
		got := map[int32][]int64{}
		if len(cm.files) > 0 {
			for _, row := range ducktest.Rows(t, db, "SELECT *, _kafka.partition, _kafka.offset FROM "+ducktest.ReadParquet(cm.files...)) {
				p, _ := strconv.ParseInt(row[len(row)-2], 10, 32)
				o, _ := strconv.ParseInt(row[len(row)-1], 10, 64)
				got[int32(p)] = append(got[int32(p)], o)
			}
		}
		for _, rg := range cm.ranges {
			if rg.First != next[rg.Partition] {
				t.Errorf("version %d: partition %d's range starts at %d, want %d (right after the previous commit's)", cm.version, rg.Partition, rg.First, next[rg.Partition])
			}
			next[rg.Partition] = rg.Last + 1
			if v, ok := cm.txns[commitlog.KafkaAppID("lake", topic, rg.Partition)]; !ok || v != rg.Last {
				t.Errorf("version %d: partition %d: txn version %d (present %v), want the range's last offset %d", cm.version, rg.Partition, v, ok, rg.Last)
			}
			var want []int64
			for o := rg.First; o <= rg.Last; o++ {
				if !badAt[[2]int64{int64(rg.Partition), o}] {
					want = append(want, o)
				}
			}
			rows := got[rg.Partition]
			slices.Sort(rows)
			if !slices.Equal(rows, want) {
				t.Errorf("version %d: partition %d: range [%d, %d] but its files hold %d rows %v..., want %d rows", cm.version, rg.Partition, rg.First, rg.Last, len(rows), head(rows), len(want))
			}
			delete(got, rg.Partition)
		}
		for p, rows := range got {
			t.Errorf("version %d: files hold %d rows of partition %d, which has no range in the commit", cm.version, len(rows), p)
		}
	}
	for p, end := range ends {
		if next[p] != end {
			t.Errorf("partition %d: the commits' ranges end at %d, want %d", p, next[p]-1, end-1)
		}
	}
	checkExactlyOnce(t, readRows(t, db, main), src, isBad)
	checkDeadLetters(t, db, dlq, src, isBad)
}

func head(s []int64) []int64 { return s[:min(len(s), 5)] }

// commit is one version of a table's log as the test reads it.
type commit struct {
	version int64
	files   []string                // local paths of the files it adds
	ranges  []commitlog.OffsetRange // commitInfo.kafkaOffsets
	txns    map[string]int64        // appId → version
}

// readCommits parses every log entry of the local table at dir, in version
// order.
func readCommits(t *testing.T, dir string) []commit {
	t.Helper()
	entries, err := filepath.Glob(filepath.Join(dir, "_delta_log", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(entries)
	var out []commit
	for _, e := range entries {
		v, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(e), ".json"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(e)
		if err != nil {
			t.Fatal(err)
		}
		cm := commit{version: v, txns: map[string]int64{}}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var a struct {
				Add *struct {
					Path string `json:"path"`
				} `json:"add"`
				Txn *struct {
					AppID   string `json:"appId"`
					Version int64  `json:"version"`
				} `json:"txn"`
				CommitInfo *struct {
					KafkaOffsets []commitlog.OffsetRange `json:"kafkaOffsets"`
				} `json:"commitInfo"`
			}
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("%s: %v", e, err)
			}
			switch {
			case a.Add != nil:
				p, err := url.PathUnescape(a.Add.Path)
				if err != nil {
					t.Fatal(err)
				}
				cm.files = append(cm.files, filepath.Join(dir, filepath.FromSlash(p)))
			case a.Txn != nil:
				cm.txns[a.Txn.AppID] = a.Txn.Version
			case a.CommitInfo != nil:
				cm.ranges = a.CommitInfo.KafkaOffsets
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		out = append(out, cm)
	}
	return out
}

// TestParallelDecodeFatal: with dead letters disabled, a corrupt record in
// the middle of a poll stops Run with an error naming it, in both decoding
// modes; each partition's rows in the table are then exactly the offsets
// up to its txn watermark, and the corrupt record's partition stops before
// it, although its shard and the others decoded records after it.
func TestParallelDecodeFatal(t *testing.T) {
	for _, workers := range []int{4, 1} {
		t.Run(fmt.Sprintf("decode_workers=%d", workers), func(t *testing.T) {
			const n, parts, poison = 2400, 12, 1800
			c := startKafka(t, parts, topic)
			p := producer(t, c)
			var src produced
			produce(t, p, &src, 0, poison, marshal)
			dir := tempDir(t)
			cfg := baseConfig(t, c.ListenAddrs(), dir)
			cfg.DecodeWorkers = workers
			cfg.Tables[0].DeadLetter.Disabled = true
			cfg.Tables[0].Flush = ingest.FlushConfig{CommitInterval: 100 * time.Millisecond, MaxRows: 64}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r := startRunner(ctx, t, cfg, ingest.Options{Logger: testLogger(t), KafkaOpts: fastGroup()})
			main := filepath.Join(dir, "ad_impressions")
			waitFor(t, "the first records not committed", func() bool { return r.Stats()[0].RowsCommitted == poison })
			produce(t, p, &src, poison, n, func(i int) []byte {
				if i == poison+n/8 {
					return corrupt(i)
				}
				return marshal(i)
			})
			var bad [2]int64
			for k, i := range src.byCoord {
				if i == poison+n/8 {
					bad = k
				}
			}
			err := r.wait()
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("/%d@%d cannot be decoded and dead_letter is disabled", bad[0], bad[1])) {
				t.Fatalf("Run = %v, want the error of record %d@%d", err, bad[0], bad[1])
			}
			_, snap := tableFiles(t, main)
			wm := map[int64]int64{}
			for q := range int64(parts) {
				wm[q] = -1
				if v, ok := snap.TxnVersion(commitlog.KafkaAppID("lake", topic, int32(q))); ok {
					wm[q] = v
				}
			}
			if wm[bad[0]] >= bad[1] {
				t.Errorf("partition %d committed up to %d, past its corrupt record at %d", bad[0], wm[bad[0]], bad[1])
			}
			got := map[[2]int64]bool{}
			for _, row := range readRows(t, ducktest.Open(t), main) {
				k := [2]int64{row.partition, row.offset}
				if got[k] || row.offset > wm[row.partition] {
					t.Errorf("row %v: twice, or above its partition's watermark %d", k, wm[row.partition])
				}
				got[k] = true
			}
			for q, v := range wm {
				for o := int64(0); o <= v; o++ {
					if !got[[2]int64{q, o}] {
						t.Errorf("partition %d offset %d is below the watermark %d but not in the table", q, o, v)
						break
					}
				}
			}
		})
	}
}

// TestPollTakesWholeFetch: a poll takes every record the Kafka client has
// buffered (up to memory_limit/4096 records: 262,144 at the default
// limit), not at most 10,000 of them. franz-go fetches from a broker
// again only once that broker's buffered fetch is drained, so a poll that
// left part of it behind made the poll after the next wait for the broker
// instead of finding the next fetch done while it decoded. 30,000 small
// records produced before the Runner starts come in fetches of more than
// 10,000 (1 MiB per partition; a record is under 100 bytes). At a
// memory_limit of 48 MiB the same fetches are cut at 12,288 records a
// poll: the cap is the poll loop's, not only pollRecords' (TestPollRecords).
func TestPollTakesWholeFetch(t *testing.T) {
	const n = 30_000
	c := startKafka(t, 1, topic)
	p := producer(t, c)
	var src produced
	for from := 0; from < n; from += 5000 {
		produce(t, p, &src, from, from+5000, marshal)
	}
	for _, tc := range []struct {
		limit    ingest.ByteSize
		min, max int // the largest poll's records: min < largest <= max
	}{
		{0, 10_000, n},              // the default: the whole fetch
		{48 << 20, 10_000, 48 << 8}, // 48 MiB/4096: 12,288
	} {
		cfg := baseConfig(t, c.ListenAddrs(), tempDir(t))
		cfg.Kafka.GroupID = fmt.Sprintf("lake-%d", tc.limit)
		cfg.MemoryLimit = tc.limit
		cfg.Tables[0].Flush.CommitInterval = 10 * time.Second
		reg := prometheus.NewRegistry()
		r := runUntilCaughtUp(t, cfg, ingest.Options{Registerer: reg})
		if got := r.Stats()[0].RowsCommitted; got != n {
			t.Fatalf("memory_limit %d: committed %d rows, want %d", tc.limit, got, n)
		}
		// The client's fetch size fell from memory_limit/32 once it read
		// these small snappy records (they hold several times their
		// fetched bytes), to no less than 1 MiB.
		var fetch float64
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "protolake_ingest_fetch_max_bytes" {
				fetch = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		limit := cmp.Or(tc.limit, 1<<30) // the default memory_limit
		if budget := max(float64(limit)/32, 1<<20); fetch < 1<<20 || fetch >= budget {
			t.Errorf("memory_limit %d: fetch_max_bytes %v, want at least 1 MiB and below %v", tc.limit, fetch, budget)
		}
		t.Logf("memory_limit %d: fetch_max_bytes %v", tc.limit, fetch)
		got := ingest.LargestPoll(r)
		t.Logf("memory_limit %d: largest poll %d records", tc.limit, got)
		if got <= tc.min || got > tc.max {
			t.Errorf("memory_limit %d: the largest poll returned %d records, want more than %d (a whole fetch) and at most %d", tc.limit, got, tc.min, tc.max)
		}
	}
}
