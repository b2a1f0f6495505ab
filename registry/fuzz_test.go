package registry

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/protolake/protolake/schema"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// FuzzSchemaText feeds a registry's schema text — outside input — through
// both forms compile accepts (serialized descriptor, .proto text): errors
// are fine, panics and hangs are not.
func FuzzSchemaText(f *testing.F) {
	f.Add(moneyProto)
	f.Add(orderProto)
	b, _ := proto.Marshal(&descriptorpb.FileDescriptorProto{Name: proto.String("a.proto"), Dependency: []string{"b.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("A"), Field: []*descriptorpb.FieldDescriptorProto{{
			Name: proto.String("x"), Number: proto.Int32(1), Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), TypeName: proto.String(".B")}}}}})
	f.Add(base64.StdEncoding.EncodeToString(b))
	f.Fuzz(func(t *testing.T, text string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if fdp, ok := serializedDescriptor(text); ok {
			_, _, _ = fromDescriptors(fdp, map[string]string{"b.proto": text})
			return
		}
		files, err := schema.CompileSources(ctx, map[string]string{"main.proto": text, "dep.proto": moneyProto}, "main.proto")
		if err == nil {
			if _, err := files.FindFileByPath("main.proto"); err != nil {
				t.Fatalf("compiled but main.proto not registered: %v", err)
			}
		}
	})
}
