package commitlog

import (
	"encoding/json"
	"fmt"
	"sort"
)

// SchemaFieldNames returns the top-level field names of a Delta schemaString
// in order.
func SchemaFieldNames(schemaString string) ([]string, error) {
	var s struct {
		Type   string `json:"type"`
		Fields []struct {
			Name string `json:"name"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemaString), &s); err != nil {
		return nil, fmt.Errorf("parse schemaString: %w", err)
	}
	if s.Type != "struct" {
		return nil, fmt.Errorf("parse schemaString: top-level type is %q, want struct", s.Type)
	}
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names, nil
}

func sortStrings(s []string) { sort.Strings(s) }

// statsNumRecords extracts numRecords from an add's stats string.
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
