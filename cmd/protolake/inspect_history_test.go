package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/local"
)

// TestInspectPinHistoryBounded: on a table with a checkpoint, inspect builds
// the pin history from the checkpoint's metaData and the commits after it
// (reads bounded by the checkpoint interval, whatever the log's length);
// --history reads every retained commit and finds the older change too.
func TestInspectPinHistoryBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs := faulty.New(st)
	tbl, err := commitlog.Open(fs, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]}`
	snap, err := tbl.Create(ctx, commitlog.TableSpec{SchemaString: schema,
		Configuration: map[string]string{commitlog.PropCheckpointInterval: "10"},
		Proto:         commitlog.ProtoPin{Message: "ads.v1.Click", Fingerprint: "f1", Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	repin := func(fp string) {
		md := snap.Metadata()
		md.Configuration = map[string]string{commitlog.PropCheckpointInterval: "10", commitlog.PropProtoMessage: "ads.v1.Click", commitlog.PropProtoFingerprint: fp}
		tx := tbl.NewTransaction(snap)
		tx.UpdateMetadata(md)
		res, err := tx.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snap = res.Snapshot
	}
	for v := 1; v <= 95; v++ {
		switch v {
		case 3:
			repin("f2") // before the checkpoint at 90
		case 93:
			repin("f3") // after it
		default:
			tx := tbl.NewTransaction(snap)
			tx.Add(commitlog.Add{Path: fmt.Sprintf("part-%d.parquet", v), Size: 1, DataChange: true})
			res, err := tx.Commit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			snap = res.Snapshot
		}
	}
	type report struct {
		CheckpointVersion int64 `json:"checkpointVersion"`
		ProtoHistoryFrom  int64 `json:"protoHistoryFrom"`
		ProtoHistory      []struct {
			Version int64             `json:"version"`
			Pin     map[string]string `json:"pin"`
		} `json:"protoHistory"`
	}
	inspect := func(args ...string) (report, string) {
		var out, errb bytes.Buffer
		if err := run(ctx, append([]string{"inspect", dir, "--json"}, args...), &out, &errb); err != nil {
			t.Fatalf("inspect: %v\n%s", err, errb.String())
		}
		var r report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		var hist string
		for _, h := range r.ProtoHistory {
			hist += fmt.Sprintf("%s@%d ", h.Pin["fingerprint"], h.Version)
		}
		return r, hist
	}
	r, hist := inspect()
	if r.CheckpointVersion != 90 || r.ProtoHistoryFrom != 90 || hist != "f2@90 f3@93 " {
		t.Errorf("inspect: checkpoint %d, history from %d: %s; want 90, 90: f2@90 f3@93", r.CheckpointVersion, r.ProtoHistoryFrom, hist)
	}
	r, hist = inspect("--history")
	if r.ProtoHistoryFrom != 0 || hist != "f1@0 f2@3 f3@93 " {
		t.Errorf("inspect --history: from %d: %s; want 0: f1@0 f2@3 f3@93", r.ProtoHistoryFrom, hist)
	}
	// The reads of the default: the pin history costs the commits after
	// the checkpoint (5), not the 95 retained ones.
	snap90, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gets := fs.Calls(faulty.OpGet)
	if _, _, err := pinHistory(ctx, tbl, snap90, false); err != nil {
		t.Fatal(err)
	}
	if n := fs.Calls(faulty.OpGet) - gets; n != 5 {
		t.Errorf("pin history read %d objects, want the 5 commits after the checkpoint", n)
	}
}
