package commitlog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedLogFiles returns the contents of the shared tables' log files whose
// names match pattern (e.g. "*.json").
func sharedLogFiles(f *testing.F, pattern string) [][]byte {
	paths, _ := filepath.Glob(filepath.Join(sharedTables, "*", "_delta_log", pattern))
	var out [][]byte
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			out = append(out, data)
		}
	}
	return out
}

// FuzzParseCommit: the commit parser never panics, and whatever it accepts
// survives an encode/parse round trip.
func FuzzParseCommit(f *testing.F) {
	for _, d := range sharedLogFiles(f, "*.json") {
		f.Add(d)
	}
	f.Add([]byte(`{"add":{"path":"a","partitionValues":{"x":null},"size":1,"modificationTime":1,"dataChange":true,"deletionVector":{"storageType":"u"}}}`))
	f.Add([]byte("{\"txn\":{\"appId\":\"a\",\"version\":3}}\n\n{\"cdc\":{\"path\":\"c\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		actions, err := ParseCommit(data)
		if err != nil {
			return
		}
		body, err := encodeActions(actions)
		if err != nil {
			// Only raw actions can fail to encode, and only if invalid.
			t.Fatalf("accepted actions do not encode: %v", err)
		}
		again, err := ParseCommit(body)
		if err != nil {
			t.Fatalf("re-parse of encoded actions: %v\n%s", err, body)
		}
		if len(again) != len(actions) {
			t.Fatalf("round trip changed the action count %d → %d", len(actions), len(again))
		}
		// Replaying never panics either.
		s := newSnapshot()
		for _, a := range actions {
			s.apply(a)
		}
	})
}

// FuzzParseCheckpoint: corrupted checkpoints are errors, never panics nor
// runaway allocations. Inputs are large, so run it with -fuzzminimizetime 0
// (minimizing a 15 KB input takes minutes).
func FuzzParseCheckpoint(f *testing.F) {
	for _, d := range sharedLogFiles(f, "*.checkpoint.parquet") {
		f.Add(d)
	}
	s := newSnapshot()
	s.version = 1
	md, _ := NewMetadata(testSpec(), 1)
	s.apply(Action{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}})
	s.apply(Action{Metadata: &md})
	a := testAdd("x")
	s.apply(Action{Add: &a})
	if data, _, err := EncodeCheckpoint(s, time.Time{}); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		actions, err := ParseCheckpoint(data)
		if err != nil {
			return
		}
		for _, a := range actions {
			if _, err := json.Marshal(a); err != nil && a.Other == nil {
				t.Fatalf("checkpoint action does not encode: %v", err)
			}
		}
	})
}

// FuzzParseLogFileName: log file names classify without panics, and a
// name taken for a commit is exactly that commit's key.
func FuzzParseLogFileName(f *testing.F) {
	f.Add("_delta_log/00000000000000000010.checkpoint.0000000001.0000000003.parquet")
	f.Add("_delta_log/00000000000000000001.json")
	f.Fuzz(func(t *testing.T, name string) {
		lf := parseLogFileName(name)
		if lf.kind == kindCommit && CommitKey(lf.version) != name {
			t.Fatalf("%q parsed as commit %d", name, lf.version)
		}
	})
}
