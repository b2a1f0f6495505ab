package writer

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/protolake/protolake/schema"
)

// The dynamic baseline: dynamicpb decodes the message, a generic walker
// turns it into a parquet.Row following the same plan, parquet-go writes it.

func shredDynamic(row parquet.Row, m *schema.MessagePlan, msg protoreflect.Message, r int) parquet.Row {
	for _, f := range m.Fields {
		if f.Conv == schema.ConvSkip || (f.Column < 0 && f.Message == nil && f.MapKey == nil && f.Cardinality == schema.Singular) {
			continue
		}
		fd := f.Desc
		switch f.Cardinality {
		case schema.Singular:
			has := msg.Has(fd)
			if !has && f.Presence == schema.Explicit {
				for c := f.FirstColumn; c < f.EndColumn; c++ {
					row = append(row, parquet.NullValue().Level(r, f.NullDefLevel, c))
				}
				continue
			}
			if f.Conv == schema.ConvNone {
				row = shredDynamic(row, f.Message, msg.Get(fd).Message(), r)
				continue
			}
			row = append(row, dynLeaf(f, msg.Get(fd)).Level(r, f.DefLevel, f.Column))
		case schema.Repeated:
			l := msg.Get(fd).List()
			if l.Len() == 0 {
				for c := f.FirstColumn; c < f.EndColumn; c++ {
					row = append(row, parquet.NullValue().Level(r, f.DefLevel, c))
				}
				continue
			}
			for i := range l.Len() {
				rep := r
				if i > 0 {
					rep = f.RepLevel
				}
				if f.Conv == schema.ConvNone {
					row = shredDynamic(row, f.Message, l.Get(i).Message(), rep)
					continue
				}
				row = append(row, dynLeaf(f, l.Get(i)).Level(rep, f.ElemDefLevel, f.Column))
			}
		case schema.Map:
			mp := msg.Get(fd).Map()
			if mp.Len() == 0 {
				for c := f.FirstColumn; c < f.EndColumn; c++ {
					row = append(row, parquet.NullValue().Level(r, f.DefLevel, c))
				}
				continue
			}
			i := 0
			rangeSorted(mp, func(k protoreflect.MapKey, v protoreflect.Value) bool {
				rep := r
				if i > 0 {
					rep = f.RepLevel
				}
				i++
				row = append(row, dynLeaf(f.MapKey, k.Value()).Level(rep, f.MapKey.DefLevel, f.MapKey.Column))
				if f.MapValue.Conv == schema.ConvNone {
					row = shredDynamic(row, f.MapValue.Message, v.Message(), rep)
				} else {
					row = append(row, dynLeaf(f.MapValue, v).Level(rep, f.MapValue.DefLevel, f.MapValue.Column))
				}
				return true
			})
		}
	}
	return row
}

func dynLeaf(f *schema.FieldPlan, v protoreflect.Value) parquet.Value {
	if f.Wrapper {
		m := v.Message()
		v = m.Get(m.Descriptor().Fields().ByNumber(1))
	}
	switch f.Conv {
	case schema.ConvInt32, schema.ConvSint32, schema.ConvSfixed32:
		return parquet.Int32Value(int32(v.Int()))
	case schema.ConvEnumInt:
		return parquet.Int32Value(int32(v.Enum()))
	case schema.ConvInt64, schema.ConvSint64, schema.ConvSfixed64:
		return parquet.Int64Value(v.Int())
	case schema.ConvUint32, schema.ConvFixed32:
		return parquet.Int64Value(int64(v.Uint()))
	case schema.ConvUint64Long, schema.ConvFixed64Long:
		return parquet.Int64Value(int64(v.Uint()))
	case schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		var b [9]byte
		return parquet.FixedLenByteArrayValue(schema.PutDecimal20(b[:], v.Uint()))
	case schema.ConvFloat:
		return parquet.FloatValue(float32(v.Float()))
	case schema.ConvDouble:
		return parquet.DoubleValue(v.Float())
	case schema.ConvBool:
		return parquet.BooleanValue(v.Bool())
	case schema.ConvString:
		return parquet.ByteArrayValue([]byte(v.String()))
	case schema.ConvBytes:
		return parquet.ByteArrayValue(v.Bytes())
	case schema.ConvEnumString:
		if name, ok := f.Enum.Name(v.Enum()); ok {
			return parquet.ByteArrayValue([]byte(name))
		}
		return parquet.ByteArrayValue(strconv.AppendInt(nil, int64(v.Enum()), 10))
	case schema.ConvTimestamp, schema.ConvDuration:
		m := v.Message()
		fs := m.Descriptor().Fields()
		s, n := m.Get(fs.ByNumber(1)).Int(), m.Get(fs.ByNumber(2)).Int()
		return parquet.Int64Value(s*1_000_000 + n/1000)
	case schema.ConvJSON:
		j, _ := protojson.Marshal(v.Message().Interface())
		var b bytes.Buffer
		_ = json.Compact(&b, j)
		return parquet.ByteArrayValue(b.Bytes())
	}
	return parquet.NullValue()
}

func sortRow(row parquet.Row) {
	slices.SortStableFunc(row, func(a, b parquet.Value) int { return a.Column() - b.Column() })
}

// rangeSorted visits map entries in key order, the order a deterministic
// marshal writes them.
func rangeSorted(mp protoreflect.Map, f func(protoreflect.MapKey, protoreflect.Value) bool) {
	var keys []protoreflect.MapKey
	mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int {
		switch x := a.Interface().(type) {
		case bool:
			y := b.Bool()
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		case int32, int64:
			return cmpOrdered(a.Int(), b.Int())
		case uint32, uint64:
			return cmpOrdered(a.Uint(), b.Uint())
		}
		return cmpOrdered(a.String(), b.String())
	})
	for _, k := range keys {
		if !f(k, mp.Get(k)) {
			return
		}
	}
}

func cmpOrdered[T int64 | uint64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
