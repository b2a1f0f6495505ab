package commitlog

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
)

// TestLoadedFilesShareMaps: the files of a loaded snapshot, whether read
// from the checkpoint (column decoder) or replayed from the JSON commits
// after it, share one partitionValues map per partition and one tags map
// per tag set, and read back exactly what was committed; on local disk
// (the checkpoint read in place) and in memory (read into a buffer).
func TestLoadedFilesShareMaps(t *testing.T) {
	ctx := context.Background()
	disk, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]Store{"local": disk, "mem": mem.New()} {
		tbl, err := Open(st, Config{DisableCheckpoints: true})
		if err != nil {
			t.Fatal(err)
		}
		kept, err := tbl.Create(ctx, testSpec())
		if err != nil {
			t.Fatal(err)
		}
		for c := 0; c < 4; c++ {
			tx := tbl.NewTransaction(kept)
			for i := 0; i < 30; i++ {
				day := fmt.Sprintf("2026-01-%02d", i%3+1)
				tx.Add(Add{Path: fmt.Sprintf("day=%s/part-%d-%02d.parquet", day, c, i), PartitionValues: map[string]*string{"day": &day},
					Size: int64(i + 1), Stats: fmt.Sprintf(`{"numRecords":%d}`, i+1), Tags: map[string]string{"k": fmt.Sprint(i % 2)}})
			}
			res, err := tx.Commit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kept = res.Snapshot
			if c == 1 { // commits 2 and 3 come after the checkpoint
				if _, err := tbl.writeCheckpoint(ctx, kept); err != nil {
					t.Fatal(err)
				}
			}
		}
		s, err := LoadSnapshot(ctx, st, Latest, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.CheckpointVersion() != 2 {
			t.Fatalf("%s: loaded from checkpoint %d, want 2", name, s.CheckpointVersion())
		}
		pvMaps, tagMaps := map[string]map[uintptr]bool{}, map[string]map[uintptr]bool{}
		for _, f := range s.sortedFiles() {
			day, k := *f.PartitionValues["day"], f.Tags["k"]
			if pvMaps[day] == nil {
				pvMaps[day] = map[uintptr]bool{}
			}
			if tagMaps[k] == nil {
				tagMaps[k] = map[uintptr]bool{}
			}
			pvMaps[day][reflect.ValueOf(f.PartitionValues).Pointer()] = true
			tagMaps[k][reflect.ValueOf(f.Tags).Pointer()] = true
		}
		// Up to one map from the checkpoint's row group and one from the
		// replay per distinct value.
		for day, ms := range pvMaps {
			if len(ms) > 2 {
				t.Errorf("%s: partition %s: %d distinct partitionValues maps for %d files, want at most 2 (checkpoint, replay)", name, day, len(ms), s.NumFiles())
			}
		}
		for k, ms := range tagMaps {
			if len(ms) > 2 {
				t.Errorf("%s: tag %s: %d distinct tags maps, want at most 2", name, k, len(ms))
			}
		}
		want, got := kept.Files(), s.Files() // dataChange is false in both
		if len(got) != 120 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: loaded files differ from the committed ones (%d files)", name, len(got))
		}
	}
}
