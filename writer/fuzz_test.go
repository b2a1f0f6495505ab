package writer

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

var fuzzTargets = []struct{ set, name string }{
	{"adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression"},
	{"edge/edge.binpb", "edge.Maps"},
	{"edge/edge.binpb", "edge.Legacy"},
	{"edge/edge.binpb", "edge.WellKnown"},
	{"edge/edge.binpb", "edge.Nested"},
	{"edge/edge.binpb", "edge.RepeatedScalars"},
	{"edge/edge.binpb", "edge.Oneofs"},
	{"edge/edge.binpb", "edge.Forest"},
}

var (
	fuzzOnce   sync.Once
	fuzzTables []*schema.Table
)

func fuzzSetup(t testing.TB) []*schema.Table {
	fuzzOnce.Do(func() {
		for _, ft := range fuzzTargets {
			fuzzTables = append(fuzzTables, deriveTable(t, ft.set, ft.name, schema.Options{MaxRecursionDepth: 2}))
		}
	})
	return fuzzTables
}

// hasNestedUnknown reports unknown fields below the root: a proto2 closed
// enum's unknown number lands there in protobuf-go, while the table keeps it
// as its decimal string.
func hasNestedUnknown(m protoreflect.Message, root bool) bool {
	if !root && len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				found = found || hasNestedUnknown(v.List().Get(i).Message(), false)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					found = found || hasNestedUnknown(mv.Message(), false)
					return !found
				})
			}
		default:
			found = found || hasNestedUnknown(v.Message(), false)
		}
		return !found
	})
	return found
}

// FuzzWrite feeds arbitrary bytes as a message of one of the test tables:
// the writer never panics, rejects what protobuf-go rejects, and what it
// accepts reads back from DuckDB exactly as dynamicpb decodes it.
func FuzzWrite(f *testing.F) {
	tables := fuzzSetup(f)
	g := &gen{r: rand.New(rand.NewPCG(3, 4)), maxDepth: 3}
	for i, tab := range tables {
		for range 3 {
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(tab.Plan.Message, 0))
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(0), []byte{0x0a, 0x80})
	f.Add(uint8(2), []byte{0x2b, 0x32, 0x01, 'x', 0x2c})
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		tab := tables[int(sel)%len(tables)]
		dm := dynamicpb.NewMessage(tab.Plan.Message)
		var errDyn error
		dynPanic := func() (p any) {
			defer func() { p = recover() }()
			errDyn = proto.Unmarshal(data, dm)
			return nil
		}()
		st := mem.New()
		w, err := NewTable(Config{}, tab, st)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		errW := w.Write(ctx, data, Kafka{Topic: "f", Timestamp: time.UnixMilli(0)})
		if dynPanic != nil {
			// dynamicpb itself panics on some malformed map entries (a
			// protobuf-go bug); there is no oracle, only "no panic here".
			t.Skipf("dynamicpb panicked: %v (writer: %v)", dynPanic, errW)
		}
		if errW != nil {
			var de *DecodeError
			if !errors.As(errW, &de) {
				t.Fatalf("not a DecodeError: %v", errW)
			}
			if w.BufferedRows() != 0 {
				t.Fatal("rows left after a failed message")
			}
			if errDyn == nil && !errors.Is(errW, ErrInvalidValue) && !errors.Is(errW, ErrInvalidUTF8) && !errors.Is(errW, ErrTooDeep) && !errors.Is(errW, ErrRecordTooLarge) {
				t.Fatalf("writer rejects what protobuf-go accepts: %v", errW)
			}
			return
		}
		if errDyn != nil {
			t.Fatalf("writer accepts what protobuf-go rejects (%v)", errDyn)
		}
		if hasNestedUnknown(dm, true) {
			return
		}
		_, rows := flushRows(t, w, st)
		if len(rows) != 1 {
			t.Fatalf("%d rows", len(rows))
		}
		c := &cmpCtx{t: t}
		c.checkMessage(tab.Plan.Root, dm, rows[0], "")
		for _, e := range c.errs {
			t.Error(e)
		}
	})
}
