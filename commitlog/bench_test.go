package commitlog

import (
	"fmt"
	"testing"
	"time"
)

// bigSnapshot is a snapshot of n active files with stats and partitions.
func bigSnapshot(n int) *Snapshot {
	s := newSnapshot()
	s.version = 100
	md, _ := NewMetadata(testSpec(), 1)
	s.apply(Action{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}})
	s.apply(Action{Metadata: &md})
	for i := 0; i < n; i++ {
		day := fmt.Sprintf("2026-01-%02d", i%28+1)
		a := &Add{
			Path:             fmt.Sprintf("day=%s/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", day, i),
			PartitionValues:  map[string]*string{"day": &day},
			Size:             int64(1000 + i),
			ModificationTime: 1767225600000,
			DataChange:       true,
			Stats:            fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":%d},"maxValues":{"id":%d},"nullCount":{"id":0}}`, 100, i*100, i*100+99),
			Tags:             map[string]string{TagProtoFingerprint: "abc"},
		}
		s.apply(Action{Add: a})
	}
	return s
}

// BenchmarkCheckpoint encodes and decodes a checkpoint of 10,000 files;
// ns/op over 10,000 is the per-file cost.
func BenchmarkCheckpoint(b *testing.B) {
	s := bigSnapshot(10000)
	data, _, err := EncodeCheckpoint(s, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := EncodeCheckpoint(s, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := ParseCheckpoint(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Baseline in the same run: parsing the same actions as JSON commits.
	var actions []Action
	for _, a := range s.Files() {
		a := a
		actions = append(actions, Action{Add: &a})
	}
	body, _ := encodeActions(actions)
	b.Run("json-baseline", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := ParseCommit(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
