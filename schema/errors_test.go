package schema

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// inlineMessage compiles one inline file and returns message name.
func inlineMessage(t testing.TB, src, name string) protoreflect.MessageDescriptor {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.proto"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	md, err := Load(context.Background(), Source{Files: []string{filepath.Join(dir, "x.proto")}, ImportPaths: []string{dir}}, name)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func TestDeriveErrors(t *testing.T) {
	edge := "edge/edge.binpb"
	ad := "adtrack/v1/adtrack.binpb"
	tests := []struct {
		name   string
		set    string
		msg    string
		opts   Options
		target any      // pointer to the error type expected
		want   []string // substrings of the message
	}{
		{"direct recursion", edge, "edge.TreeNode", Options{}, new(*RecursionError),
			[]string{"edge.TreeNode.children → edge.TreeNode", "children[]", "max_recursion_depth"}},
		{"singular recursion", edge, "edge.LinkedNode", Options{}, new(*RecursionError),
			[]string{"edge.LinkedNode.next → edge.LinkedNode"}},
		{"mutual recursion", edge, "edge.Ping", Options{}, new(*RecursionError),
			[]string{"edge.Ping.pong → edge.Pong.ping → edge.Ping", "at field path pong.ping"}},
		{"recursion below root", edge, "edge.Forest", Options{}, new(*RecursionError),
			[]string{"message edge.Forest is recursive at field path trees[].children[]: edge.TreeNode.children → edge.TreeNode"}},
		{"mutual recursion below root", edge, "edge.Forest", Options{MaxRecursionDepth: 0}, new(*RecursionError),
			[]string{"edge.TreeNode.children"}},
		{"top-level case collision", edge, "edge.Collide", Options{}, new(*CollisionError),
			[]string{`"user_id" (field 1)`, `"USER_ID" (field 2)`, "in edge.Collide", "case-insensitive"}},
		{"nested case collision", edge, "edge.CollideNested", Options{}, new(*CollisionError),
			[]string{`"Name" (field 1)`, `"name" (field 2)`, "inner (edge.CollideNested.Inner)"}},
		{"metadata column collision", edge, "edge.MetaCollide", Options{}, new(*CollisionError),
			[]string{`"_kafka" (field 1)`, "metadata column"}},
		{"partition column collision", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"IS_TEST=day(event_time)"}}, new(*CollisionError),
			[]string{`"is_test" (field 24)`, `"IS_TEST" (partition column)`}},
		{"invalid partition name", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"event day=day(event_time)"}}, new(*InvalidNameError),
			[]string{`"event day"`, "not allowed by Delta"}},
		{"invalid partition name comma", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"a,b=day(event_time)"}}, new(*InvalidNameError),
			[]string{`"a,b"`}},
		{"partition of unknown field", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"day(event_tme)"}}, new(*PartitionError),
			[]string{`no top-level field "event_tme"`, "did you mean event_time"}},
		{"day of a string", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"day(campaign_id)"}}, new(*PartitionError),
			[]string{"needs a singular google.protobuf.Timestamp field; campaign_id is string"}},
		{"identity of a timestamp", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"event_time"}}, new(*PartitionError),
			[]string{"partition by day(event_time) or hour(event_time)"}},
		{"identity of a list", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"segments"}}, new(*PartitionError),
			[]string{"segments is repeated"}},
		{"identity of a double", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"cpc"}}, new(*PartitionError),
			[]string{"cannot be a partition column"}},
		{"identity renamed", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"c=campaign_id"}}, new(*PartitionError),
			[]string{"keeps its name"}},
		{"message with no fields", edge, "edge.Nothing", Options{}, nil,
			[]string{"edge.Nothing has no fields that map to columns", "declares no fields"}},
		{"message with only empty fields", edge, "edge.OnlyNothing", Options{}, nil,
			[]string{"edge.OnlyNothing has no fields that map to columns", "nothing: message edge.Nothing has no fields"}},
		{"bad enums option", edge, "edge.Scalars", Options{Enums: "names"}, nil, []string{`option enums: "names"`}},
		{"bad uint64 option", edge, "edge.Scalars", Options{Uint64: "u64"}, nil, []string{`option uint64: "u64"`}},
		{"negative depth", edge, "edge.Scalars", Options{MaxRecursionDepth: -1}, nil, []string{"max_recursion_depth: -1"}},
		{"huge depth", edge, "edge.Scalars", Options{MaxRecursionDepth: 1000}, nil, []string{"max_recursion_depth: 1000"}},
		{"duplicate partition", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"is_test", "is_test"}}, nil, []string{"listed twice"}},
		{"kafka identity", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"_kafka.timestamp"}}, nil, []string{"needs a transform"}},
		{"unknown transform", ad, "adtrack.v1.AdImpression", Options{Partitions: []string{"month(event_time)"}}, nil, []string{"unknown transform"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Derive(msg(t, tt.set, tt.msg), tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.target != nil && !errors.As(err, tt.target) {
				t.Errorf("error %T is not %T: %v", err, tt.target, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRecursionErrorCycle(t *testing.T) {
	_, err := Derive(msg(t, "edge/edge.binpb", "edge.Pong"), Options{})
	var re *RecursionError
	if !errors.As(err, &re) {
		t.Fatalf("got %v", err)
	}
	want := []string{"edge.Pong.ping", "edge.Ping.pong", "edge.Pong"}
	if strings.Join(re.Cycle, "|") != strings.Join(want, "|") {
		t.Errorf("cycle %v, want %v", re.Cycle, want)
	}
	if re.Path != "ping.pong" {
		t.Errorf("path %q", re.Path)
	}
}

func TestRecursionThroughMapAndGroup(t *testing.T) {
	md := inlineMessage(t, `syntax = "proto3";
package x;
message X { string name = 1; map<string, X> kids = 2; }`, "x.X")
	_, err := Derive(md, Options{})
	if err == nil || !strings.Contains(err.Error(), "at field path kids{}.value: x.X.kids → x.X") {
		t.Fatalf("got %v", err)
	}
	tb, err := Derive(md, Options{MaxRecursionDepth: 1, NoKafkaMeta: true, NoUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Schema.String(); got != "struct<name:string,kids:map<string,struct<name:string,kids:map<string,binary>>>>" {
		t.Errorf("schema %s", got)
	}
	g := inlineMessage(t, `syntax = "proto2";
package x;
message G { optional group Node = 1 { optional int32 v = 2; optional G g = 3; } }`, "x.G")
	_, err = Derive(g, Options{})
	if err == nil || !strings.Contains(err.Error(), "x.G.node → x.G.Node.g → x.G") {
		t.Fatalf("got %v", err)
	}
	tb, err = Derive(g, Options{MaxRecursionDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	cut := tb.Plan.Root.Field(1).Message.Field(3).Message.Field(1).Message.Field(3)
	if cut.Conv != ConvRaw || cut.Kind.String() != "message" {
		t.Errorf("cut %s: conv %v kind %v", cut.Path, cut.Conv, cut.Kind)
	}
	if f := tb.Plan.Root.Field(1); f.WireType != 3 {
		t.Errorf("group wire type %v", f.WireType)
	}
}

func TestMetaCollideAvoided(t *testing.T) {
	// Turning the metadata column off resolves the collision.
	if _, err := Derive(msg(t, "edge/edge.binpb", "edge.MetaCollide"), Options{NoKafkaMeta: true}); err != nil {
		t.Fatal(err)
	}
}

func TestTooManyColumns(t *testing.T) {
	md := inlineMessage(t, `syntax = "proto3";
package x;
message Bin { int64 v = 1; Bin left = 2; Bin right = 3; }`, "x.Bin")
	_, err := Derive(md, Options{MaxRecursionDepth: 20})
	if err == nil || !strings.Contains(err.Error(), "more than 10000 columns") {
		t.Fatalf("got %v", err)
	}
	if _, err := Derive(md, Options{MaxRecursionDepth: 3}); err != nil {
		t.Fatal(err)
	}
}

func TestMapEntryIsNotATable(t *testing.T) {
	_, err := Derive(msg(t, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression.LabelsEntry"), Options{})
	if err == nil || !strings.Contains(err.Error(), "map entry") {
		t.Fatalf("got %v", err)
	}
}

func TestFindMessageErrors(t *testing.T) {
	set := "adtrack/v1/adtrack.binpb"
	tests := []struct {
		name       string
		candidates string
		notMessage string
	}{
		{"adtrack.v1.AdImpresion", "adtrack.v1.AdImpression", ""},
		{"AdImpression", "adtrack.v1.AdImpression", ""},
		{"adtrack.v1.adimpression", "adtrack.v1.AdImpression", ""},
		{"adtrack.v1.DeviceType", "", "enum"},
		{"adtrack.v1.ClickTrackService", "", "service"},
		{"totally.Unrelated", "", ""},
		{"not a name!", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FindMessage(loadSet(t, set), tt.name, set)
			var nf *MessageNotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("got %v", err)
			}
			if got := strings.Join(nf.Candidates, ","); !strings.HasPrefix(got, tt.candidates) || (tt.candidates == "" && got != "" && tt.notMessage == "") {
				t.Errorf("candidates %q, want prefix %q", got, tt.candidates)
			}
			if nf.NotMessage != tt.notMessage {
				t.Errorf("NotMessage %q, want %q", nf.NotMessage, tt.notMessage)
			}
			if !strings.Contains(err.Error(), set) {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
	if _, err := FindMessage(loadSet(t, set), "", set); err == nil || !strings.Contains(err.Error(), "--message") {
		t.Errorf("empty name: %v", err)
	}
	if md, err := FindMessage(loadSet(t, set), ".adtrack.v1.Geo", set); err != nil || md.FullName() != "adtrack.v1.Geo" {
		t.Errorf("leading dot: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A set holding structure.proto without the scalars.proto it imports.
	full := loadSet(t, "edge/edge.binpb")
	fd, err := full.FindFileByPath("edge/structure.proto")
	if err != nil {
		t.Fatal(err)
	}
	partial, _ := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(fd)}})
	dup, _ := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(fd), protodesc.ToFileDescriptorProto(fd)}})
	// A set holding adtrack.proto alone: its imports are all well-known
	// types, which resolve without being in the set.
	ad, err := loadSet(t, "adtrack/v1/adtrack.binpb").FindFileByPath("adtrack/v1/adtrack.proto")
	if err != nil {
		t.Fatal(err)
	}
	alone, _ := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(ad)}})
	if _, err := Load(ctx, Source{DescriptorSet: write("alone.binpb", alone)}, "adtrack.v1.AdImpression"); err != nil {
		t.Errorf("set without well-known imports: %v", err)
	}

	tests := []struct {
		name string
		src  Source
		msg  string
		want []string
	}{
		{"corrupt set", Source{DescriptorSet: write("corrupt.binpb", []byte{0x0a, 0xff, 0x01, 0x02})}, "a.B",
			[]string{"corrupt.binpb is not a binary FileDescriptorSet", "--include_imports"}},
		{"empty set", Source{DescriptorSet: write("empty.binpb", nil)}, "a.B", []string{"holds no files"}},
		{"text instead of binary", Source{DescriptorSet: write("text.binpb", []byte("syntax = \"proto3\";"))}, "a.B", []string{"not a binary FileDescriptorSet"}},
		{"missing set", Source{DescriptorSet: filepath.Join(dir, "nope.binpb")}, "a.B", []string{"nope.binpb", "no such file"}},
		{"import missing from set", Source{DescriptorSet: write("partial.binpb", partial)}, "edge.Point",
			[]string{"edge/structure.proto imports edge/scalars.proto, which is not in the set", "--include_imports"}},
		{"duplicate file", Source{DescriptorSet: write("dup.binpb", dup)}, "edge.Point", []string{"holds edge/structure.proto twice"}},
		{"missing import", Source{Files: []string{write("src/a.proto", []byte("syntax = \"proto3\";\nimport \"other/b.proto\";\nmessage A { b.B x = 1; }"))}, ImportPaths: []string{filepath.Join(dir, "src")}}, "A",
			[]string{"other/b.proto", "--proto-path"}},
		{"syntax error", Source{Files: []string{write("src/c.proto", []byte("syntax = \"proto3\";\nmessage C { int32 = 1; }"))}, ImportPaths: []string{filepath.Join(dir, "src")}}, "C",
			[]string{"c.proto:2"}},
		{"unknown message in source", Source{Files: []string{filepath.Join(protoDir, "edge/scalars.proto")}, ImportPaths: []string{protoDir}}, "edge.Scalar",
			[]string{`message "edge.Scalar" is not defined in ../testdata/proto/edge/scalars.proto`, "did you mean edge.Scalars"}},
		{"nothing given", Source{}, "a.B", []string{"no descriptors given"}},
		{"both given", Source{DescriptorSet: "x", Files: []string{"y"}}, "a.B", []string{"not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(ctx, tt.src, tt.msg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileMatchesDescriptorSet(t *testing.T) {
	// .proto sources compiled at run time (well-known types from nowhere on
	// disk) derive exactly the schema of the protoc-built descriptor set.
	for _, c := range []struct{ file, set, msg string }{
		{"adtrack/v1/adtrack.proto", "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression"},
		{"edge/legacy.proto", "edge/edge.binpb", "edge.Legacy"},
		{"edge/wkt.proto", "edge/edge.binpb", "edge.WellKnown"},
		{"edge/structure.proto", "edge/edge.binpb", "edge.Maps"},
	} {
		src, err := Load(context.Background(), Source{Files: []string{filepath.Join(protoDir, c.file)}, ImportPaths: []string{protoDir}}, c.msg)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Derive(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Derive(msg(t, c.set, c.msg), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if a.SchemaString() != b.SchemaString() || a.ParquetText() != b.ParquetText() {
			t.Errorf("%s: compiled and descriptor-set schemas differ", c.msg)
		}
	}
}
