package commitlog

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// FuzzSingleActionLine: the fast path of the commit parser (a line of one
// action decoded in place) accepts and rejects exactly the lines the
// generic decoder does, with the same actions.
func FuzzSingleActionLine(f *testing.F) {
	for _, d := range sharedLogFiles(f, "*.json") {
		for _, l := range bytes.Split(d, []byte("\n")) {
			f.Add(l)
		}
	}
	for _, l := range []string{
		`{"add":{"path":"a","partitionValues":{"x":null},"size":1,"modificationTime":1,"dataChange":true}}`,
		` { "remove" : {"path":"b\u0041","dataChange":false} } `,
		`{"add":{"path":"a"},"add":{"path":"b"}}`,
		`{"add":{"path":"a"}} x`,
		`{"add":{"path":"a"}`,
		`{"add":{"path":"a"}}}`,
		`{"add":null}`,
		`{"a\"dd":{"path":"a"}}`,
		`{"txn":{"appId":"a","version":"3"}}`,
		`{"commitInfo":{"timestamp":1,"operation":"WRITE","x":[1,{"y":"}"}]}}`,
		`{"metaData":{"id":"i","format":{"provider":"parquet"},"schemaString":"{}","partitionColumns":[]}}`,
		`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`,
		`{"add":{"path":"a","stats":"{\"numRecords\":1}"}}`,
	} {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, l []byte) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			return
		}
		if _, _, ok := singleAction(l); !ok {
			return
		}
		got, gerr := parseActionLine(l)
		want, werr := parseActionLineGeneric(l)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: fast path error %v, generic error %v", l, gerr, werr)
		}
		if gerr != nil {
			return
		}
		gb, err1 := json.Marshal(got)
		wb, err2 := json.Marshal(want)
		if err1 != nil || err2 != nil || !bytes.Equal(gb, wb) {
			t.Fatalf("%s: fast path %s (%v), generic %s (%v)", l, gb, err1, wb, err2)
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
	// Several row groups, mixing adds (maps of every shape) with the other
	// actions, for the column decoder.
	x := "x"
	for i, pv := range []map[string]*string{{"day": &x}, {"day": nil}, {}, {"day": &x, "h": &x}} {
		a := testAdd(fmt.Sprint("m", i))
		a.PartitionValues, a.Tags = pv, map[string]string{"t": fmt.Sprint(i % 2)}
		s.apply(Action{Add: &a})
	}
	r := testAdd("gone").ToRemove(true)
	s.apply(Action{Remove: &r})
	s.apply(Action{Txn: &Txn{AppID: "app", Version: 3}})
	defer func(n int) { checkpointRowGroupRows = n }(checkpointRowGroupRows)
	checkpointRowGroupRows = 2
	if data, _, err := EncodeCheckpoint(s, time.Time{}); err == nil {
		f.Add(data)
	}
	checkpointRowGroupRows = CheckpointRowGroupRows
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
