package commitlog

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// SchemaFieldNames returns the top-level field names of a Delta schemaString
// in order. An empty schemaString (a metaData without one, which Spark
// reads as an empty schema) has none.
func SchemaFieldNames(schemaString string) ([]string, error) {
	if schemaString == "" {
		return nil, nil
	}
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

// Column is a top-level column of a Delta schema.
type Column struct {
	Name string `json:"name"`
	// Type is the column's type in Spark's simple-string form, e.g. "long",
	// "struct<a:int,b:array<string>>", "map<string,long>".
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// SchemaColumns returns the top-level columns of a Delta schemaString; an
// empty schemaString has none.
func SchemaColumns(schemaString string) ([]Column, error) {
	if schemaString == "" {
		return nil, nil
	}
	var s struct {
		Type   string `json:"type"`
		Fields []struct {
			Name     string          `json:"name"`
			Type     json.RawMessage `json:"type"`
			Nullable bool            `json:"nullable"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemaString), &s); err != nil {
		return nil, fmt.Errorf("parse schemaString: %w", err)
	}
	if s.Type != "struct" {
		return nil, fmt.Errorf("parse schemaString: top-level type is %q, want struct", s.Type)
	}
	out := make([]Column, len(s.Fields))
	for i, f := range s.Fields {
		t, err := simpleType(f.Type, 0)
		if err != nil {
			return nil, fmt.Errorf("parse schemaString: column %q: %w", f.Name, err)
		}
		out[i] = Column{Name: f.Name, Type: t, Nullable: f.Nullable}
	}
	return out, nil
}

// maxTypeDepth is schema.MaxTypeDepth (commitlog does not import schema):
// protolake derives no table it cannot read back here. A test in
// cmd/protolake keeps the two equal.
const maxTypeDepth = 64

func simpleType(raw json.RawMessage, depth int) (string, error) {
	if depth > maxTypeDepth {
		return "", fmt.Errorf("type nested deeper than %d levels", maxTypeDepth)
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		return name, nil
	}
	var t struct {
		Type        string          `json:"type"`
		ElementType json.RawMessage `json:"elementType"`
		KeyType     json.RawMessage `json:"keyType"`
		ValueType   json.RawMessage `json:"valueType"`
		Fields      []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("invalid type %s", raw)
	}
	switch t.Type {
	case "array":
		e, err := simpleType(t.ElementType, depth+1)
		return "array<" + e + ">", err
	case "map":
		k, err := simpleType(t.KeyType, depth+1)
		if err != nil {
			return "", err
		}
		v, err := simpleType(t.ValueType, depth+1)
		return "map<" + k + "," + v + ">", err
	case "struct":
		var b strings.Builder
		b.WriteString("struct<")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			ft, err := simpleType(f.Type, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(f.Name + ":" + ft)
		}
		b.WriteByte('>')
		return b.String(), nil
	}
	return "", fmt.Errorf("unknown type %q", t.Type)
}
