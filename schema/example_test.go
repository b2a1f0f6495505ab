package schema_test

import (
	"context"
	"fmt"
	"math"

	"github.com/protolake/protolake/schema"
	"google.golang.org/protobuf/encoding/protowire"
)

// A decoder walks the plan over the wire bytes: look each field up by
// number, check its wire type, convert the payload as Conv says and write it
// to Columns[f.Column] with the levels the plan gives; absent fields get
// null (explicit presence) or their default (implicit presence).
func ExamplePlan() {
	md, err := schema.Load(context.Background(), schema.Source{
		Files: []string{"edge/structure.proto"}, ImportPaths: []string{"../testdata/proto"},
	}, "edge.Point")
	if err != nil {
		panic(err)
	}
	t, err := schema.Derive(md, schema.Options{NoKafkaMeta: true, NoUnknown: true})
	if err != nil {
		panic(err)
	}
	// edge.Point{x: -3, label: "a"}; y is absent.
	var wire []byte
	wire = protowire.AppendTag(wire, 1, protowire.VarintType)
	wire = protowire.AppendVarint(wire, uint64(math.MaxUint64-2)) // int32 -3, sign-extended
	wire = protowire.AppendTag(wire, 3, protowire.BytesType)
	wire = protowire.AppendString(wire, "a")

	root := t.Plan.Root
	seen := make([]any, len(root.Fields)) // per-field slots, last one wins
	for len(wire) > 0 {
		num, typ, n := protowire.ConsumeTag(wire)
		wire = wire[n:]
		f := root.Field(num)
		if f == nil || !f.Accepts(typ) {
			n = protowire.ConsumeFieldValue(num, typ, wire) // unknown: skip
			wire = wire[n:]
			continue
		}
		switch f.Conv {
		case schema.ConvInt32:
			v, n := protowire.ConsumeVarint(wire)
			seen[f.Index], wire = int32(v), wire[n:]
		case schema.ConvString:
			v, n := protowire.ConsumeString(wire)
			seen[f.Index], wire = v, wire[n:]
		}
	}
	for _, f := range root.Fields {
		v, def := seen[f.Index], f.DefLevel
		if v == nil && f.Presence == schema.Explicit {
			def = f.NullDefLevel
		} else if v == nil {
			v = f.Default.Interface()
		}
		c := t.Plan.Columns[f.Column]
		fmt.Printf("column %d %v: %v (rep 0, def %d of %d)\n", c.Index, c.Path, v, def, c.MaxDefLevel)
	}
	// Output:
	// column 0 [x]: -3 (rep 0, def 1 of 1)
	// column 1 [y]: 0 (rep 0, def 1 of 1)
	// column 2 [label]: a (rep 0, def 1 of 1)
}
