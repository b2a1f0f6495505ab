package commitlog

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/protolake/protolake/internal/fixture"
	"github.com/protolake/protolake/storage/local"
)

// sharedTables is the directory of Delta tables written by Spark and
// delta-rs, used in place (never copied into the repository).
const sharedTables = "../../shared/delta-tables"

// expectedFacts mirrors one entry of EXPECTED.json.
type expectedFacts struct {
	Version  int64          `json:"version"`
	Protocol map[string]any `json:"protocol"`
	Metadata struct {
		ID               string            `json:"id"`
		PartitionColumns []string          `json:"partitionColumns"`
		Configuration    map[string]string `json:"configuration"`
		SchemaFieldNames []string          `json:"schemaFieldNames"`
	} `json:"metadata"`
	NumFiles           int              `json:"numFiles"`
	Files              []string         `json:"files"`
	TotalSize          int64            `json:"totalSize"`
	NumRecords         *int64           `json:"numRecords"`
	Txns               map[string]int64 `json:"txns"`
	PartitionValueSets []string         `json:"partitionValueSets"`
}

func loadExpected(t *testing.T) map[string]map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sharedTables, "EXPECTED.json"))
	if err != nil {
		fixture.Missing(t, err)
	}
	var all map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatalf("EXPECTED.json: %v", err)
	}
	return all
}

// factsOf computes the EXPECTED.json facts from a snapshot.
func factsOf(t *testing.T, s *Snapshot) expectedFacts {
	t.Helper()
	var f expectedFacts
	f.Version = s.Version()
	p := s.Protocol()
	f.Protocol = map[string]any{
		"minReaderVersion": float64(p.MinReaderVersion),
		"minWriterVersion": float64(p.MinWriterVersion),
	}
	if p.ReaderFeatures != nil {
		f.Protocol["readerFeatures"] = toAny(p.ReaderFeatures)
	}
	if p.WriterFeatures != nil {
		f.Protocol["writerFeatures"] = toAny(p.WriterFeatures)
	}
	md := s.Metadata()
	f.Metadata.ID = md.ID
	f.Metadata.PartitionColumns = nonNil(md.PartitionColumns)
	f.Metadata.Configuration = md.Configuration
	if f.Metadata.Configuration == nil {
		f.Metadata.Configuration = map[string]string{}
	}
	names, err := SchemaFieldNames(md.SchemaString)
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	f.Metadata.SchemaFieldNames = nonNil(names)
	files := s.Files()
	f.NumFiles = s.NumFiles()
	f.Files = []string{}
	sets := map[string]bool{}
	for _, a := range files {
		f.Files = append(f.Files, a.Path)
		b, err := json.Marshal(a.PartitionValues) // encoding/json sorts map keys
		if err != nil {
			t.Fatal(err)
		}
		if a.PartitionValues == nil {
			b = []byte("{}")
		}
		sets[string(b)] = true
	}
	sort.Strings(f.Files)
	f.PartitionValueSets = []string{}
	for k := range sets {
		f.PartitionValueSets = append(f.PartitionValueSets, k)
	}
	sort.Strings(f.PartitionValueSets)
	f.TotalSize = s.TotalSize()
	if n, ok := s.NumRecords(); ok && len(files) > 0 {
		f.NumRecords = &n
	}
	f.Txns = s.Txns()
	return f
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestSnapshotMatchesExpected replays every table in the shared directory at
// latest and at every version EXPECTED.json lists.
func TestSnapshotMatchesExpected(t *testing.T) {
	all := loadExpected(t)
	if len(all) == 0 {
		t.Fatal("EXPECTED.json lists no tables")
	}
	ctx := context.Background()
	for table, versions := range all {
		store, err := local.New(filepath.Join(sharedTables, table))
		if err != nil {
			t.Fatal(err)
		}
		for label, raw := range versions {
			t.Run(table+"/"+label, func(t *testing.T) {
				var want expectedFacts
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
				var errWant struct {
					Error any `json:"error"`
				}
				_ = json.Unmarshal(raw, &errWant)
				v := Latest
				if label != "latest" {
					n, err := strconv.ParseInt(strings.TrimPrefix(label, "v"), 10, 64)
					if err != nil {
						t.Fatalf("label %q", label)
					}
					v = n
				}
				s, err := LoadSnapshot(ctx, store, v, LoadOptions{})
				if errWant.Error != nil {
					if err == nil {
						t.Fatalf("LoadSnapshot(%d) succeeded, want error %v", v, errWant.Error)
					}
					return
				}
				if err != nil {
					t.Fatalf("LoadSnapshot(%d): %v", v, err)
				}
				got := factsOf(t, s)
				if want.Files == nil {
					want.Files = []string{}
				}
				if want.Txns == nil {
					want.Txns = map[string]int64{}
				}
				if !reflect.DeepEqual(got, want) {
					gj, _ := json.MarshalIndent(got, "", " ")
					wj, _ := json.MarshalIndent(want, "", " ")
					t.Errorf("facts differ\n got: %s\nwant: %s", gj, wj)
				}
			})
		}
	}
}

// TestSnapshotBelowFirstCheckpoint: a log that starts at a checkpoint cannot
// reconstruct earlier versions, and must say so instead of returning an
// empty snapshot.
func TestSnapshotBelowFirstCheckpoint(t *testing.T) {
	store, err := local.New(filepath.Join(sharedTables, "deltars-checkpoint_with_partitions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{0, 1, 3} {
		_, err := LoadSnapshot(context.Background(), store, v, LoadOptions{})
		if !errors.Is(err, ErrVersionNotFound) {
			t.Errorf("LoadSnapshot(%d) error = %v, want ErrVersionNotFound", v, err)
		}
	}
}
