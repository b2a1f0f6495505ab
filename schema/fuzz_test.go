package schema

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
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

// FuzzMutatedDescriptorSet applies descriptor-level mutations, steered by the
// fuzzer's bytes, to the committed edge-case set: fields change type, label,
// number, name or referenced type (creating recursion, collisions, dangling
// references, maps of odd types…). Whatever survives validation must
// derive, diff and fingerprint without panicking.
func FuzzMutatedDescriptorSet(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join(protoDir, "edge/edge.binpb"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 3, 2, 7, 4, 1, 9, 9})
	f.Add([]byte{2, 5, 1, 3, 3, 0, 0, 1, 5, 2, 2, 2})
	f.Add([]byte{6, 1, 1, 1, 7, 2, 3, 4, 8, 0, 1, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		var msgs []*descriptorpb.DescriptorProto
		var names []string
		var collect func(pkg string, ms []*descriptorpb.DescriptorProto)
		collect = func(prefix string, ms []*descriptorpb.DescriptorProto) {
			for _, m := range ms {
				msgs = append(msgs, m)
				names = append(names, prefix+"."+m.GetName())
				collect(prefix+"."+m.GetName(), m.NestedType)
			}
		}
		for _, fd := range set.File {
			collect("."+fd.GetPackage(), fd.MessageType)
		}
		kinds := []descriptorpb.FieldDescriptorProto_Type{
			descriptorpb.FieldDescriptorProto_TYPE_INT32, descriptorpb.FieldDescriptorProto_TYPE_UINT64,
			descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_BYTES,
			descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_TYPE_GROUP,
			descriptorpb.FieldDescriptorProto_TYPE_ENUM, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE,
			descriptorpb.FieldDescriptorProto_TYPE_SINT64, descriptorpb.FieldDescriptorProto_TYPE_FIXED32,
		}
		for i := 0; i+3 < len(ops); i += 4 {
			m := msgs[int(ops[i+1])%len(msgs)]
			if len(m.Field) == 0 {
				continue
			}
			fld := m.Field[int(ops[i+2])%len(m.Field)]
			arg := int(ops[i+3])
			switch ops[i] % 9 {
			case 0: // change the type
				fld.Type = kinds[arg%len(kinds)].Enum()
				fld.TypeName = nil
				if k := fld.GetType(); k == descriptorpb.FieldDescriptorProto_TYPE_MESSAGE || k == descriptorpb.FieldDescriptorProto_TYPE_GROUP {
					fld.TypeName = proto.String(names[arg%len(names)])
				}
			case 1: // point at another message (recursion, map entries…)
				fld.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
				fld.TypeName = proto.String(names[arg%len(names)])
			case 2: // toggle repeated
				if fld.GetLabel() == descriptorpb.FieldDescriptorProto_LABEL_REPEATED {
					fld.Label = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
				} else {
					fld.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
				}
			case 3: // renumber
				fld.Number = proto.Int32(int32(arg%40 + 1))
			case 4: // rename, maybe colliding ignoring case
				fld.Name = proto.String(strings.ToUpper(m.Field[arg%len(m.Field)].GetName()))
				fld.JsonName = nil
			case 5: // drop the field
				m.Field = append(m.Field[:arg%len(m.Field)], m.Field[arg%len(m.Field)+1:]...)
			case 6: // add a self-reference
				m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{
					Name: proto.String("self_" + strconv.Itoa(arg)), Number: proto.Int32(int32(1000 + arg)),
					Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
					TypeName: proto.String(names[int(ops[i+1])%len(names)]),
				})
			case 7: // odd oneof index
				fld.OneofIndex = proto.Int32(int32(arg % 3))
			case 8: // required / proto3 optional
				if arg%2 == 0 {
					fld.Label = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
				} else {
					fld.Proto3Optional = proto.Bool(true)
				}
			}
		}
		b, err := proto.Marshal(&set)
		if err != nil {
			return
		}
		files, err := ParseDescriptorSet(b, "mutated")
		if err != nil {
			return
		}
		orig, err := ParseDescriptorSet(raw, "orig")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			md, err := FindMessage(files, strings.TrimPrefix(name, "."), "mutated")
			if err != nil {
				continue
			}
			for _, o := range []Options{{}, {MaxRecursionDepth: 2, Enums: EnumInt, Partitions: []string{"day(_kafka.timestamp)"}}} {
				if tb, err := Derive(md, o); err == nil {
					_ = tb.SchemaString()
					if tb.Parquet == nil || len(tb.Plan.Columns) == 0 {
						t.Fatalf("%s: derived without columns", name)
					}
				}
				if old, err := FindMessage(orig, strings.TrimPrefix(name, "."), "orig"); err == nil {
					_, _ = Diff(old, md, o)
					_, _ = Diff(md, old, o)
				}
			}
			if _, err := Fingerprint(md); err != nil {
				t.Errorf("fingerprint of %s: %v", name, err)
			}
		}
	})
}
