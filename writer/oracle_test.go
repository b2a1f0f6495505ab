package writer

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// ---- random messages ----------------------------------------------------

type gen struct {
	r        *rand.Rand
	maxDepth int
}

var sampleStrings = []string{"", "a", "héllo", "日本語テキスト", "emoji 😀", "quote\"back\\slash", "tab\tnl\n", "a/b=c", strings.Repeat("long-string-", 5) + "ü",
	strings.Repeat("p", StringPrefix-1) + "\U0010FFFF\U0010FFFFx"} // the statistics' cut point

func (g *gen) str() string {
	if g.r.IntN(3) == 0 {
		b := make([]rune, g.r.IntN(40))
		for i := range b {
			b[i] = rune(0x20 + g.r.IntN(0x3000))
			if !utf8.ValidRune(b[i]) {
				b[i] = 'x'
			}
		}
		return string(b)
	}
	return sampleStrings[g.r.IntN(len(sampleStrings))]
}

func (g *gen) message(md protoreflect.MessageDescriptor, depth int) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		m.Set(md.Fields().ByNumber(1), protoreflect.ValueOfInt64(g.r.Int64N(253402300799+62135596800)-62135596800))
		m.Set(md.Fields().ByNumber(2), protoreflect.ValueOfInt32(int32(g.r.IntN(1e9))))
		return m
	case "google.protobuf.Duration":
		s := g.r.Int64N(2*315576000000) - 315576000000
		n := int32(g.r.IntN(1e9))
		if s < 0 {
			n = -n
		}
		m.Set(md.Fields().ByNumber(1), protoreflect.ValueOfInt64(s))
		m.Set(md.Fields().ByNumber(2), protoreflect.ValueOfInt32(n))
		return m
	case "google.protobuf.Value":
		g.value(m, depth)
		return m
	}
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		if fd.Cardinality() != protoreflect.Required && g.r.IntN(3) == 0 {
			continue
		}
		if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			if depth >= g.maxDepth && fd.Cardinality() != protoreflect.Required {
				continue
			}
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range g.r.IntN(4) {
				k := g.scalar(fd.MapKey())
				mp.Set(k.MapKey(), g.fieldValue(fd.MapValue(), depth))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range g.r.IntN(4) {
				l.Append(g.fieldValue(fd, depth))
			}
		default:
			m.Set(fd, g.fieldValue(fd, depth))
		}
	}
	return m
}

func (g *gen) value(m *dynamicpb.Message, depth int) {
	fs := m.Descriptor().Fields()
	k := g.r.IntN(6)
	if depth >= g.maxDepth {
		k = g.r.IntN(4)
	}
	switch k {
	case 0:
		m.Set(fs.ByName("null_value"), protoreflect.ValueOfEnum(0))
	case 1:
		m.Set(fs.ByName("number_value"), protoreflect.ValueOfFloat64(g.float()))
	case 2:
		m.Set(fs.ByName("string_value"), protoreflect.ValueOfString(g.str()))
	case 3:
		m.Set(fs.ByName("bool_value"), protoreflect.ValueOfBool(g.r.IntN(2) == 0))
	case 4:
		fd := fs.ByName("struct_value")
		m.Set(fd, protoreflect.ValueOfMessage(g.message(fd.Message(), depth+1)))
	case 5:
		fd := fs.ByName("list_value")
		m.Set(fd, protoreflect.ValueOfMessage(g.message(fd.Message(), depth+1)))
	}
}

func (g *gen) float() float64 {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return float64(g.r.IntN(2000) - 1000)
	case 3:
		return g.r.NormFloat64() * 1e30
	}
	return g.r.NormFloat64()
}

func (g *gen) fieldValue(fd protoreflect.FieldDescriptor, depth int) protoreflect.Value {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return protoreflect.ValueOfMessage(g.message(fd.Message(), depth+1))
	}
	return g.scalar(fd)
}

func (g *gen) scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	r := g.r
	big := r.IntN(4) == 0
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		if fd.Enum().IsClosed() || r.IntN(5) != 0 {
			return protoreflect.ValueOfEnum(vals.Get(r.IntN(vals.Len())).Number())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(r.IntN(200) - 100))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if big {
			return protoreflect.ValueOfInt32(int32(r.Uint32()))
		}
		return protoreflect.ValueOfInt32(int32(r.IntN(200) - 100))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if big {
			return protoreflect.ValueOfInt64(int64(r.Uint64()))
		}
		return protoreflect.ValueOfInt64(int64(r.IntN(200) - 100))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if big {
			return protoreflect.ValueOfUint32(r.Uint32())
		}
		return protoreflect.ValueOfUint32(uint32(r.IntN(100)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if big {
			return protoreflect.ValueOfUint64(r.Uint64())
		}
		return protoreflect.ValueOfUint64(uint64(r.IntN(100)))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(g.float()))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(g.float())
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(g.str())
	case protoreflect.BytesKind:
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	}
	panic("kind " + fd.Kind().String())
}

// ---- comparison guided by the plan ---------------------------------------

type cmpCtx struct {
	t    testing.TB
	errs []string
}

func (c *cmpCtx) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// checkMessage compares the DuckDB struct (map[string]any) of one message
// position with the dynamicpb message.
func (c *cmpCtx) checkMessage(mp *schema.MessagePlan, msg protoreflect.Message, got map[string]any, path string) {
	for _, f := range mp.Fields {
		if f.Conv == schema.ConvSkip || (f.PartitionIndex >= 0 && f.Column < 0) {
			continue
		}
		g, ok := got[f.Name]
		if !ok {
			c.errorf("%s%s: column missing", path, f.Name)
			continue
		}
		c.checkField(f, msg, g, path+f.Name)
	}
}

func (c *cmpCtx) checkField(f *schema.FieldPlan, msg protoreflect.Message, got any, path string) {
	fd := f.Desc
	switch f.Cardinality {
	case schema.Singular:
		if !msg.Has(fd) && f.Presence == schema.Explicit {
			if got != nil {
				c.errorf("%s: got %v, want null", path, got)
			}
			return
		}
		c.checkValue(f, msg.Get(fd), got, path)
	case schema.Repeated:
		l := msg.Get(fd).List()
		gl, ok := got.([]any)
		if !ok {
			c.errorf("%s: got %T %v, want a list of %d", path, got, got, l.Len())
			return
		}
		if len(gl) != l.Len() {
			c.errorf("%s: got %d elements, want %d", path, len(gl), l.Len())
			return
		}
		for i := range gl {
			c.checkValue(f, l.Get(i), gl[i], fmt.Sprintf("%s[%d]", path, i))
		}
	case schema.Map:
		m := msg.Get(fd).Map()
		var keys, vals []any
		switch om := got.(type) {
		case duckdb.OrderedMap:
			keys, vals = om.Keys(), om.Values()
		case *duckdb.OrderedMap:
			keys, vals = om.Keys(), om.Values()
		case duckdb.Map:
			for k, v := range om {
				keys, vals = append(keys, k), append(vals, v)
			}
		default:
			c.errorf("%s: got %T, want a map", path, got)
			return
		}
		if len(keys) != m.Len() {
			c.errorf("%s: got %d entries, want %d", path, len(keys), m.Len())
			return
		}
		want := map[string]protoreflect.Value{}
		m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			want[leafString(f.MapKey, k.Value())] = v
			return true
		})
		for i, k := range keys {
			ks := gotString(f.MapKey, k)
			wv, ok := want[ks]
			if !ok {
				c.errorf("%s: unexpected key %s", path, ks)
				continue
			}
			c.checkValue(f.MapValue, wv, vals[i], path+"{"+ks+"}")
		}
	}
}

func (c *cmpCtx) checkValue(f *schema.FieldPlan, v protoreflect.Value, got any, path string) {
	if f.Conv == schema.ConvNone {
		gm, ok := got.(map[string]any)
		if !ok {
			c.errorf("%s: got %T %v, want a struct", path, got, got)
			return
		}
		c.checkMessage(f.Message, v.Message(), gm, path+".")
		return
	}
	if f.Conv == schema.ConvRaw {
		b, ok := got.([]byte)
		if !ok {
			c.errorf("%s: got %T, want bytes", path, got)
			return
		}
		m := dynamicpb.NewMessage(f.Desc.Message())
		if err := proto.Unmarshal(b, m); err != nil || !proto.Equal(m, v.Message().Interface()) {
			c.errorf("%s: raw message differs (%v)", path, err)
		}
		return
	}
	want := leafString(f, v)
	have := gotString(f, got)
	if want != have {
		c.errorf("%s: got %s, want %s", path, have, want)
	}
}

// leafString renders what a leaf column must hold for a protobuf value.
func leafString(f *schema.FieldPlan, v protoreflect.Value) string {
	if f.Wrapper {
		m := v.Message()
		v = m.Get(m.Descriptor().Fields().ByNumber(1))
	}
	switch f.Conv {
	case schema.ConvInt32, schema.ConvSint32, schema.ConvSfixed32, schema.ConvInt64, schema.ConvSint64, schema.ConvSfixed64:
		return strconv.FormatInt(v.Int(), 10)
	case schema.ConvUint32, schema.ConvFixed32, schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		return strconv.FormatUint(v.Uint(), 10)
	case schema.ConvUint64Long, schema.ConvFixed64Long:
		return strconv.FormatInt(int64(v.Uint()), 10)
	case schema.ConvFloat:
		return fmt.Sprintf("f32:%08x", math.Float32bits(float32(v.Float())))
	case schema.ConvDouble:
		return fmt.Sprintf("f64:%016x", math.Float64bits(v.Float()))
	case schema.ConvBool:
		return strconv.FormatBool(v.Bool())
	case schema.ConvString:
		return strconv.Quote(v.String())
	case schema.ConvBytes:
		return hex.EncodeToString(v.Bytes())
	case schema.ConvEnumString:
		if name, ok := f.Enum.Name(v.Enum()); ok {
			return strconv.Quote(name)
		}
		return strconv.Quote(strconv.Itoa(int(v.Enum())))
	case schema.ConvEnumInt:
		return strconv.Itoa(int(v.Enum()))
	case schema.ConvTimestamp, schema.ConvDuration:
		m := v.Message()
		fs := m.Descriptor().Fields()
		s, n := m.Get(fs.ByNumber(1)).Int(), m.Get(fs.ByNumber(2)).Int()
		return strconv.FormatInt(s*1_000_000+n/1000, 10)
	case schema.ConvJSON:
		j, err := protojson.Marshal(v.Message().Interface())
		if err != nil {
			if v.Message().Descriptor().FullName() == "google.protobuf.Value" {
				return `"null"`
			}
			return "error: " + err.Error()
		}
		var b bytes.Buffer
		_ = json.Compact(&b, j)
		return strconv.Quote(b.String())
	}
	return "unhandled conv " + f.Conv.String()
}

// gotString renders a DuckDB value of a leaf column like leafString.
func gotString(f *schema.FieldPlan, got any) string {
	switch x := got.(type) {
	case nil:
		return "NULL"
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, int:
		return fmt.Sprint(x)
	case float32:
		return fmt.Sprintf("f32:%08x", math.Float32bits(x))
	case float64:
		return fmt.Sprintf("f64:%016x", math.Float64bits(x))
	case bool:
		return strconv.FormatBool(x)
	case string:
		return strconv.Quote(x)
	case []byte:
		return hex.EncodeToString(x)
	case time.Time:
		return strconv.FormatInt(x.UnixMicro(), 10)
	case duckdb.Decimal:
		return x.Value.String()
	}
	return fmt.Sprintf("%T(%v)", got, got)
}

// ---- the differential test -----------------------------------------------

// readRows reads every row of the files with DuckDB as column name → value,
// ordered by _kafka.offset.
func readRows(t testing.TB, paths []string) []map[string]any {
	t.Helper()
	db := ducktest.Open(t)
	rows, err := db.Query("SELECT * FROM " + ducktest.ReadParquet(paths...) + " ORDER BY _kafka.offset")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		for i, c := range cols {
			m[c] = vals[i]
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// allMessages lists the messages of a descriptor set.
func allMessages(t testing.TB, set string) []protoreflect.MessageDescriptor {
	files, err := schema.ReadDescriptorSet("../testdata/proto/" + set)
	if err != nil {
		t.Fatal(err)
	}
	var out []protoreflect.MessageDescriptor
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			md := ms.Get(i)
			if md.IsMapEntry() {
				continue
			}
			out = append(out, md)
			walk(md.Messages())
		}
	}
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "google.") {
			walk(fd.Messages())
		}
		return true
	})
	return out
}

// oracleMessages writes n random messages (some made of two concatenated
// encodings, which protobuf merges) and compares every value DuckDB reads
// back with what dynamicpb decodes.
func oracleMessages(t *testing.T, md protoreflect.MessageDescriptor, opts schema.Options, n int, seed uint64) {
	tab, err := schema.Derive(md, opts)
	if err != nil {
		t.Skipf("derive: %v", err)
	}
	st := mem.New()
	w, err := NewTable(Config{MaxRows: int64(n/2 + 1), PageBytes: 4096}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	g := &gen{r: rand.New(rand.NewPCG(seed, 1)), maxDepth: 4}
	ctx := context.Background()
	var want []*dynamicpb.Message
	for i := range n {
		wire, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(md, 0))
		if err != nil {
			t.Fatal(err)
		}
		if g.r.IntN(4) == 0 { // a second encoding: merged by protobuf
			more, _ := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(md, 0))
			wire = append(wire, more...)
		}
		dm := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(wire, dm); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, wire, Kafka{Topic: "t", Offset: int64(i), Timestamp: time.UnixMilli(int64(i))}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		want = append(want, dm)
	}
	_, rows := flushRows(t, w, st)
	if len(rows) != n {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), n)
	}
	c := &cmpCtx{t: t}
	for i, row := range rows {
		c.checkMessage(tab.Plan.Root, want[i], row, "")
		if tab.Plan.Unknown >= 0 {
			u, _ := row["_unknown"].([]byte)
			if wu := want[i].GetUnknown(); !bytes.Equal(u, wu) && !(len(u) == 0 && len(wu) == 0) {
				c.errorf("row %d _unknown: got %x, want %x", i, u, wu)
			}
		}
		if len(c.errs) > 5 {
			break
		}
	}
	for _, e := range c.errs {
		t.Error(e)
	}
}

func TestOracleAllMessages(t *testing.T) {
	for _, set := range []string{"edge/edge.binpb", "adtrack/v1/adtrack.binpb"} {
		for _, md := range allMessages(t, set) {
			t.Run(string(md.FullName()), func(t *testing.T) {
				oracleMessages(t, md, schema.Options{MaxRecursionDepth: 2}, 60, 7)
			})
		}
	}
}
