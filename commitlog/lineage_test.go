package commitlog

import (
	"context"
	"reflect"
	"testing"
)

// TestLineage follows the proto pin through the commits, also when only
// the newest versions are read (the pin before them from a snapshot).
func TestLineage(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{DisableCheckpoints: true}) // v0
	commitAdds(t, tbl, "a")                                     // v1
	s := mustSnapshot(t, tbl)
	md := s.Metadata()
	md.Configuration = map[string]string{}
	for k, v := range s.Metadata().Configuration {
		md.Configuration[k] = v
	}
	md.Configuration[PropProtoVersion] = "v2"
	md.Configuration[PropProtoFingerprint] = "def456"
	tx := tbl.NewTransaction(s)
	tx.UpdateMetadata(md)
	if _, err := tx.Commit(ctx); err != nil { // v2
		t.Fatal(err)
	}
	commitAdds(t, tbl, "b") // v3

	all, err := tbl.Lineage(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		version       int64
		pin           string
		changed, data bool
		rowsAdded     int64
	}
	summarise := func(es []LineageEntry) []got {
		var out []got
		for _, e := range es {
			g := got{version: e.Version, pin: e.Pin.Version + "/" + e.Pin.Fingerprint, changed: e.PinChanged, data: e.DataChange, rowsAdded: -1}
			if e.RowsAdded != nil {
				g.rowsAdded = *e.RowsAdded
			}
			out = append(out, g)
		}
		return out
	}
	want := []got{
		{0, "v1/abc123", true, false, -1},
		{1, "v1/abc123", false, true, 10},
		{2, "v2/def456", true, false, 0},
		{3, "v2/def456", false, true, 10},
	}
	if g := summarise(all); !reflect.DeepEqual(g, want) {
		t.Errorf("Lineage(0) =\n%+v\nwant\n%+v", g, want)
	}
	last, err := tbl.Lineage(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g := summarise(last); !reflect.DeepEqual(g, want[3:]) {
		t.Errorf("Lineage(1) = %+v, want %+v", g, want[3:])
	}
}
