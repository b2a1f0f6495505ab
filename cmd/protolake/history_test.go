package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage/local"
)

// lineageTable writes a table with appends carrying Kafka offsets and row
// metrics, a proto pin change, and a removal.
func lineageTable(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(st, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"day","type":"string","nullable":true,"metadata":{}}]}`
	snap, err := tbl.Create(ctx, commitlog.TableSpec{SchemaString: schema, PartitionColumns: []string{"day"},
		Proto: commitlog.ProtoPin{Message: "ads.v1.Click", Fingerprint: strings.Repeat("a", 64), Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(f func(tx *commitlog.Transaction)) {
		t.Helper()
		tx := tbl.NewTransaction(snap)
		f(tx)
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if snap, err = tbl.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		commit(func(tx *commitlog.Transaction) {
			tx.SetOperation(commitlog.OpStreamingUpdate, nil)
			tx.Add(commitlog.Add{Path: fmt.Sprintf("day=d/part-%d.parquet", i), PartitionValues: map[string]*string{"day": ptr("d")}, Size: 100, DataChange: true})
			tx.AddKafkaOffsets("g", commitlog.OffsetRange{Topic: "clicks", Partition: 0, First: int64(i * 10), Last: int64(i*10 + 9)})
			tx.AddKafkaOffsets("g", commitlog.OffsetRange{Topic: "clicks", Partition: 1, First: int64(i * 5), Last: int64(i*5 + 4)})
			tx.SetMetrics(map[string]string{"numOutputRows": "15", "numAddedFiles": "1"})
		})
	}
	commit(func(tx *commitlog.Transaction) {
		md := snap.Metadata()
		md.Configuration = map[string]string{commitlog.PropProtoMessage: "ads.v1.Click", commitlog.PropProtoFingerprint: strings.Repeat("b", 64), commitlog.PropProtoVersion: "v2"}
		tx.UpdateMetadata(md)
		tx.SetOperation(commitlog.OpChangeMetadata, nil)
	})
	commit(func(tx *commitlog.Transaction) {
		f := snap.Files()
		tx.Remove(f[0].ToRemove(false), f[1].ToRemove(false))
		tx.Add(commitlog.Add{Path: "day=d/part-big.parquet", PartitionValues: map[string]*string{"day": ptr("d")}, Size: 200})
		tx.SetOperation(commitlog.OpOptimize, nil)
	})
	return dir
}

// logFacts reads the commit files directly (not through commitlog): per
// version, the operation, timestamp, adds, removes and Kafka offsets.
type logFact struct {
	op         string
	ts         int64
	adds, rems int
	offsets    []string
	pinVersion string
}

func readLogFacts(t *testing.T, dir string) map[int64]logFact {
	t.Helper()
	out := map[int64]logFact{}
	paths, _ := filepath.Glob(filepath.Join(dir, "_delta_log", "*.json"))
	for _, p := range paths {
		var v int64
		fmt.Sscanf(filepath.Base(p), "%020d.json", &v)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var fact logFact
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var a map[string]json.RawMessage
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			switch {
			case a["add"] != nil:
				fact.adds++
			case a["remove"] != nil:
				fact.rems++
			case a["metaData"] != nil:
				var md struct{ Configuration map[string]string }
				json.Unmarshal(a["metaData"], &md)
				fact.pinVersion = md.Configuration["protolake.proto.version"]
			case a["commitInfo"] != nil:
				var ci struct {
					Timestamp    int64
					Operation    string
					KafkaOffsets []struct {
						Topic       string
						Partition   int32
						First, Last int64
					}
				}
				json.Unmarshal(a["commitInfo"], &ci)
				fact.op, fact.ts = ci.Operation, ci.Timestamp
				for _, r := range ci.KafkaOffsets {
					fact.offsets = append(fact.offsets, fmt.Sprintf("%s/%d:%d-%d", r.Topic, r.Partition, r.First, r.Last))
				}
			}
		}
		f.Close()
		out[v] = fact
	}
	return out
}

// TestHistoryMatchesLog compares `history --json` and the text form with
// the commit files read directly.
func TestHistoryMatchesLog(t *testing.T) {
	dir := lineageTable(t)
	facts := readLogFacts(t, dir)
	stdout, stderr, code := runCLI(t, "history", dir, "--json")
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, stderr)
	}
	var got []historyEntry
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("history --json: %v\n%s", err, stdout)
	}
	if len(got) != len(facts) {
		t.Fatalf("%d entries, log has %d commits", len(got), len(facts))
	}
	pin := ""
	for i := len(got) - 1; i >= 0; i-- { // oldest first
		e := got[i]
		f := facts[e.Version]
		if i > 0 && got[i-1].Version != e.Version+1 {
			t.Errorf("versions not newest first and contiguous: %d then %d", e.Version, got[i-1].Version)
		}
		if f.pinVersion != "" {
			pin = f.pinVersion
		}
		var offs []string
		for _, r := range e.KafkaOffsets {
			offs = append(offs, fmt.Sprintf("%s/%d:%d-%d", r.Topic, r.Partition, r.First, r.Last))
		}
		if e.Operation != f.op || e.Timestamp == nil || e.Timestamp.UnixMilli() != f.ts || e.FilesAdded != f.adds || e.FilesRemoved != f.rems ||
			strings.Join(offs, " ") != strings.Join(f.offsets, " ") || e.Proto.Version != pin || e.ProtoChanged != (f.pinVersion != "") {
			t.Errorf("version %d: %+v\nlog says %+v (pin %s)", e.Version, e, f, pin)
		}
	}
	if got[len(got)-2].RowsAdded == nil || *got[len(got)-2].RowsAdded != 15 {
		t.Errorf("version 1: rows added %v, want 15", got[len(got)-2].RowsAdded)
	}
	if got[0].Proto.Fingerprint != strings.Repeat("b", 64) || got[len(got)-1].Proto.Fingerprint != strings.Repeat("a", 64) {
		t.Errorf("fingerprints: newest %s, oldest %s", got[0].Proto.Fingerprint, got[len(got)-1].Proto.Fingerprint)
	}

	// --limit reads only the newest commits and says the same about them,
	// including whether the pin changed at the oldest one shown.
	for _, n := range []string{"1", "2", "3"} {
		out, _, _ := runCLI(t, "history", dir, "--json", "--limit", n)
		var lim []historyEntry
		if err := json.Unmarshal([]byte(out), &lim); err != nil {
			t.Fatal(err)
		}
		k, _ := strconv.Atoi(n)
		a, _ := json.Marshal(lim)
		b, _ := json.Marshal(got[:k])
		if string(a) != string(b) {
			t.Errorf("--limit %s:\n got %s\nwant %s", n, a, b)
		}
	}

	// Text: a header and one line per version; --limit keeps the newest.
	stdout, _, code = runCLI(t, "history", "--limit", "2", dir)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("history --limit 2: exit %d, %d lines:\n%s", code, len(lines), stdout)
	}
	if !strings.HasPrefix(lines[1], "5 ") || !strings.Contains(lines[1], "OPTIMIZE") || !strings.Contains(lines[1], "+1/-2") || !strings.Contains(lines[1], "v2") {
		t.Errorf("newest line %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "4 ") || !strings.Contains(lines[2], "v2*") {
		t.Errorf("pin change line %q, want v2 marked *", lines[2])
	}
	stdout, _, _ = runCLI(t, "history", dir)
	if !strings.Contains(stdout, "clicks/0:10-19 clicks/1:5-9") || !strings.Contains(stdout, "+15/-?") || !strings.Contains(stdout, "aaaaaaaaaaaa") {
		t.Errorf("full history lacks offsets, rows or fingerprint:\n%s", stdout)
	}
	_ = time.Now
}

func TestMaintenanceUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"history"},
		{"history", dir, "--limit", "-1"},
		{"compact", dir, dir},
		{"compact", dir, "--min-files", "0"},
		{"compact", dir, "--target-size", "lots"},
		{"vacuum", dir, "--retain", "soon"},
		{"vacuum", dir, "--log-format", "xml"},
		{"compact", dir, "--log-format", "xml"},
		{"compact", dir, "--where", "day ~ 1"},
		{"checkpoint"},
	} {
		if _, stderr, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
	// Not a table: exit 2 with a clear message.
	for _, cmd := range []string{"history", "compact", "vacuum", "checkpoint"} {
		_, stderr, code := runCLI(t, cmd, dir)
		if code != 2 || !strings.Contains(stderr, "no Delta table") {
			t.Errorf("%s on an empty directory: exit %d, %q", cmd, code, stderr)
		}
	}
}
