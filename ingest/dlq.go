package ingest

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// DeadLetterMessage is the full name of the protobuf message whose table
// schema the dead-letter tables have. Its fields, in column order:
//
//	value                  binary  the record value as consumed (framing included)
//	key                    binary  the record key
//	error                  string  why the record was rejected
//	field_path             string  the field the decoder stopped at ("" = the message)
//	byte_offset            long    where in the message it stopped (-1 if unknown)
//	message                string  the table's protobuf message
//	descriptor_fingerprint string  the proto version that rejected it
//	table                  string  the table the record was meant for
//
// followed by the `_kafka` column (topic, partition, offset, timestamp).
const DeadLetterMessage = "protolake.ingest.v1.DeadLetter"

var (
	dlqOnce sync.Once
	dlqDesc protoreflect.MessageDescriptor
	dlqErr  error
)

// deadLetterDescriptor builds the DeadLetter message descriptor once; it is
// immutable, so sharing it is safe.
func deadLetterDescriptor() (protoreflect.MessageDescriptor, error) {
	dlqOnce.Do(func() {
		field := func(name string, n int32, t descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
			return &descriptorpb.FieldDescriptorProto{
				Name: proto.String(name), Number: proto.Int32(n), Type: t.Enum(),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String(jsonName(name)),
			}
		}
		fd := &descriptorpb.FileDescriptorProto{
			Name:    proto.String("protolake/ingest/v1/dead_letter.proto"),
			Package: proto.String("protolake.ingest.v1"),
			Syntax:  proto.String("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{{
				Name: proto.String("DeadLetter"),
				Field: []*descriptorpb.FieldDescriptorProto{
					field("value", 1, descriptorpb.FieldDescriptorProto_TYPE_BYTES),
					field("key", 2, descriptorpb.FieldDescriptorProto_TYPE_BYTES),
					field("error", 3, descriptorpb.FieldDescriptorProto_TYPE_STRING),
					field("field_path", 4, descriptorpb.FieldDescriptorProto_TYPE_STRING),
					field("byte_offset", 5, descriptorpb.FieldDescriptorProto_TYPE_INT64),
					field("message", 6, descriptorpb.FieldDescriptorProto_TYPE_STRING),
					field("descriptor_fingerprint", 7, descriptorpb.FieldDescriptorProto_TYPE_STRING),
					field("table", 8, descriptorpb.FieldDescriptorProto_TYPE_STRING),
				},
			}},
		}
		f, err := protodesc.NewFile(fd, nil)
		if err != nil {
			dlqErr = fmt.Errorf("build dead-letter descriptor: %w", err)
			return
		}
		dlqDesc = f.Messages().ByName("DeadLetter")
	})
	return dlqDesc, dlqErr
}

func jsonName(s string) string {
	var b strings.Builder
	up := false
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up {
			r = []rune(strings.ToUpper(string(r)))[0]
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// deadLetter is one rejected record.
type deadLetter struct {
	value, key  []byte
	err         string
	fieldPath   string
	byteOffset  int64
	message     string
	fingerprint string
	table       string
}

// appendDeadLetter encodes d as DeadLetter wire bytes.
func appendDeadLetter(b []byte, d *deadLetter) []byte {
	bytesField := func(n protowire.Number, v []byte) {
		if len(v) > 0 {
			b = protowire.AppendTag(b, n, protowire.BytesType)
			b = protowire.AppendBytes(b, v)
		}
	}
	str := func(n protowire.Number, v string) {
		if v != "" {
			b = protowire.AppendTag(b, n, protowire.BytesType)
			b = protowire.AppendString(b, strings.ToValidUTF8(v, "\uFFFD"))
		}
	}
	bytesField(1, d.value)
	bytesField(2, d.key)
	str(3, d.err)
	str(4, d.fieldPath)
	if d.byteOffset != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d.byteOffset))
	}
	str(6, d.message)
	str(7, d.fingerprint)
	str(8, d.table)
	return b
}
