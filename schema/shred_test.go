package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// refShredder is a reference implementation of the plan walk for tests: it
// shreds a protoreflect.Message (not wire bytes) into one Parquet row
// following the plan's columns and levels, the way the writer must.
type refShredder struct {
	t    testing.TB
	plan *Plan
	cols [][]parquet.Value
}

type kafkaMeta struct {
	topic     string
	partition int32
	offset    int64
	ts        time.Time
}

func shredRow(t testing.TB, p *Plan, m protoreflect.Message, k *kafkaMeta, unknown []byte) parquet.Row {
	t.Helper()
	s := &refShredder{t: t, plan: p, cols: make([][]parquet.Value, len(p.Columns))}
	s.message(p.Root, m, 0)
	if p.Kafka != nil {
		if k == nil {
			for _, c := range []int{p.Kafka.Topic, p.Kafka.Partition, p.Kafka.Offset, p.Kafka.Timestamp} {
				s.null(c, 0, 0)
			}
		} else {
			s.emit(p.Kafka.Topic, parquet.ByteArrayValue([]byte(k.topic)), 0, 2)
			s.emit(p.Kafka.Partition, parquet.Int32Value(k.partition), 0, 2)
			s.emit(p.Kafka.Offset, parquet.Int64Value(k.offset), 0, 2)
			s.emit(p.Kafka.Timestamp, parquet.Int64Value(k.ts.UnixMicro()), 0, 2)
		}
	}
	if p.Unknown >= 0 {
		if unknown == nil {
			s.null(p.Unknown, 0, 0)
		} else {
			s.emit(p.Unknown, parquet.ByteArrayValue(unknown), 0, 1)
		}
	}
	var row parquet.Row
	for i, c := range s.cols {
		if len(c) == 0 {
			t.Fatalf("column %d (%v) got no value", i, p.Columns[i].Path)
		}
		row = append(row, c...)
	}
	return row
}

func (s *refShredder) emit(col int, v parquet.Value, rep, def int) {
	c := s.plan.Columns[col]
	if rep > c.MaxRepLevel || def > c.MaxDefLevel {
		s.t.Fatalf("column %v: levels rep %d def %d beyond max %d/%d", c.Path, rep, def, c.MaxRepLevel, c.MaxDefLevel)
	}
	s.cols[col] = append(s.cols[col], v.Level(rep, def, col))
}

func (s *refShredder) null(col, rep, def int) {
	s.cols[col] = append(s.cols[col], parquet.NullValue().Level(rep, def, col))
}

func (s *refShredder) nulls(first, end, rep, def int) {
	for c := first; c < end; c++ {
		s.null(c, rep, def)
	}
}

func (s *refShredder) message(mp *MessagePlan, m protoreflect.Message, r int) {
	for _, f := range mp.Fields {
		if f.Conv == ConvSkip || f.PartitionIndex >= 0 {
			continue
		}
		switch f.Cardinality {
		case Singular:
			if !m.Has(f.Desc) {
				if f.Presence != Implicit {
					s.nulls(f.FirstColumn, f.EndColumn, r, f.NullDefLevel)
					continue
				}
			}
			s.value(f, m.Get(f.Desc), r, f.DefLevel)
		case Repeated:
			l := m.Get(f.Desc).List()
			if l.Len() == 0 {
				s.nulls(f.FirstColumn, f.EndColumn, r, f.DefLevel)
			}
			for i := range l.Len() {
				rr := r
				if i > 0 {
					rr = f.RepLevel
				}
				s.value(f, l.Get(i), rr, f.ElemDefLevel)
			}
		case Map:
			mm := m.Get(f.Desc).Map()
			if mm.Len() == 0 {
				s.nulls(f.FirstColumn, f.EndColumn, r, f.DefLevel)
			}
			var keys []protoreflect.MapKey
			mm.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i].Interface()) < fmt.Sprint(keys[j].Interface()) })
			for i, k := range keys {
				rr := r
				if i > 0 {
					rr = f.RepLevel
				}
				s.value(f.MapKey, k.Value(), rr, f.MapKey.DefLevel)
				s.value(f.MapValue, mm.Get(k), rr, f.MapValue.DefLevel)
			}
		}
	}
}

// value writes one present value of f (a singular value or an element).
func (s *refShredder) value(f *FieldPlan, v protoreflect.Value, r, def int) {
	if f.Message != nil {
		s.message(f.Message, v.Message(), r)
		return
	}
	s.emit(f.Column, s.convert(f, v), r, def)
}

func (s *refShredder) convert(f *FieldPlan, v protoreflect.Value) parquet.Value {
	if f.Wrapper {
		wm := v.Message()
		v = wm.Get(wm.Descriptor().Fields().ByNumber(1))
	}
	switch f.Conv {
	case ConvInt32, ConvSint32, ConvSfixed32:
		return parquet.Int32Value(int32(v.Int()))
	case ConvInt64, ConvSint64, ConvSfixed64:
		return parquet.Int64Value(v.Int())
	case ConvUint32, ConvFixed32:
		return parquet.Int64Value(int64(uint32(v.Uint())))
	case ConvUint64Decimal, ConvFixed64Decimal:
		return parquet.FixedLenByteArrayValue(PutDecimal20(make([]byte, 9), v.Uint()))
	case ConvUint64Long, ConvFixed64Long:
		return parquet.Int64Value(int64(v.Uint()))
	case ConvFloat:
		return parquet.FloatValue(float32(v.Float()))
	case ConvDouble:
		return parquet.DoubleValue(v.Float())
	case ConvBool:
		return parquet.BooleanValue(v.Bool())
	case ConvString:
		return parquet.ByteArrayValue([]byte(v.String()))
	case ConvBytes:
		return parquet.ByteArrayValue(v.Bytes())
	case ConvEnumString:
		n := v.Enum()
		if name, ok := f.Enum.Name(n); ok {
			return parquet.ByteArrayValue([]byte(name))
		}
		return parquet.ByteArrayValue(strconv.AppendInt(nil, int64(n), 10))
	case ConvEnumInt:
		return parquet.Int32Value(int32(v.Enum()))
	case ConvTimestamp, ConvDuration:
		m := v.Message()
		fs := m.Descriptor().Fields()
		sec, nanos := m.Get(fs.ByNumber(1)).Int(), m.Get(fs.ByNumber(2)).Int()
		micros := sec*1e6 + nanos/1000
		if f.Conv == ConvTimestamp && nanos < 0 {
			s.t.Fatalf("negative nanos")
		}
		return parquet.Int64Value(micros)
	case ConvJSON:
		b, err := protojson.Marshal(v.Message().Interface())
		if err != nil {
			s.t.Fatalf("protojson %s: %v", f.Path, err)
		}
		var out bytes.Buffer
		if err := json.Compact(&out, b); err != nil {
			s.t.Fatal(err)
		}
		return parquet.ByteArrayValue(out.Bytes())
	case ConvRaw:
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(v.Message().Interface())
		if err != nil {
			s.t.Fatal(err)
		}
		return parquet.ByteArrayValue(b)
	}
	s.t.Fatalf("%s: no conversion %v", f.Path, f.Conv)
	return parquet.Value{}
}

// writeParquet writes rows with the table's Parquet schema to dir/name.
func writeParquet(t testing.TB, tb *Table, dir, name string, rows ...parquet.Row) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewWriter(f, tb.Parquet)
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatalf("write rows: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close parquet writer: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// fill sets every field of m to a non-default value (two elements per list
// and map), recursing into messages up to depth levels.
func fill(m protoreflect.Message, depth int, seed int) {
	fields := m.Descriptor().Fields()
	oneofDone := map[protoreflect.FullName]bool{}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if oneofDone[od.FullName()] {
				continue
			}
			oneofDone[od.FullName()] = true
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil && depth <= 0 {
				continue
			}
			mm := m.Mutable(fd).Map()
			for j := range 2 {
				k := scalarValue(fd.MapKey(), seed+j).MapKey()
				if fd.MapValue().Message() != nil {
					v := mm.NewValue()
					fillMessage(v.Message(), depth-1, seed+j)
					mm.Set(k, v)
				} else {
					mm.Set(k, scalarValue(fd.MapValue(), seed+j))
				}
			}
		case fd.IsList():
			if fd.Message() != nil && depth <= 0 {
				continue
			}
			l := m.Mutable(fd).List()
			for j := range 2 {
				if fd.Message() != nil {
					v := l.NewElement()
					fillMessage(v.Message(), depth-1, seed+j)
					l.Append(v)
				} else {
					l.Append(scalarValue(fd, seed+j))
				}
			}
		case fd.Message() != nil:
			if depth <= 0 {
				continue
			}
			v := m.NewField(fd)
			fillMessage(v.Message(), depth-1, seed)
			m.Set(fd, v)
		default:
			m.Set(fd, scalarValue(fd, seed+i))
		}
	}
}

func fillMessage(m protoreflect.Message, depth, seed int) {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		fs := m.Descriptor().Fields()
		m.Set(fs.ByNumber(1), protoreflect.ValueOfInt64(1700000000+int64(seed)))
		m.Set(fs.ByNumber(2), protoreflect.ValueOfInt32(123456789))
		return
	case "google.protobuf.Duration":
		fs := m.Descriptor().Fields()
		m.Set(fs.ByNumber(1), protoreflect.ValueOfInt64(3+int64(seed)))
		m.Set(fs.ByNumber(2), protoreflect.ValueOfInt32(500000))
		return
	case "google.protobuf.Value":
		fs := m.Descriptor().Fields()
		m.Set(fs.ByName("string_value"), protoreflect.ValueOfString(fmt.Sprintf("v%d", seed)))
		return
	case "google.protobuf.Struct":
		fs := m.Descriptor().Fields()
		mm := m.Mutable(fs.ByName("fields")).Map()
		v := mm.NewValue()
		v.Message().Set(v.Message().Descriptor().Fields().ByName("number_value"), protoreflect.ValueOfFloat64(1.5))
		mm.Set(protoreflect.ValueOfString("k").MapKey(), v)
		return
	case "google.protobuf.ListValue":
		fs := m.Descriptor().Fields()
		l := m.Mutable(fs.ByName("values")).List()
		v := l.NewElement()
		v.Message().Set(v.Message().Descriptor().Fields().ByName("bool_value"), protoreflect.ValueOfBool(true))
		l.Append(v)
		return
	case "google.protobuf.Any":
		fs := m.Descriptor().Fields()
		m.Set(fs.ByName("type_url"), protoreflect.ValueOfString("type.googleapis.com/x.Y"))
		m.Set(fs.ByName("value"), protoreflect.ValueOfBytes([]byte{1, 2, 3}))
		return
	}
	fill(m, depth, seed)
}

func scalarValue(fd protoreflect.FieldDescriptor, seed int) protoreflect.Value {
	n := int64(seed + 1)
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(seed%2 == 0)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get((seed + 1) % vals.Len()).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-n * 1000))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-n * 1e12)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(math.MaxUint32 - uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(math.MaxUint64 - uint64(n))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(n) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(n) + 0.25)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("s%d", n))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(n), 0xff})
	}
	panic("not scalar: " + fd.Kind().String())
}

func newFilled(md protoreflect.MessageDescriptor, depth int) protoreflect.Message {
	m := dynamicpb.NewMessage(md)
	fill(m, depth, 0)
	return m
}
