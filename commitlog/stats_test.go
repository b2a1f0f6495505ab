package commitlog

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestParseStats: bounds keep exact numbers, the JSON round-trips without
// HTML escaping, and an empty or broken stats string is an error.
func TestParseStats(t *testing.T) {
	in := `{"numRecords":3,"minValues":{"a":12345678901234567890,"s":{"b":"<x>"}},"maxValues":{"a":1},"nullCount":{"a":0},"tightBounds":true}`
	fs, err := ParseStats(in)
	if err != nil || *fs.NumRecords != 3 || fs.MinValues["a"].(json.Number) != "12345678901234567890" || !*fs.TightBounds {
		t.Fatalf("ParseStats = %+v, %v", fs, err)
	}
	out, err := fs.JSON()
	if err != nil || out != in {
		t.Errorf("JSON = %s, %v; want %s", out, err, in)
	}
	if _, err := ParseStats(""); !errors.Is(err, ErrNoStats) {
		t.Errorf("empty: %v", err)
	}
	if _, err := ParseStats(`{"numRecords":`); err == nil {
		t.Error("truncated stats accepted")
	}
}
