package commitlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestCheckpointRowGroups: a checkpoint of more actions than a row group
// holds is written as several bounded row groups and reads back whole.
func TestCheckpointRowGroups(t *testing.T) {
	defer func(n int) { checkpointRowGroupRows = n }(checkpointRowGroupRows)
	checkpointRowGroupRows = 100
	s := bigSnapshot(1050)
	pf, data, info := encodeCheckpointFile(t, s)
	// 1050 adds + protocol + metaData = 1052 rows.
	if got, want := len(pf.RowGroups()), 11; got != want || info.Size != 1052 {
		t.Fatalf("%d row groups for %d rows, want %d for 1052", got, info.Size, want)
	}
	for i, rg := range pf.RowGroups() {
		if rg.NumRows() > 100 {
			t.Errorf("row group %d has %d rows, want <= 100", i, rg.NumRows())
		}
	}
	back := checkpointSnapshot(t, data)
	want := s.Files()
	for i := range want {
		want[i].DataChange = false // checkpoints write dataChange false
	}
	if !reflect.DeepEqual(back.Files(), want) || !back.hasProtocol || !back.hasMetadata {
		t.Fatalf("read back %d files (protocol %v, metaData %v), want the %d written", back.NumFiles(), back.hasProtocol, back.hasMetadata, s.NumFiles())
	}
}

// TestCheckpointRowGroupBytes: wide statistics cut row groups by size, not
// only by rows, so the memory of writing a checkpoint does not grow with
// the statistics' width; every file reads back.
func TestCheckpointRowGroupBytes(t *testing.T) {
	defer func(n int) { checkpointRowGroupBytes = n }(checkpointRowGroupBytes)
	checkpointRowGroupBytes = 1 << 20
	s := wideSnapshot(2000)
	pf, data, info := encodeCheckpointFile(t, s)
	perRow := (&cpRow{Add: &cpAdd{Path: &s.Files()[0].Path, Stats: &s.Files()[0].Stats}}).size()
	maxRows := int64(checkpointRowGroupBytes/perRow + 2)
	if len(pf.RowGroups()) < 5 || info.NumOfAddFiles != 2000 {
		t.Fatalf("%d row groups for %d files of about %d bytes with a %d-byte bound, want at least 5", len(pf.RowGroups()), info.NumOfAddFiles, perRow, checkpointRowGroupBytes)
	}
	for i, rg := range pf.RowGroups() {
		if rg.NumRows() > maxRows {
			t.Errorf("row group %d has %d rows, want <= %d", i, rg.NumRows(), maxRows)
		}
	}
	if back := checkpointSnapshot(t, data); back.NumFiles() != 2000 || !reflect.DeepEqual(back.Files()[1999].Stats, s.Files()[1999].Stats) {
		t.Fatalf("read back %d files, want 2000 with their statistics", back.NumFiles())
	}
}

// TestCheckpointDefaultRowGroupSize: with the default bound, just over one
// row group's worth of actions makes two row groups.
func TestCheckpointDefaultRowGroupSize(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 50,000 files")
	}
	pf, data, _ := encodeCheckpointFile(t, bigSnapshot(CheckpointRowGroupRows))
	if n := len(pf.RowGroups()); n != 2 {
		t.Errorf("%d row groups for %d rows, want 2", n, CheckpointRowGroupRows+2)
	}
	if _, err := ParseCheckpoint(data); err != nil {
		t.Fatal(err)
	}
}

// TestCleanupRefusesUnreadableCheckpoint: log cleanup counts a checkpoint
// as a base only after parsing it. With the newest candidate corrupt it
// falls back to the older readable one; with both corrupt it deletes
// nothing; either way every retained version still loads.
func TestCleanupRefusesUnreadableCheckpoint(t *testing.T) {
	for _, corruptBoth := range []bool{false, true} {
		ctx := context.Background()
		dir, st, tbl := twelveCommits(t)
		want := snapshotFacts(t, mustSnapshot(t, tbl))
		// Everything up to 11 is expired: R = 11, candidates C = 10, 5.
		for v := int64(0); v <= 11; v++ {
			age(t, dir, CommitKey(v), 40*24*time.Hour)
		}
		corrupt := []int64{10}
		if corruptBoth {
			corrupt = append(corrupt, 5)
		}
		for _, v := range []int64{5, 10} {
			age(t, dir, CheckpointKey(v), 40*24*time.Hour)
		}
		for _, v := range corrupt {
			if err := st.Put(ctx, CheckpointKey(v), strings.NewReader("PAR1 not a checkpoint PAR1")); err != nil {
				t.Fatal(err)
			}
			age(t, dir, CheckpointKey(v), 40*24*time.Hour)
		}
		fresh, err := Open(st, Config{DisableLogCleanup: true})
		if err != nil {
			t.Fatal(err)
		}
		deleted, err := fresh.CleanupLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wantDeleted []string
		if !corruptBoth {
			for v := int64(0); v < 5; v++ {
				wantDeleted = append(wantDeleted, CommitKey(v))
			}
		}
		if !reflect.DeepEqual(deleted, wantDeleted) {
			t.Errorf("corruptBoth=%v: deleted %v, want %v", corruptBoth, deleted, wantDeleted)
		}
		if got := snapshotFacts(t, mustSnapshot(t, fresh)); got != want {
			t.Errorf("corruptBoth=%v: after cleanup the table reads as\n%s\nwant\n%s", corruptBoth, got, want)
		}
	}
}

// TestTypedCheckpointDecoding: the typed decoder (checkpoints in protolake's
// and Spark's layout) gives exactly what the generic decoder gives, across
// row groups and read batches, for protolake's checkpoints (files,
// tombstones, txns, domain metadata) and every shared checkpoint it accepts.
func TestTypedCheckpointDecoding(t *testing.T) {
	defer func(n int) { checkpointRowGroupRows = n }(checkpointRowGroupRows)
	checkpointRowGroupRows = 700
	s := bigSnapshot(3000)
	for i := 0; i < 40; i++ {
		s.apply(Action{Txn: &Txn{AppID: fmt.Sprint("app-", i), Version: int64(i)}})
		p := fmt.Sprintf("day=2026-01-01/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", i*28)
		r := s.files.values()[0].ToRemove(true)
		r.Path = p
		ts := int64(1767225600000 + i)
		r.DeletionTimestamp = &ts
		s.apply(Action{Remove: &r})
	}
	s.apply(Action{Other: &RawAction{Name: "domainMetadata", JSON: json.RawMessage(`{"domain":"d","configuration":"{}","removed":false}`)}})
	// Maps and strings of every shape the column decoder distinguishes:
	// no tags, empty maps, a null partition value, several entries, an
	// empty tag value, no stats, an escaped path.
	x, y := "x", ""
	for i, a := range []Add{
		{Path: "odd/no-tags.parquet", PartitionValues: map[string]*string{"day": nil}},
		{Path: "odd/empty-maps.parquet", PartitionValues: map[string]*string{}, Tags: map[string]string{}, Stats: `{"numRecords":1}`},
		{Path: "odd/two.parquet", PartitionValues: map[string]*string{"day": &x, "h": &y}, Tags: map[string]string{"a": "", "b": "c"}, Size: 7},
		{Path: "odd/sp%20ace.parquet", PartitionValues: map[string]*string{"day": &x}, Tags: map[string]string{TagProtoFingerprint: "abc"}, ModificationTime: 9},
		// Stats longer than a quarter of an arena chunk get their own
		// allocation; the ones below fill several chunks.
		{Path: "odd/huge-stats.parquet", PartitionValues: map[string]*string{"day": &x}, Stats: `{"numRecords":1,"minValues":{"s":"` + strings.Repeat("h", 300<<10) + `"}}`},
	} {
		a.DataChange = i%2 == 0
		s.apply(Action{Add: &a})
	}
	for i := 0; i < 12; i++ { // 1.2 MB of stats, in one row group
		a := Add{Path: fmt.Sprintf("odd/wide-%02d.parquet", i), PartitionValues: map[string]*string{"day": &x},
			Stats: fmt.Sprintf(`{"numRecords":%d,"minValues":{"s":"%s"}}`, i, strings.Repeat(fmt.Sprint(i%10), 100<<10))}
		s.apply(Action{Add: &a})
	}
	ours, _, err := EncodeCheckpoint(s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"protolake": ours}
	shared, _ := filepath.Glob(filepath.Join(sharedTables, "*", "_delta_log", "*.checkpoint*.parquet"))
	for _, p := range shared {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs[p] = b
	}
	typed := 0
	for name, data := range inputs {
		pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if pf.Schema().String() != typedSchema {
			continue
		}
		typed++
		if err := typedCheck(pf); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []Action
		err = parseTyped(pf, func(a Action) { got = append(got, a) })
		if err != nil {
			t.Fatalf("%s: typed: %v", name, err)
		}
		want, err := parseGeneric(pf)
		if err != nil {
			t.Fatalf("%s: generic: %v", name, err)
		}
		if g, w := actionsJSON(t, got), actionsJSON(t, want); g != w {
			t.Errorf("%s: typed and generic decoding differ:\n%s\n%s", name, g[:min(len(g), 2000)], w[:min(len(w), 2000)])
		}
		var cols []Action
		if err := parseColumns(pf, func(a Action) { cols = append(cols, a) }); err != nil {
			t.Fatalf("%s: columns: %v", name, err)
		}
		if g, w := actionsJSON(t, cols), actionsJSON(t, want); g != w {
			t.Errorf("%s: column and generic decoding differ:\n%s\n%s", name, firstDiff(g, w), firstDiff(w, g))
		}
		if len(cols) != len(want) {
			t.Errorf("%s: column decoder gave %d actions, generic %d", name, len(cols), len(want))
		}
	}
	if typed < 2 {
		t.Errorf("only %d checkpoints took the typed decoder, want protolake's and Spark's", typed)
	}
}

// firstDiff is a from the first line where it differs from b, cut short.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range al {
		if i >= len(bl) || al[i] != bl[i] {
			return strings.Join(al[i:min(len(al), i+3)], "\n")
		}
	}
	return ""
}

// actionsJSON renders actions in a canonical order.
func actionsJSON(t *testing.T, actions []Action) string {
	var lines []string
	for _, a := range actions {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// parseTyped is the row-struct decoder the column decoder replaced: every
// column of every row through GenericReader[cpRow]. The tests compare the
// column decoder with it.
func parseTyped(pf *parquet.File, f func(Action)) error {
	r := parquet.NewGenericReader[cpRow](pf)
	defer r.Close()
	rows := make([]cpRow, 1024)
	for {
		clear(rows)
		n, err := r.Read(rows)
		for i := 0; i < n; i++ {
			a, ok, cerr := typedAction(&rows[i])
			if cerr != nil {
				return cerr
			}
			if ok {
				f(a)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
