package ingest

import (
	"context"
	"testing"

	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/writer"
	"google.golang.org/protobuf/proto"
)

// TestShards: a sink's shards report and flush their buffers together;
// FlushLargest empties the largest shard first and stops at the target;
// Flush returns every shard's files; Discard empties every shard.
func TestShards(t *testing.T) {
	ctx := context.Background()
	st, err := schema.Derive((&adtrackpb.AdImpression{}).ProtoReflect().Descriptor(), schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := mem.New()
	s, err := newShards(writer.Config{}, st, store, 3)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(rows [3]int) {
		t.Helper()
		for i, n := range rows {
			for o := range n {
				b, err := proto.Marshal(&adtrackpb.AdImpression{ImpressionId: "imp", AdvertiserId: int64(o)})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.ws[i].Write(ctx, b, writer.Kafka{Topic: "t", Partition: int32(i), Offset: int64(o)}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	fill([3]int{3000, 10, 0})
	small := s.ws[1].BufferedBytes()
	if got, want := s.BufferedBytes(), s.ws[0].BufferedBytes()+small; got != want || small == 0 {
		t.Fatalf("BufferedBytes = %d, want the shards' sum %d (shard 1: %d)", got, want, small)
	}
	if err := s.FlushLargest(ctx, small); err != nil {
		t.Fatal(err)
	}
	if s.ws[0].BufferedBytes() != 0 || s.ws[1].BufferedBytes() != small {
		t.Errorf("after FlushLargest(%d): shards hold %d and %d bytes, want 0 and %d", small, s.ws[0].BufferedBytes(), s.ws[1].BufferedBytes(), small)
	}
	if files := s.TakeFinished(); len(files) != 1 || files[0].Rows != 3000 {
		t.Errorf("FlushLargest finished %+v, want shard 0's file of 3000 rows", files)
	}
	fill([3]int{5, 0, 7})
	files, err := s.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, f := range files {
		rows += f.Rows
	}
	if len(files) != 3 || rows != 22 || s.BufferedBytes() != 0 {
		t.Errorf("Flush: %d files of %d rows, %d bytes left; want 3 files (one per shard with rows) of 22 rows, none left", len(files), rows, s.BufferedBytes())
	}
	fill([3]int{1, 2, 3})
	s.Discard()
	if s.BufferedBytes() != 0 {
		t.Errorf("Discard left %d bytes", s.BufferedBytes())
	}
	if files, err := s.Flush(ctx); err != nil || len(files) != 0 {
		t.Errorf("Flush after Discard = %d files, %v; want none", len(files), err)
	}
}

// TestAssignShard: a table's partitions spread evenly over its shards as
// they are assigned, and a newly assigned one takes the least used shard.
func TestAssignShard(t *testing.T) {
	tb := &table{main: &sink{w: &shards{ws: make([]*writer.Writer, 3)}}}
	other := &table{main: &sink{w: &shards{ws: make([]*writer.Writer, 3)}}}
	r := &Runner{parts: map[tp]*partState{}}
	for i := range int32(3) {
		p := &partState{t: other, tp: tp{"o", i}}
		r.parts[p.tp] = p
		r.assignShard(p) // another table's partitions do not count
	}
	count := func() [3]int {
		var c [3]int
		for _, p := range r.parts {
			if p.t == tb {
				c[p.shard]++
			}
		}
		return c
	}
	for i := range int32(7) {
		p := &partState{t: tb, tp: tp{"t", i}}
		r.parts[p.tp] = p
		r.assignShard(p)
	}
	if got := count(); got != [3]int{3, 2, 2} {
		t.Fatalf("7 partitions on 3 shards: %v, want [3 2 2]", got)
	}
	for _, i := range []int32{1, 4} { // both on shard 1
		if r.parts[tp{"t", i}].shard != 1 {
			t.Fatalf("partition %d on shard %d, want 1", i, r.parts[tp{"t", i}].shard)
		}
		delete(r.parts, tp{"t", i})
	}
	p := &partState{t: tb, tp: tp{"t", 9}}
	r.parts[p.tp] = p
	r.assignShard(p)
	if p.shard != 1 {
		t.Errorf("new partition on shard %d, want the emptied shard 1 (counts %v)", p.shard, count())
	}
}
