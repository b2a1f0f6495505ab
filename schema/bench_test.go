package schema

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// BenchmarkDerive measures deriving the AdImpression table (done once per
// table and proto version, not per message).
func BenchmarkDerive(b *testing.B) {
	md := msg(b, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Derive(md, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFieldLookup measures MessagePlan.Field, which the writer calls for
// every field of every message, against the baseline of a Go map keyed by
// field number.
func BenchmarkFieldLookup(b *testing.B) {
	tb, err := Derive(msg(b, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	root := tb.Plan.Root
	nums := make([]protowire.Number, 0, 64)
	for _, f := range root.Fields {
		nums = append(nums, f.Number)
	}
	b.Run("plan", func(b *testing.B) {
		n := 0
		for b.Loop() {
			for _, num := range nums {
				if root.Field(num) != nil {
					n++
				}
			}
		}
		_ = n
	})
	b.Run("baseline-map", func(b *testing.B) {
		m := map[protowire.Number]*FieldPlan{}
		for _, f := range root.Fields {
			m[f.Number] = f
		}
		n := 0
		for b.Loop() {
			for _, num := range nums {
				if m[num] != nil {
					n++
				}
			}
		}
		_ = n
	})
}
