package ingest

import (
	"context"
	"slices"
	"testing"

	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/writer"
	"github.com/twmb/franz-go/pkg/kgo"
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
	// buffered is the rows' bytes in every shard's buffers (by length).
	buffered := func() int64 {
		var n int64
		for _, w := range s.ws {
			n += w.BufferedBytes()
		}
		return n
	}
	fill([3]int{3000, 10, 0})
	small := s.ws[1].BufferedBytes()
	if small == 0 {
		t.Fatal("shard 1 buffers nothing after 10 rows")
	}
	held := s.ws[1].HeldBytes()
	if got, want := s.HeldBytes(), s.ws[0].HeldBytes()+held; got != want || held < small {
		t.Fatalf("HeldBytes = %d, want the shards' sum %d (shard 1: %d, at least its %d buffered)", got, want, held, small)
	}
	if err := s.FlushLargest(ctx, held); err != nil {
		t.Fatal(err)
	}
	if s.ws[0].HeldBytes() != 0 || s.ws[1].BufferedBytes() != small || s.ws[1].HeldBytes() != held {
		t.Errorf("after FlushLargest(%d): shards hold %d and %d bytes (%d buffered), want 0 and %d (%d)", held, s.ws[0].HeldBytes(), s.ws[1].HeldBytes(), s.ws[1].BufferedBytes(), held, small)
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
	if len(files) != 3 || rows != 22 || buffered() != 0 {
		t.Errorf("Flush: %d files of %d rows, %d bytes left; want 3 files (one per shard with rows) of 22 rows, none left", len(files), rows, buffered())
	}
	fill([3]int{1, 2, 3})
	s.Discard()
	if buffered() != 0 {
		t.Errorf("Discard left %d bytes", buffered())
	}
	if files, err := s.Flush(ctx); err != nil || len(files) != 0 {
		t.Errorf("Flush after Discard = %d files, %v; want none", len(files), err)
	}
}

// TestSplit: a poll's records of a table are cut into runs of equal
// payload bytes, in poll order and across partitions: chunksPerShard runs
// per shard for any worker's shard when every shard takes part, else one
// run per shard taking part, on that shard; a poll of less than twice
// minShardBytes goes to shard 0 alone; unframing failures go to no run;
// each table's records go to its own runs.
func TestSplit(t *testing.T) {
	newTable := func(n int) *table {
		ws := make([]*writer.Writer, n)
		for i := range ws {
			ws[i] = new(writer.Writer) // told apart by pointer, never written
		}
		return &table{cfg: &TableConfig{Framing: FramingConfluent}, main: &sink{w: &shards{ws: ws}}}
	}
	framed := func(n int) []byte { return append([]byte{0, 0, 0, 0, 1, 0}, make([]byte, n)...) }
	poll := func(r *Runner, ps *partState, sizes ...int) {
		var fp kgo.FetchTopicPartition
		for i, n := range sizes {
			rec := &kgo.Record{Offset: ps.last + 1 + int64(i), Value: []byte{1}} // not framed: a dead letter
			if n >= 0 {
				rec.Value = framed(n)
			}
			fp.Records = append(fp.Records, rec)
		}
		r.prepare(fp, ps)
	}
	// runs returns the payload bytes and the shard (-1: the worker's) of
	// each of tb's runs, checking that their jobs are tb's, in poll order,
	// and that tb's shards taking part are its first.
	runs := func(r *Runner, tb *table) (sizes, shards []int) {
		t.Helper()
		prev := -1
		for _, run := range r.dec.runs {
			if run.sh.tasks[0].t != tb {
				continue
			}
			n := 0
			for _, i := range run.jobs {
				if j := r.dec.jobs[i]; j.ps.t != tb || i <= prev {
					t.Fatalf("run %d: job %d (after %d) of another table or out of poll order", len(sizes), i, prev)
				}
				prev = i
				n += len(r.dec.jobs[i].payload)
			}
			sizes, shards = append(sizes, n), append(shards, run.shard)
		}
		var k int
		for _, tk := range r.dec.tasks {
			if tk.t == tb {
				if tk.w != tb.main.w.ws[k] {
					t.Fatalf("task %d: not shard %d", k, k)
				}
				k++
			}
		}
		return sizes, shards
	}
	repeat := func(v, n int) []int {
		var s []int
		for range n {
			s = append(s, v)
		}
		return s
	}
	a, b := newTable(3), newTable(2)
	r := &Runner{parts: map[tp]*partState{}}
	pa0 := &partState{t: a, tp: tp{"a", 0}, last: -1, mainWM: -1}
	pa1 := &partState{t: a, tp: tp{"a", 1}, last: -1, mainWM: -1}
	pb := &partState{t: b, tp: tp{"b", 0}, last: -1, mainWM: -1}
	// Table a: 3 MiB in records of 64 KiB over two partitions, one
	// unframable record; table b: less than 2 x minShardBytes.
	sizes := repeat(64<<10, 24)
	poll(r, pa0, append(sizes, -1)...)
	poll(r, pb, 100<<10, 200<<10, 100<<10)
	poll(r, pa1, sizes...)
	r.dec.split()
	if got, shards := runs(r, a); !slices.Equal(got, repeat(128<<10, 3*chunksPerShard)) || !slices.Equal(shards, repeat(-1, 3*chunksPerShard)) {
		t.Errorf("table a: runs of %v bytes for shards %v, want %d of 128 KiB for any", got, shards, 3*chunksPerShard)
	}
	if got, shards := runs(r, b); !slices.Equal(got, []int{400 << 10}) || !slices.Equal(shards, []int{0}) {
		t.Errorf("table b: runs of %v bytes for shards %v, want all on shard 0", got, shards)
	}
	var written int
	for _, run := range r.dec.runs {
		written += len(run.jobs)
	}
	if len(r.dec.jobs) != 52 || written != 51 || len(r.dec.tasks) != 4 {
		t.Errorf("%d jobs, %d to write, %d shards; want 52, 51 (the unframable one is a dead letter) and 4", len(r.dec.jobs), written, len(r.dec.tasks))
	}
	// The next poll starts empty; 5/2 x minShardBytes on 3 shards: one
	// run each on the first two.
	r.dec.reset()
	r.dec.split()
	if len(r.dec.runs) != 0 || len(r.dec.tasks) != 0 {
		t.Fatalf("after reset: %d runs, %d tasks", len(r.dec.runs), len(r.dec.tasks))
	}
	pa0.last = 24
	poll(r, pa0, repeat(minShardBytes/4, 10)...)
	r.dec.split()
	if got, shards := runs(r, a); !slices.Equal(got, []int{5 * minShardBytes / 4, 5 * minShardBytes / 4}) || !slices.Equal(shards, []int{0, 1}) {
		t.Errorf("5/2 x minShardBytes in 10 records: runs of %v bytes for shards %v, want 5/4 x minShardBytes on shards 0 and 1", got, shards)
	}
}

// TestPollRecords: a poll takes at most memory_limit/4096 records, at
// least 10,000 (small records held twice, in a poll and the client's next
// fetch, took BenchmarkPeakRSS's steady case over the limit without it).
func TestPollRecords(t *testing.T) {
	for _, c := range []struct {
		limit ByteSize
		want  int
	}{{1 << 20, 10_000}, {64 << 20, 16_384}, {DefaultMemoryLimit, 262_144}} {
		if got := pollRecords(c.limit); got != c.want {
			t.Errorf("pollRecords(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}
