package commitlog

import (
	"encoding/json"
	"fmt"
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
