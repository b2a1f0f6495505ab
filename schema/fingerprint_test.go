package schema

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func fingerprint(t *testing.T, md protoreflect.MessageDescriptor) string {
	t.Helper()
	fp, err := Fingerprint(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q is not hex sha256", fp)
	}
	return fp
}

// rawSet reads a committed descriptor set as a proto message.
func rawSet(t *testing.T, rel string) *descriptorpb.FileDescriptorSet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(protoDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return &set
}

func fromSet(t *testing.T, set *descriptorpb.FileDescriptorSet, name string) protoreflect.MessageDescriptor {
	t.Helper()
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ParseDescriptorSet(b, "test")
	if err != nil {
		t.Fatal(err)
	}
	md, err := FindMessage(files, name, "test")
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func TestFingerprintStable(t *testing.T) {
	base := fingerprint(t, msg(t, "edge/edge.binpb", "edge.Maps"))

	// File order does not matter.
	set := rawSet(t, "edge/edge.binpb")
	rng := rand.New(rand.NewSource(1))
	for range 5 {
		rng.Shuffle(len(set.File), func(i, j int) { set.File[i], set.File[j] = set.File[j], set.File[i] })
		if got := fingerprint(t, fromSet(t, set, "edge.Maps")); got != base {
			t.Fatalf("shuffled set: %s, want %s", got, base)
		}
	}

	// Unrelated files do not matter: edge.Maps needs structure.proto and
	// scalars.proto only; edge.binpb holds every edge file.
	var only []*descriptorpb.FileDescriptorProto
	for _, f := range set.File {
		if f.GetName() == "edge/structure.proto" || f.GetName() == "edge/scalars.proto" {
			only = append(only, f)
		}
	}
	if got := fingerprint(t, fromSet(t, &descriptorpb.FileDescriptorSet{File: only}, "edge.Maps")); got != base {
		t.Errorf("set without unrelated files: %s, want %s", got, base)
	}

	// Source code info (comments) and json_name do not matter, nor file
	// options (go_package).
	for _, f := range set.File {
		f.SourceCodeInfo = &descriptorpb.SourceCodeInfo{Location: []*descriptorpb.SourceCodeInfo_Location{{Path: []int32{4, 0}, LeadingComments: proto.String("hello"), Span: []int32{0, 0, 1}}}}
		f.Options = &descriptorpb.FileOptions{GoPackage: proto.String("example.com/x")}
		for _, m := range f.MessageType {
			for _, fd := range m.Field {
				fd.JsonName = nil
			}
		}
	}
	if got := fingerprint(t, fromSet(t, set, "edge.Maps")); got != base {
		t.Errorf("with comments / without json_name: %s, want %s", got, base)
	}

	// protoc's descriptor set and protocompile's compilation agree.
	src, err := Load(context.Background(), Source{Files: []string{"edge/structure.proto"}, ImportPaths: []string{protoDir}}, "edge.Maps")
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, src); got != base {
		t.Errorf("compiled from source: %s, want %s", got, base)
	}
	ad := fingerprint(t, msg(t, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression"))
	adSrc, err := Load(context.Background(), Source{Files: []string{"adtrack/v1/adtrack.proto"}, ImportPaths: []string{protoDir}}, "adtrack.v1.AdImpression")
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, adSrc); got != ad {
		t.Errorf("adtrack compiled from source: %s, want %s", got, ad)
	}

	// The canonical set round-trips: archived bytes give the same
	// fingerprint and the same table schema.
	canon, err := CanonicalDescriptorSet(msg(t, "edge/edge.binpb", "edge.Maps"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := ParseDescriptorSet(canon, "archive")
	if err != nil {
		t.Fatal(err)
	}
	back, err := FindMessage(files, "edge.Maps", "archive")
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, back); got != base {
		t.Errorf("round-tripped canonical set: %s, want %s", got, base)
	}
	canon2, _ := CanonicalDescriptorSet(back)
	if !bytes.Equal(canon, canon2) {
		t.Error("canonical set is not a fixed point")
	}
	a, _ := Derive(back, Options{})
	b, _ := Derive(msg(t, "edge/edge.binpb", "edge.Maps"), Options{})
	if a.SchemaString() != b.SchemaString() {
		t.Error("archived descriptors derive another schema")
	}
	// Only the two needed files are archived.
	var cs descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(canon, &cs); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range cs.File {
		names = append(names, f.GetName())
	}
	if strings.Join(names, ",") != "edge/scalars.proto,edge/structure.proto" {
		t.Errorf("archived files %v", names)
	}
}

func TestFingerprintSensitive(t *testing.T) {
	v1 := fingerprint(t, msg(t, "evolution/v1/order.binpb", "shop.Order"))
	v2 := fingerprint(t, msg(t, "evolution/v2/order.binpb", "shop.Order"))
	v3 := fingerprint(t, msg(t, "evolution/v3/order.binpb", "shop.Order"))
	if v1 == v2 || v1 == v3 || v2 == v3 {
		t.Fatalf("versions share a fingerprint: %s %s %s", v1, v2, v3)
	}
	base := `syntax = "proto3";
package p;
import "dep.proto";
message M { int64 id = 1; d.Inner inner = 2; }`
	dep := `syntax = "proto3";
package d;
enum E { E_UNSPECIFIED = 0; E_A = 1; }
message Inner { string s = 1; E e = 2; }`
	fp := func(base, dep string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "m.proto"), []byte(base), 0o644)
		os.WriteFile(filepath.Join(dir, "dep.proto"), []byte(dep), 0o644)
		md, err := Load(context.Background(), Source{Files: []string{"m.proto"}, ImportPaths: []string{dir}}, "p.M")
		if err != nil {
			t.Fatal(err)
		}
		return fingerprint(t, md)
	}
	ref := fp(base, dep)
	same := map[string][2]string{
		"comments":      {strings.Replace(base, "int64 id = 1;", "int64 id = 1; /* id */", 1), dep},
		"whitespace":    {strings.ReplaceAll(base, "; ", ";\n  "), dep},
		"go_package":    {strings.Replace(base, "package p;", "package p;\noption go_package = \"x/p\";", 1), dep},
		"explicit json": {strings.Replace(base, "int64 id = 1;", "int64 id = 1 [json_name = \"id\"];", 1), dep},
	}
	for name, c := range same {
		if got := fp(c[0], c[1]); got != ref {
			t.Errorf("%s changed the fingerprint", name)
		}
	}
	differ := map[string][2]string{
		"field added":            {strings.Replace(base, "int64 id = 1;", "int64 id = 1; bool b = 3;", 1), dep},
		"field renamed":          {strings.Replace(base, "int64 id = 1;", "int64 ident = 1;", 1), dep},
		"field type":             {strings.Replace(base, "int64 id = 1;", "sint64 id = 1;", 1), dep},
		"imported message field": {base, strings.Replace(dep, "string s = 1;", "bytes s = 1;", 1)},
		"imported enum value":    {base, strings.Replace(dep, "E_A = 1;", "E_A = 1; E_B = 2;", 1)},
		"custom json_name":       {strings.Replace(base, "int64 id = 1;", "int64 id = 1 [json_name = \"ID\"];", 1), dep},
		"reserved":               {strings.Replace(base, "int64 id = 1;", "int64 id = 1; reserved 9;", 1), dep},
	}
	for name, c := range differ {
		if got := fp(c[0], c[1]); got == ref {
			t.Errorf("%s kept the fingerprint", name)
		}
	}
}
