package writer

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// wire helpers for hand-made encodings
func tagV(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func tagB(b []byte, num protowire.Number, p []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), p)
}

func tagF64(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), v)
}

func packedV(vals ...uint64) []byte {
	var p []byte
	for _, v := range vals {
		p = protowire.AppendVarint(p, v)
	}
	return p
}

// TestWireSemantics writes hand-made encodings that exercise protobuf's
// decoding rules and compares what DuckDB reads back with dynamicpb.
func TestWireSemantics(t *testing.T) {
	cases := []struct {
		name, set, msg string
		wire           []byte
	}{
		{"last scalar wins", "edge/edge.binpb", "edge.Scalars",
			tagV(tagB(tagV(nil, 1, 5), 14, []byte("first")), 1, 7)},
		{"last string wins, fields out of order", "edge/edge.binpb", "edge.Scalars",
			tagB(tagV(tagB(nil, 14, []byte("a")), 2, 99), 14, []byte("b"))},
		{"packed and unpacked mixed", "edge/edge.binpb", "edge.RepeatedScalars",
			tagV(tagB(tagV(nil, 1, 1), 1, packedV(2, 3)), 1, 4)},
		{"unpacked field sent packed", "edge/edge.binpb", "edge.RepeatedScalars",
			tagB(tagV(nil, 17, 9), 17, packedV(10, 11))},
		{"packed doubles", "edge/edge.binpb", "edge.RepeatedScalars",
			tagF64(tagB(nil, 12, protowire.AppendFixed64(protowire.AppendFixed64(nil, math.Float64bits(1.5)), math.Float64bits(-2))), 12, math.Float64bits(3))},
		{"singular message merged", "edge/edge.binpb", "edge.Nested",
			tagB(tagB(nil, 2, tagB(nil, 1, tagV(tagB(nil, 3, []byte("p1")), 1, 1))), 2, tagB(nil, 1, tagV(nil, 2, 2)))},
		{"map entry without key, without value", "edge/edge.binpb", "edge.Maps",
			tagB(tagB(nil, 1, tagB(nil, 2, []byte("no key"))), 1, tagV(nil, 1, 42))},
		{"duplicate map keys: last wins", "edge/edge.binpb", "edge.Maps",
			tagB(tagB(tagB(nil, 1, tagB(tagV(nil, 1, 7), 2, []byte("old"))), 1, tagB(tagV(nil, 1, 8), 2, []byte("x"))), 1, tagB(tagV(nil, 1, 7), 2, []byte("new")))},
		{"large map with duplicate keys", "edge/edge.binpb", "edge.Maps", func() []byte {
			var b []byte
			for i := range 100 {
				b = tagB(b, 1, tagB(tagV(nil, 1, uint64(i%13)), 2, []byte{byte('a' + i%26)}))
			}
			return b
		}()},
		{"nested maps with duplicate keys at both levels", "edge/edge.binpb", "edge.Nested", func() []byte {
			poly := func(tags ...string) []byte {
				var p []byte
				for i := 0; i+1 < len(tags); i += 2 {
					p = tagB(p, 2, tagB(tagB(nil, 1, []byte(tags[i])), 2, []byte(tags[i+1])))
				}
				return p
			}
			var b []byte
			b = tagB(b, 4, tagB(tagB(nil, 1, []byte("a")), 2, poly("x", "1", "y", "2", "x", "3")))
			b = tagB(b, 4, tagB(tagB(nil, 1, []byte("b")), 2, poly("p", "q", "r", "s", "t", "u")))
			b = tagB(b, 4, tagB(tagB(nil, 1, []byte("a")), 2, poly("z", "9", "z", "8")))
			b = tagB(b, 4, tagB(tagB(nil, 1, []byte("c")), 2, poly("k", "v")))
			return b
		}()},
		{"map message value absent", "edge/edge.binpb", "edge.Maps",
			tagB(nil, 12, tagB(nil, 1, []byte("k")))},
		{"oneof: last member wins", "edge/edge.binpb", "edge.Oneofs",
			tagB(tagV(tagB(nil, 3, []byte("s")), 2, 5), 4, tagV(nil, 1, 3))},
		{"oneof: member back again", "edge/edge.binpb", "edge.Oneofs",
			tagV(tagB(tagV(nil, 2, 5), 3, []byte("s")), 2, 6)},
		{"unknown enum number", "edge/edge.binpb", "edge.Scalars", tagV(nil, 16, 77)},
		{"wrong wire type is an unknown field", "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression",
			tagV(tagB(nil, 1, []byte("id")), 3, 5)},
		{"unknown fields kept in order", "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression",
			tagV(tagB(tagB(nil, 1000, []byte("u1")), 1, []byte("id")), 999, 3)},
		{"proto2 group and defaults", "edge/edge.binpb", "edge.Legacy", func() []byte {
			b := tagV(nil, 1, 1)
			b = protowire.AppendTag(b, 5, protowire.StartGroupType)
			b = tagB(b, 6, []byte("sku"))
			b = protowire.AppendTag(b, 5, protowire.EndGroupType)
			b = protowire.AppendTag(b, 8, protowire.StartGroupType)
			b = tagB(b, 10, []byte("f"))
			b = protowire.AppendTag(b, 8, protowire.EndGroupType)
			return b
		}()},
		{"extension kept as unknown", "edge/edge.binpb", "edge.Legacy", tagB(tagV(nil, 1, 1), 100, []byte("note"))},
		{"wrapper merged", "edge/edge.binpb", "edge.WellKnown",
			tagB(tagB(nil, 5, tagV(nil, 1, 3)), 5, nil)},
		{"timestamp fields merged", "edge/edge.binpb", "edge.WellKnown",
			tagB(tagB(nil, 1, tagV(nil, 1, 100)), 1, tagV(nil, 2, 5000))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			md := loadMessage(t, c.set, c.msg)
			tab, err := schema.Derive(md, schema.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dm := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(c.wire, dm); err != nil {
				t.Fatalf("protobuf-go rejects the case: %v", err)
			}
			st := mem.New()
			w, _ := NewTable(Config{}, tab, st)
			ctx := context.Background()
			if err := w.Write(ctx, c.wire, Kafka{Topic: "t", Timestamp: time.UnixMilli(0)}); err != nil {
				t.Fatal(err)
			}
			_, rows := flushRows(t, w, st)
			cc := &cmpCtx{t: t}
			cc.checkMessage(tab.Plan.Root, dm, rows[0], "")
			u, _ := rows[0]["_unknown"].([]byte)
			if !bytes.Equal(u, dm.GetUnknown()) {
				cc.errorf("_unknown = %x, want %x", u, dm.GetUnknown())
			}
			for _, e := range cc.errs {
				t.Error(e)
			}
		})
	}
}

// TestRejectsLikeProtobuf: values protobuf parses but the row drops must be
// valid too; protobuf-go rejects these messages, so must the writer.
func TestRejectsLikeProtobuf(t *testing.T) {
	cases := []struct {
		name, set, msg string
		wire           []byte
	}{
		{"overwritten string with invalid UTF-8", "edge/edge.binpb", "edge.Scalars",
			tagB(tagB(nil, 14, []byte{0xff}), 14, []byte("ok"))},
		{"replaced oneof member with invalid UTF-8", "edge/edge.binpb", "edge.Oneofs",
			tagV(tagB(nil, 3, []byte{0xc0}), 2, 1)},
		{"replaced oneof message member truncated", "edge/edge.binpb", "edge.Oneofs",
			tagV(tagB(nil, 4, []byte{0x1a, 0x05, 'a'}), 2, 1)},
		{"dropped duplicate map entry with invalid UTF-8", "edge/edge.binpb", "edge.Maps",
			tagB(tagB(nil, 1, tagB(tagV(nil, 1, 1), 2, []byte{0xff})), 1, tagB(tagV(nil, 1, 1), 2, []byte("ok")))},
		{"dropped duplicate map entry with a bad nested message", "edge/edge.binpb", "edge.Maps",
			tagB(tagB(nil, 12, tagB(tagB(nil, 1, []byte("k")), 2, tagB(nil, 3, []byte{0xfe}))), 12, tagB(nil, 1, []byte("k")))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			md := loadMessage(t, c.set, c.msg)
			if err := proto.Unmarshal(c.wire, dynamicpb.NewMessage(md)); err == nil {
				t.Fatal("protobuf-go accepts the case")
			}
			tab, err := schema.Derive(md, schema.Options{})
			if err != nil {
				t.Fatal(err)
			}
			w, _ := NewTable(Config{}, tab, mem.New())
			err = w.Write(context.Background(), c.wire, Kafka{})
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if w.BufferedRows() != 0 {
				t.Error("rows buffered")
			}
		})
	}
}
