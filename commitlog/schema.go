package commitlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/protolake/protolake/schema"
)

// SchemaFieldNames returns the top-level field names of a Delta schemaString
// in order. An empty schemaString (a metaData without one, which Spark
// reads as an empty schema) has none. Parsing is schema.ParseSchemaString's,
// the one parser of schemaString.
func SchemaFieldNames(schemaString string) ([]string, error) {
	if schemaString == "" {
		return nil, nil
	}
	st, err := schema.ParseSchemaString(schemaString)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(st.Fields))
	for i, f := range st.Fields {
		names[i] = f.Name
	}
	return names, nil
}

func sortStrings(s []string) { sort.Strings(s) }

// FileStats is an add action's stats field, the one decoding of it that
// compaction and the log share. Numbers in the bounds and counts are kept
// exact as json.Number; nested structs are nested maps.
type FileStats struct {
	NumRecords *int64         `json:"numRecords"`
	MinValues  map[string]any `json:"minValues,omitempty"`
	MaxValues  map[string]any `json:"maxValues,omitempty"`
	NullCount  map[string]any `json:"nullCount,omitempty"`
	// TightBounds is written by Spark with deletion vectors.
	TightBounds *bool `json:"tightBounds,omitempty"`
}

// ParseStats decodes an add's stats string; an empty one is ErrNoStats.
func ParseStats(stats string) (*FileStats, error) {
	if stats == "" {
		return nil, ErrNoStats
	}
	d := json.NewDecoder(strings.NewReader(stats))
	d.UseNumber()
	var fs FileStats
	if err := d.Decode(&fs); err != nil {
		return nil, fmt.Errorf("parse stats: %w", err)
	}
	return &fs, nil
}

// ErrNoStats is returned by ParseStats for an add without statistics.
var ErrNoStats = errors.New("no stats")

// JSON encodes the statistics as an add's stats string (no HTML escaping,
// as Spark writes them).
func (s *FileStats) JSON() (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// statsNumRecords extracts numRecords from an add's stats string. Snapshot
// loads call it for every add, so it decodes that one field, not the
// bounds ParseStats decodes.
func statsNumRecords(stats string) (int64, bool) {
	if stats == "" {
		return 0, false
	}
	var st struct {
		NumRecords *int64 `json:"numRecords"`
	}
	if err := json.Unmarshal([]byte(stats), &st); err != nil || st.NumRecords == nil {
		return 0, false
	}
	return *st.NumRecords, true
}

// Column is a top-level column of a Delta schema.
type Column struct {
	Name string `json:"name"`
	// Type is the column's type in Spark's simple-string form, e.g. "long",
	// "struct<a:int,b:array<string>>", "map<string,long>".
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// SchemaColumns returns the top-level columns of a Delta schemaString; an
// empty schemaString has none. Types nested deeper than schema.MaxTypeDepth
// are an error, as for schema.ParseSchemaString, which parses it.
func SchemaColumns(schemaString string) ([]Column, error) {
	if schemaString == "" {
		return nil, nil
	}
	st, err := schema.ParseSchemaString(schemaString)
	if err != nil {
		return nil, err
	}
	out := make([]Column, len(st.Fields))
	for i, f := range st.Fields {
		out[i] = Column{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable}
	}
	return out, nil
}
