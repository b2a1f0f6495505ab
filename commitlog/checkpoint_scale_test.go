package commitlog

import (
	"bytes"
	"context"
	"reflect"
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
	data, info, err := EncodeCheckpoint(s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// 1050 adds + protocol + metaData = 1052 rows.
	if got, want := len(pf.RowGroups()), 11; got != want || info.Size != 1052 {
		t.Fatalf("%d row groups for %d rows, want %d for 1052", got, info.Size, want)
	}
	for i, rg := range pf.RowGroups() {
		if rg.NumRows() > 100 {
			t.Errorf("row group %d has %d rows, want <= 100", i, rg.NumRows())
		}
	}
	actions, err := ParseCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	back := newSnapshot()
	for _, a := range actions {
		back.apply(a)
	}
	want := s.Files()
	for i := range want {
		want[i].DataChange = false // checkpoints write dataChange false
	}
	if !reflect.DeepEqual(back.Files(), want) || !back.hasProtocol || !back.hasMetadata {
		t.Fatalf("read back %d files (protocol %v, metaData %v), want the %d written", back.NumFiles(), back.hasProtocol, back.hasMetadata, s.NumFiles())
	}
}

// TestCheckpointDefaultRowGroupSize: with the default bound, just over one
// row group's worth of actions makes two row groups.
func TestCheckpointDefaultRowGroupSize(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 50,000 files")
	}
	data, _, err := EncodeCheckpoint(bigSnapshot(CheckpointRowGroupRows), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
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
