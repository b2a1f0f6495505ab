package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// versionN is message bench.M with 20 base fields and k added ones: each
// version is a compatible evolution of the one before.
func versionN(b *testing.B, k int) protoreflect.MessageDescriptor {
	b.Helper()
	var fields []*descriptorpb.FieldDescriptorProto
	for i := 1; i <= 20+k; i++ {
		fields = append(fields, &descriptorpb.FieldDescriptorProto{
			Name: proto.String(fmt.Sprintf("f%d", i)), Number: proto.Int32(int32(i)), JsonName: proto.String(fmt.Sprintf("f%d", i)),
			Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		})
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("bench.proto"), Package: proto.String("bench"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M"), Field: fields}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return fd.Messages().ByName("M")
}

// BenchmarkCheckTable is the start-up check's cost as the table's history
// grows: a table that archived n proto versions (each adding a field),
// judged against the next version. The 1-version table is the baseline;
// the cost per archived version is one descriptor read and two diffs.
func BenchmarkCheckTable(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			tbl, err := commitlog.Open(mem.New(), commitlog.Config{})
			if err != nil {
				b.Fatal(err)
			}
			var last *commitlog.Snapshot
			for k := range n {
				md := versionN(b, k)
				fp, _ := schema.Fingerprint(md)
				set, _ := schema.CanonicalDescriptorSet(md)
				if k == 0 {
					t, _ := schema.Derive(md, schema.Options{})
					spec := commitlog.TableSpec{SchemaString: t.SchemaString(), Proto: commitlog.ProtoPin{Message: "bench.M", Fingerprint: fp, DescriptorSet: set}}
					if last, err = tbl.Create(ctx, spec); err != nil {
						b.Fatal(err)
					}
				} else if err := tbl.ArchiveDescriptors(ctx, fp, set); err != nil {
					b.Fatal(err)
				}
			}
			next := versionN(b, n)
			b.ResetTimer()
			for b.Loop() {
				if _, err := ingest.CheckTable(ctx, tbl, last.Metadata(), next, schema.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
