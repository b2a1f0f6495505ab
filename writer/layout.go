package writer

import (
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// layout is the file-side view of the table's Parquet schema: the footer's
// schema elements, one colSpec per leaf, and the Delta statistics tree.
type layout struct {
	elements []format.SchemaElement
	cols     []*colSpec
	stats    []*statField // top-level Delta fields with statistics
	leafStat []*statField // per column: the stat field it feeds, or nil
}

// statField is one node of the Delta statistics shape.
type statField struct {
	name     string
	children []*statField // struct: nested fields
	col      int          // leaf or array/map: the column that feeds it; -1 for structs
	minMax   bool         // min/max are collected (not booleans, binaries, arrays, maps)
	array    bool         // array or map: nullCount only, counted from rows
	nullDef  uint8        // array/map: definition level below which the row's value is null
	delta    deltaKind
	scale    int
}

type deltaKind uint8

const (
	deltaOther deltaKind = iota
	deltaInt
	deltaFloat
	deltaString
	deltaTimestamp
	deltaDate
	deltaDecimal
)

func newLayout(root parquet.Node, statsLimit int) (*layout, error) {
	l := &layout{}
	fields := root.Fields()
	l.elements = append(l.elements, format.SchemaElement{Name: "schema", NumChildren: thrift.New(int32(len(fields)))})
	budget := statsLimit
	if budget < 0 {
		budget = 0
	}
	for _, f := range fields {
		sf, err := l.walk(f, nil, 0, 0, false, &budget)
		if err != nil {
			return nil, err
		}
		if sf != nil {
			l.stats = append(l.stats, sf)
		}
	}
	l.leafStat = make([]*statField, len(l.cols))
	var mark func(*statField)
	mark = func(s *statField) {
		if s.col >= 0 {
			l.leafStat[s.col] = s
		}
		for _, c := range s.children {
			mark(c)
		}
	}
	for _, s := range l.stats {
		mark(s)
	}
	return l, nil
}

// walk adds the schema elements and columns of field f. inArray is true
// below a list or map (no statistics there). It returns the field's stat
// node (nil when it gets none).
func (l *layout) walk(f parquet.Field, path []string, rep, def uint8, inArray bool, budget *int) (*statField, error) {
	path = append(path[:len(path):len(path)], f.Name())
	el := format.SchemaElement{Name: f.Name(), FieldID: int32(f.ID())}
	switch {
	case f.Repeated():
		el.RepetitionType = thrift.New(format.Repeated)
		rep++
		def++
	case f.Optional():
		el.RepetitionType = thrift.New(format.Optional)
		def++
	default:
		el.RepetitionType = thrift.New(format.Required)
	}
	typ := f.Type()
	if lt := typ.LogicalType(); lt != nil {
		el.LogicalType = *lt
	}
	if ct := typ.ConvertedType(); ct != nil {
		el.ConvertedType = thrift.New(*ct)
	}
	if !f.Leaf() {
		children := f.Fields()
		el.NumChildren = thrift.New(int32(len(children)))
		l.elements = append(l.elements, el)
		isArray := f.Repeated() || isListOrMap(el.LogicalType.Value)
		var sf *statField
		if !inArray {
			if isArray {
				if *budget > 0 {
					*budget--
					sf = &statField{name: f.Name(), col: len(l.cols), array: true, nullDef: def}
					if f.Repeated() { // a bare repeated group: null never happens
						sf.nullDef = def - 1
					}
				}
			} else {
				sf = &statField{name: f.Name(), col: -1}
			}
		}
		for _, c := range children {
			csf, err := l.walk(c, path, rep, def, inArray || isArray, budget)
			if err != nil {
				return nil, err
			}
			if sf != nil && !sf.array && csf != nil {
				sf.children = append(sf.children, csf)
			}
		}
		if sf != nil && !sf.array && len(sf.children) == 0 {
			return nil, nil
		}
		return sf, nil
	}
	kind := typ.Kind()
	el.Type = thrift.New(format.Type(kind))
	spec := &colSpec{index: len(l.cols), path: path, kind: kind, maxRep: rep, maxDef: def}
	spec.repBits, spec.defBits = bitsFor(rep), bitsFor(def)
	if kind == parquet.FixedLenByteArray {
		spec.typeLen = typ.Length()
		el.TypeLength = thrift.New(int32(spec.typeLen))
	}
	lv := el.LogicalType.Value
	dec, isDec := lv.(*format.DecimalType)
	if isDec {
		el.Scale = thrift.New(dec.Scale)
		el.Precision = thrift.New(dec.Precision)
	}
	switch lv.(type) {
	case *format.StringType, *format.EnumType, *format.JsonType:
		spec.str = true
	}
	switch kind {
	case parquet.ByteArray, parquet.Int32, parquet.Int64, parquet.Float, parquet.Double:
		spec.dict = true
	}
	switch kind {
	case parquet.Boolean, parquet.Int32, parquet.Int64, parquet.Float, parquet.Double, parquet.ByteArray, parquet.FixedLenByteArray:
	default:
		return nil, fmt.Errorf("column %v: physical type %v is not supported", path, kind)
	}
	l.elements = append(l.elements, el)
	l.cols = append(l.cols, spec)
	if inArray || rep > 0 {
		return nil, nil
	}
	if *budget <= 0 {
		return nil, nil
	}
	*budget--
	sf := &statField{name: f.Name(), col: spec.index, minMax: true}
	_, isTS := lv.(*format.TimestampType)
	_, isDate := lv.(*format.DateType)
	switch {
	case isDec:
		sf.delta, sf.scale = deltaDecimal, int(dec.Scale)
	case isTS:
		sf.delta = deltaTimestamp
	case isDate:
		sf.delta = deltaDate
	case spec.str:
		sf.delta = deltaString
	case kind == parquet.Int32 || kind == parquet.Int64:
		sf.delta = deltaInt
	case kind == parquet.Float || kind == parquet.Double:
		sf.delta = deltaFloat
	default: // booleans, binaries
		sf.minMax = false
	}
	return sf, nil
}

func isListOrMap(v format.LogicalTypeValue) bool {
	switch v.(type) {
	case *format.ListType, *format.MapType:
		return true
	}
	return false
}
