package schema

import (
	"bytes"
	"testing"
)

// goldenCase is one message and options whose derived schemas are kept as
// golden files.
type goldenCase struct {
	name string // golden file stem
	set  string
	msg  string
	opts Options
}

var goldenCases = func() []goldenCase {
	var cs []goldenCase
	add := func(set, pkg string, opts Options, names ...string) {
		for _, n := range names {
			cs = append(cs, goldenCase{name: pkg + "." + n, set: set, msg: pkg + "." + n, opts: opts})
		}
	}
	add("adtrack/v1/adtrack.binpb", "adtrack.v1", Options{},
		"AdImpression", "AdClick", "AdTrackResponse", "Geo", "Device", "Size", "Placement", "Bid", "Experiment")
	add("edge/edge.binpb", "edge", Options{},
		"Scalars", "OptionalScalars", "RepeatedScalars", "Point", "Polygon", "Oneofs", "Maps", "Nested",
		"WithEmpty", "Legacy", "WellKnown")
	add("edge/edge.binpb", "edge", Options{MaxRecursionDepth: 2},
		"TreeNode", "LinkedNode", "Ping", "Pong", "Forest")
	for _, v := range []string{"v1", "v2", "v3"} {
		cs = append(cs, goldenCase{name: "shop.Order." + v, set: "evolution/" + v + "/order.binpb", msg: "shop.Order"})
	}
	cs = append(cs,
		goldenCase{name: "adtrack.v1.AdImpression.options", set: "adtrack/v1/adtrack.binpb", msg: "adtrack.v1.AdImpression",
			opts: Options{Enums: EnumInt, Uint64: Uint64Long, NoKafkaMeta: true, NoUnknown: true}},
		goldenCase{name: "adtrack.v1.AdImpression.partitioned", set: "adtrack/v1/adtrack.binpb", msg: "adtrack.v1.AdImpression",
			opts: Options{Partitions: []string{"campaign_id", "day(event_time)", "kafka_hour=hour(_kafka.timestamp)"}}},
		goldenCase{name: "edge.Scalars.options", set: "edge/edge.binpb", msg: "edge.Scalars",
			opts: Options{Enums: EnumInt, Uint64: Uint64Long}},
		goldenCase{name: "edge.MetaCollide.no_kafka_meta", set: "edge/edge.binpb", msg: "edge.MetaCollide", opts: Options{NoKafkaMeta: true}},
		goldenCase{name: "edge.TreeNode.depth1", set: "edge/edge.binpb", msg: "edge.TreeNode",
			opts: Options{MaxRecursionDepth: 1, NoKafkaMeta: true, NoUnknown: true}},
	)
	return cs
}()

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			tb, err := Derive(msg(t, c.set, c.msg), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			delta, err := tb.DeltaJSON()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".delta.json", delta)
			golden(t, c.name+".parquet", []byte(tb.ParquetText()))
			var plan bytes.Buffer
			if err := tb.WritePlan(&plan); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".plan", plan.Bytes())

			// The schemaString parses back to the same schema.
			back, err := ParseSchemaString(tb.SchemaString())
			if err != nil {
				t.Fatal(err)
			}
			again, _ := back.MarshalJSON()
			if string(again) != tb.SchemaString() {
				t.Errorf("schemaString does not round-trip:\n%s\n%s", again, tb.SchemaString())
			}
			// Deterministic.
			tb2, err := Derive(msg(t, c.set, c.msg), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tb2.SchemaString() != tb.SchemaString() || tb2.ParquetText() != tb.ParquetText() {
				t.Error("derivation is not deterministic")
			}
		})
	}
}

// TestGoldenErrors keeps the error text of every test message that cannot be
// a table with default options: the message a user sees is part of the
// interface.
func TestGoldenErrors(t *testing.T) {
	var b bytes.Buffer
	for _, name := range []string{"Collide", "CollideNested", "MetaCollide", "Nothing", "OnlyNothing", "TreeNode", "LinkedNode", "Ping", "Pong", "Forest"} {
		_, err := Derive(msg(t, "edge/edge.binpb", "edge."+name), Options{})
		if err == nil {
			t.Errorf("edge.%s: no error", name)
			continue
		}
		b.WriteString("edge." + name + ": " + err.Error() + "\n")
	}
	golden(t, "errors.txt", b.Bytes())
}
