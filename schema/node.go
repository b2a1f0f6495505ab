package schema

import (
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// orderedGroup is a Parquet group node that keeps its fields in the order
// given (parquet.Group is a map and sorts them by name). Columns then follow
// proto declaration order, which Spark and DuckDB show as the column order.
type orderedGroup struct {
	fields []parquet.Field
	byName parquet.Group // for GoType and Value, which do not depend on order
}

var _ parquet.Node = (*orderedGroup)(nil)

type orderedField struct {
	parquet.Node
	name  string
	value parquet.Field // the same field of byName
}

func (f *orderedField) Name() string { return f.name }

func (f *orderedField) Value(base reflect.Value) reflect.Value { return f.value.Value(base) }

// namedNode is one child of an ordered group.
type namedNode struct {
	name string
	node parquet.Node
}

func newOrderedGroup(children []namedNode) *orderedGroup {
	g := &orderedGroup{byName: parquet.Group{}}
	for _, c := range children {
		g.byName[c.name] = c.node
	}
	byName := map[string]parquet.Field{}
	for _, f := range g.byName.Fields() {
		byName[f.Name()] = f
	}
	for _, c := range children {
		g.fields = append(g.fields, &orderedField{Node: c.node, name: c.name, value: byName[c.name]})
	}
	return g
}

func (g *orderedGroup) ID() int { return 0 }
func (g *orderedGroup) String() string {
	var b strings.Builder
	_ = parquet.PrintSchema(&b, "", g)
	return b.String()
}
func (g *orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g *orderedGroup) Optional() bool              { return false }
func (g *orderedGroup) Repeated() bool              { return false }
func (g *orderedGroup) Required() bool              { return true }
func (g *orderedGroup) Leaf() bool                  { return false }
func (g *orderedGroup) Fields() []parquet.Field     { return g.fields }
func (g *orderedGroup) Encoding() encoding.Encoding { return nil }
func (g *orderedGroup) Compression() compress.Codec { return nil }
func (g *orderedGroup) GoType() reflect.Type        { return g.byName.GoType() }
