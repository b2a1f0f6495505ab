package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// diffTables are the tables of every message in testdata/proto (well-known
// types, maps, oneofs, groups, recursion cut off at depth 2), derived once,
// in the order of their messages' full names: a corpus entry's selector
// must name the same message in every process (a descriptor set's files
// range in no fixed order).
var (
	diffOnce   sync.Once
	diffTables []*schema.Table
)

func differentialTables(t testing.TB) []*schema.Table {
	diffOnce.Do(func() {
		for _, set := range []string{"edge/edge.binpb", "adtrack/v1/adtrack.binpb", "evolution/v2/order.binpb"} {
			for _, md := range allMessages(t, set) {
				if tab, err := schema.Derive(md, schema.Options{MaxRecursionDepth: 2}); err == nil {
					diffTables = append(diffTables, tab)
				}
			}
		}
		slices.SortStableFunc(diffTables, func(a, b *schema.Table) int {
			return strings.Compare(string(a.Plan.Message.FullName()), string(b.Plan.Message.FullName()))
		})
	})
	return diffTables
}

// wireRec is one top-level record of an encoding.
type wireRec struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the whole record, tag included
	val []byte // a length-delimited record's payload
}

func splitWire(b []byte) []wireRec {
	var out []wireRec
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		r := wireRec{num: num, typ: typ, raw: b[:n+m]}
		if typ == protowire.BytesType {
			r.val, _ = protowire.ConsumeBytes(b[n : n+m])
		}
		out = append(out, r)
		b = b[n+m:]
	}
	return out
}

// packedWT is the element wire type of a packable field, or -1.
func packedWT(fd protoreflect.FieldDescriptor) protowire.Type {
	if fd == nil || !fd.IsList() {
		return -1
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return -1
	case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return protowire.Fixed64Type
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return protowire.Fixed32Type
	}
	return protowire.VarintType
}

// maxMutateDepth is how deep mutate recurses: the generator's nesting
// (gen.maxDepth) plus a map entry's level.
const maxMutateDepth = 5

// nested reports whether r is a record mutate can recurse into — a nested
// message, map entry or proto2 group — and returns its payload.
func nested(r wireRec, fd protoreflect.FieldDescriptor) ([]byte, bool) {
	if fd == nil {
		return nil, false
	}
	switch {
	case r.typ == protowire.BytesType && fd.Kind() == protoreflect.MessageKind:
		return r.val, true
	case r.typ == protowire.StartGroupType && fd.Kind() == protoreflect.GroupKind:
		_, _, n := protowire.ConsumeTag(r.raw)
		end := protowire.SizeTag(r.num)
		if len(r.raw) < n+end {
			return nil, false
		}
		return r.raw[n : len(r.raw)-end], true
	}
	return nil, false
}

// rewrap encodes payload v as record r's field again (length-delimited or
// a group).
func rewrap(r wireRec, v []byte) []byte {
	if r.typ == protowire.StartGroupType {
		b := protowire.AppendTag(nil, r.num, protowire.StartGroupType)
		b = append(b, v...)
		return protowire.AppendTag(b, r.num, protowire.EndGroupType)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, r.num, protowire.BytesType), v)
}

// mutate rewrites a valid encoding of md by ops: records duplicated,
// reordered or dropped, packed fields sent unpacked and back, empty packed
// chunks, nested messages (and groups, map entries) merged with a copy of
// themselves, raw fuzz bytes appended; and all of these at depth: inside
// one nested message, map entry or group (op 8), or inside every one of
// them at this level at once (op 9), down to maxMutateDepth — so a map
// value's repeated field goes unpacked, a nested list gets an empty chunk
// or a duplicated element. Every op keeps the result a message protobuf
// may accept or reject; the oracle decides.
func mutate(md protoreflect.MessageDescriptor, wire, ops []byte, depth int) []byte {
	recs := splitWire(wire)
	if len(recs) == 0 { // an empty message: give the ops a record to work on
		recs = append(recs, wireRec{})
	}
	for i := 0; i+1 < len(ops) && len(recs) > 0; i += 2 {
		k := int(ops[i+1]) % len(recs)
		r := recs[k]
		fd := md.Fields().ByNumber(r.num)
		wt := packedWT(fd)
		switch ops[i] % 10 {
		case 0: // duplicate
			recs = append(recs[:k+1], recs[k:]...)
		case 1: // swap with the next
			if k+1 < len(recs) {
				recs[k], recs[k+1] = recs[k+1], recs[k]
			}
		case 2: // packed → unpacked
			if wt >= 0 && r.typ == protowire.BytesType {
				var repl []wireRec
				for p := r.val; len(p) > 0; {
					n := protowire.ConsumeFieldValue(r.num, wt, p)
					if n < 0 {
						break
					}
					repl = append(repl, wireRec{num: r.num, typ: wt, raw: append(protowire.AppendTag(nil, r.num, wt), p[:n]...)})
					p = p[n:]
				}
				recs = append(recs[:k], append(repl, recs[k+1:]...)...)
			}
		case 3: // unpacked → a packed chunk of one
			if wt >= 0 && r.typ == wt {
				_, _, n := protowire.ConsumeTag(r.raw)
				recs[k] = wireRec{num: r.num, typ: protowire.BytesType, raw: protowire.AppendBytes(protowire.AppendTag(nil, r.num, protowire.BytesType), r.raw[n:])}
			}
		case 4: // an empty packed chunk of any packable field, present or not
			fs := md.Fields()
			if fs.Len() == 0 {
				break
			}
			if pf := fs.Get(int(ops[i+1]) % fs.Len()); packedWT(pf) >= 0 {
				empty := wireRec{num: pf.Number(), typ: protowire.BytesType, raw: protowire.AppendBytes(protowire.AppendTag(nil, pf.Number(), protowire.BytesType), nil)}
				recs = append(recs[:k], append([]wireRec{empty}, recs[k:]...)...)
			}
		case 5: // drop
			recs = append(recs[:k], recs[k+1:]...)
		case 6: // a nested message's payload merged with a copy of itself
			if v, ok := nested(r, fd); ok {
				recs[k].raw = rewrap(r, append(append([]byte{}, v...), v...))
			}
		case 8: // the same rewrites inside a nested message, map entry or group
			if v, ok := nested(r, fd); ok && depth < maxMutateDepth {
				recs[k].raw = rewrap(r, mutate(fd.Message(), v, ops[i+2:min(len(ops), i+10)], depth+1))
			}
		case 9: // the rest of the ops inside every nested record at this level
			if depth >= maxMutateDepth {
				break
			}
			sub := ops[i+2 : min(len(ops), i+12)]
			for j, r := range recs {
				f := md.Fields().ByNumber(r.num)
				if v, ok := nested(r, f); ok {
					recs[j].raw = rewrap(r, mutate(f.Message(), v, sub, depth+1))
				}
			}
		case 7: // raw bytes from the fuzzer
			recs = append(recs, wireRec{raw: ops[i+1 : min(len(ops), i+1+int(ops[i+1]%16))]})
		}
	}
	var out []byte
	for _, r := range recs {
		out = append(out, r.raw...)
	}
	return out
}

// FuzzDifferential writes, for a message of testdata/proto chosen by sel,
// a random valid record (seed) rewritten by ops, between two plain
// records of the same message, into one file. protobuf-go is the oracle:
// a record it rejects must be rejected (a *DecodeError: the caller
// dead-letters it); one it accepts is either read back by DuckDB (SELECT
// *) equal to what dynamicpb decodes under the documented mapping, or
// rejected for a documented reason (docs/type-mapping.md: invalid UTF-8 in
// a dropped value, values outside the mapping, nesting). Every value of
// every file lies within the file's Delta statistics.
func FuzzDifferential(f *testing.F) {
	tables := differentialTables(f)
	for i := range tables {
		f.Add(uint16(i), uint64(i), []byte{})
		f.Add(uint16(i), uint64(i)+100, []byte{0, 0, 2, 1, 4, 0, 6, 2})
		f.Add(uint16(i), uint64(i)+200, []byte{8, 0, 4, 1, 2, 0, 0, 0, 8, 1, 4, 2})
	}
	f.Fuzz(func(t *testing.T, sel uint16, seed uint64, ops []byte) {
		tab := tables[int(sel)%len(tables)]
		md := tab.Plan.Message
		g := &gen{r: rand.New(rand.NewPCG(seed, 10)), maxDepth: 3}
		base, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(md, 0))
		if err != nil {
			t.Skip()
		}
		plain, _ := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(md, 0))
		wire := mutate(md, base, ops, 0)

		dm := dynamicpb.NewMessage(md)
		var errDyn error
		if p := func() (p any) {
			defer func() { p = recover() }()
			errDyn = proto.Unmarshal(wire, dm)
			return nil
		}(); p != nil {
			t.Skipf("dynamicpb panicked: %v", p)
		}
		dPlain := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(plain, dPlain); err != nil {
			t.Fatalf("a generated record does not decode: %v", err)
		}
		st := mem.New()
		w, err := NewTable(Config{}, tab, st)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		k := func(o int64) Kafka { return Kafka{Topic: "f", Offset: o, Timestamp: time.UnixMilli(o)} }
		if err := w.Write(ctx, plain, k(0)); err != nil {
			t.Skipf("plain record rejected: %v", err) // e.g. a generated value outside the mapping
		}
		want := []*dynamicpb.Message{dPlain}
		errW := w.Write(ctx, wire, k(1))
		switch {
		case errW != nil:
			var de *DecodeError
			if !errors.As(errW, &de) {
				t.Fatalf("not a DecodeError: %v", errW)
			}
			if errDyn == nil && !errors.Is(errW, ErrInvalidValue) && !errors.Is(errW, ErrInvalidUTF8) && !errors.Is(errW, ErrTooDeep) {
				t.Fatalf("writer rejects what protobuf-go accepts: %v", errW)
			}
		case errDyn != nil:
			t.Fatalf("writer accepts what protobuf-go rejects (%v)", errDyn)
		default:
			want = append(want, dm)
		}
		if err := w.Write(ctx, plain, k(2)); err != nil {
			t.Fatal(err)
		}
		want = append(want, dPlain)
		files, rows := flushRows(t, w, st)
		if len(rows) != len(want) {
			t.Fatalf("DuckDB read %d rows, want %d", len(rows), len(want))
		}
		c := &cmpCtx{t: t}
		for i, row := range rows {
			if !hasNestedUnknown(want[i], true) {
				c.checkMessage(tab.Plan.Root, want[i], row, fmt.Sprintf("row %d: ", i))
			}
		}
		for _, e := range c.errs {
			t.Error(e)
		}
		if len(files) != 1 {
			t.Fatalf("%d files, want the 3 rows in one", len(files))
		}
		checkStats(t, files[0], rows)
	})
}

// checkStats checks a file's Delta statistics as a reader sees them (the
// add's stats JSON, parsed back) against every row DuckDB read from it:
// numRecords, each column's nullCount (booleans, binaries, arrays and maps
// included: they have no min/max) and that every value lies within the
// column's min/max (integers, floats, decimals, strings, dates,
// timestamps; nested structs too).
func checkStats(t *testing.T, fl File, rows []map[string]any) {
	t.Helper()
	js, err := fl.Stats.JSON()
	if err != nil {
		t.Fatal(err)
	}
	st, err := commitlog.ParseStats(js)
	if err != nil {
		t.Fatal(err)
	}
	if st.NumRecords == nil || *st.NumRecords != int64(len(rows)) {
		t.Errorf("file %s: numRecords %v, DuckDB read %d rows", fl.Path, st.NumRecords, len(rows))
	}
	if err := nullCounts(st.NullCount, rows, ""); err != nil {
		t.Errorf("file %s: %v", fl.Path, err)
	}
	for _, row := range rows {
		if err := withinStats(st.MinValues, st.MaxValues, row, ""); err != nil {
			t.Errorf("file %s: %v", fl.Path, err)
		}
	}
}

// nullCounts checks each nullCount statistic against the rows: a value is
// null when it or a struct above it is null.
func nullCounts(counts map[string]any, rows []map[string]any, path string) error {
	for name, c := range counts {
		col := make([]map[string]any, len(rows))
		nulls := int64(0)
		for i, row := range rows {
			v := row[name]
			if v == nil {
				nulls++
			}
			col[i], _ = v.(map[string]any)
		}
		if sub, ok := c.(map[string]any); ok {
			if err := nullCounts(sub, col, path+name+"."); err != nil {
				return err
			}
			continue
		}
		n, ok := c.(json.Number)
		if !ok {
			return fmt.Errorf("%s%s: nullCount %v (%T) is not a number", path, name, c, c)
		}
		if got, err := n.Int64(); err != nil || got != nulls {
			return fmt.Errorf("%s%s: nullCount %v, but DuckDB read %d nulls", path, name, n, nulls)
		}
	}
	return nil
}

// withinStats checks that the values of one row read by DuckDB lie within
// a file's Delta min/max statistics (nested as the struct shape).
func withinStats(mins, maxs map[string]any, row map[string]any, path string) error {
	for name, mn := range mins {
		mx := maxs[name]
		v, ok := row[name]
		if !ok || v == nil {
			continue
		}
		if sub, ok := mn.(map[string]any); ok {
			subMax, _ := mx.(map[string]any)
			subRow, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if err := withinStats(sub, subMax, subRow, path+name+"."); err != nil {
				return err
			}
			continue
		}
		below, above, ok := outside(v, mn, mx)
		if ok && (below || above) {
			return fmt.Errorf("%s%s = %v is outside the statistics [%v, %v]", path, name, v, mn, mx)
		}
	}
	return nil
}

// outside compares a DuckDB value with Delta statistics bounds; ok is false
// for types it does not compare.
func outside(v, mn, mx any) (below, above, ok bool) {
	num := func(b any) (float64, bool) {
		n, ok := b.(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	switch x := v.(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32, int:
		var f float64
		fmt.Sscan(fmt.Sprint(x), &f)
		lo, ok1 := num(mn)
		hi, ok2 := num(mx)
		return f < lo, f > hi, ok1 && ok2
	case float32, float64:
		var f float64
		if y, isF32 := x.(float32); isF32 {
			f = float64(y)
		} else {
			f = x.(float64)
		}
		if math.IsNaN(f) {
			return false, false, false
		}
		lo, ok1 := num(mn)
		hi, ok2 := num(mx)
		return f < lo, f > hi, ok1 && ok2
	case string:
		lo, ok1 := mn.(string)
		hi, ok2 := mx.(string)
		return x < lo, x > hi, ok1 && ok2
	case duckdb.Decimal:
		rat := func(b any) (*big.Rat, bool) {
			n, ok := b.(json.Number)
			if !ok {
				return nil, false
			}
			return new(big.Rat).SetString(n.String())
		}
		lo, ok1 := rat(mn)
		hi, ok2 := rat(mx)
		if !ok1 || !ok2 || x.Value == nil {
			return false, false, false
		}
		r := new(big.Rat).SetFrac(x.Value, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Scale)), nil))
		return r.Cmp(lo) < 0, r.Cmp(hi) > 0, true
	case time.Time:
		if lo, err1 := time.Parse(time.DateOnly, fmt.Sprint(mn)); err1 == nil { // a date
			hi, err2 := time.Parse(time.DateOnly, fmt.Sprint(mx))
			return x.Before(lo), x.After(hi), err2 == nil
		}
		lo, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(mn))
		hi, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(mx))
		// Timestamps are kept at millisecond precision: the max is the
		// value's millisecond (Truncate floors, also before 1970).
		ms := x.Truncate(time.Millisecond)
		return x.Before(lo), ms.After(hi), err1 == nil && err2 == nil
	}
	return false, false, false
}
