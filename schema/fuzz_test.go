package schema

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// FuzzParseDescriptorSet feeds random and mutated descriptor sets to the
// loader and everything downstream of it: it may reject them, never panic.
// Seeds are the committed descriptor sets; found inputs live in
// testdata/fuzz/FuzzParseDescriptorSet.
func FuzzParseDescriptorSet(f *testing.F) {
	for _, rel := range []string{"adtrack/v1/adtrack.binpb", "edge/edge.binpb", "evolution/v1/order.binpb", "evolution/v3/order.binpb"} {
		b, err := os.ReadFile(filepath.Join(protoDir, rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := ParseDescriptorSet(data, "fuzz")
		if err != nil {
			return
		}
		n := 0
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			msgs := fd.Messages()
			for i := 0; i < msgs.Len() && n < 20; i++ {
				n++
				md := msgs.Get(i)
				for _, o := range []Options{{}, {MaxRecursionDepth: 2, Enums: EnumInt, Uint64: Uint64Long, NoKafkaMeta: true}} {
					tb, err := Derive(md, o)
					if err == nil {
						_ = tb.SchemaString()
						_ = tb.ParquetText()
						_, _ = Diff(md, md, o)
					}
				}
				if _, err := Fingerprint(md); err == nil {
					canon, _ := CanonicalDescriptorSet(md)
					if _, err := ParseDescriptorSet(canon, "canonical"); err != nil {
						t.Errorf("canonical set of %s does not load: %v", md.FullName(), err)
					}
				}
			}
			return n < 20
		})
	})
}

// FuzzParseSchemaString: a stored schemaString is outside input too.
func FuzzParseSchemaString(f *testing.F) {
	for _, c := range goldenCases[:4] {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", c.name+".delta.json"))
		if err == nil {
			f.Add(string(b))
		}
	}
	f.Add(`{"type":"struct","fields":[{"name":"a","type":{"type":"array","elementType":"long","containsNull":false},"nullable":true,"metadata":{"protolake.field_number":1}}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseSchemaString(s)
		if err != nil {
			return
		}
		b, err := st.MarshalJSON()
		if err != nil {
			return
		}
		st2, err := ParseSchemaString(string(b))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		b2, _ := st2.MarshalJSON()
		if string(b) != string(b2) {
			t.Fatalf("not a fixed point:\n%s\n%s", b, b2)
		}
	})
}
