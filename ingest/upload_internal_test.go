package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/writer"
	"google.golang.org/protobuf/proto"
)

// TestPutSegmentsNoCopy: the uploader keeps a writer's segments of a data
// file and uploads them as they are: handing over a 10 MiB file allocates
// nothing of its size (with a copy, a flush for the memory limit held every
// file twice: its buffers and the copy waiting for its upload), the bytes
// waiting count against the limit until the upload lands, and the stored
// file is the segments in order.
func TestPutSegmentsNoCopy(t *testing.T) {
	const size = 10 << 20
	src := bytes.Repeat([]byte{1, 2, 3, 4}, size/4)
	segs := [][]byte{src[:3], src[3 : size/2], src[size/2:]}
	st := mem.New()
	r := &Runner{uploadSlots: make(chan struct{}, 1)}
	tb := &table{upCtx: context.Background()}
	u := newUploader(r, tb, st)
	r.uploadSlots <- struct{}{} // the upload waits for a slot
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := u.PutSegments(context.Background(), "part-1.parquet", segs, size); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("handing over a %d MiB file allocated %.1f MiB, want no copy", size>>20, float64(n)/(1<<20))
	}
	if got := r.inflight.Load(); got != size || tb.uploading.Load() != size {
		t.Errorf("waiting for its upload: %d bytes in flight (table %d), want %d", got, tb.uploading.Load(), size)
	}
	<-r.uploadSlots
	up := u.take("part-1.parquet")
	<-up.done
	if up.err != nil {
		t.Fatal(up.err)
	}
	if got := r.inflight.Load(); got != 0 {
		t.Errorf("after the upload: %d bytes in flight, want 0", got)
	}
	rc, err := st.Get(context.Background(), "part-1.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatalf("stored %d bytes, want the %d of the segments in order", len(got), len(src))
	}
}

// TestFlushOverLimitCountsUploads: a flush for the memory limit moves the
// buffers' bytes to files waiting for their upload, which still count, so
// what it reports held (HeldBytes, the soft limit's and the pause's
// figure) is the buffers left and the uploads, not the buffers alone.
func TestFlushOverLimitCountsUploads(t *testing.T) {
	ctx := context.Background()
	st, err := schema.Derive((&adtrackpb.AdImpression{}).ProtoReflect().Descriptor(), schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{cfg: Config{MemoryLimit: 4 << 20}, uploadSlots: make(chan struct{}, 1)}
	tb := &table{upCtx: ctx}
	u := newUploader(r, tb, mem.New())
	sh, err := newShards(writer.Config{}, st, u, 1)
	if err != nil {
		t.Fatal(err)
	}
	tb.main = &sink{w: sh, up: u}
	r.tables = []*table{tb}
	r.uploadSlots <- struct{}{} // the store is slow: uploads wait
	for o := 0; sh.HeldBytes() <= r.bufferLimit(); o++ {
		b, err := proto.Marshal(&adtrackpb.AdImpression{ImpressionId: fmt.Sprintf("imp-%08d", o), AdvertiserId: int64(o)})
		if err != nil {
			t.Fatal(err)
		}
		if err := sh.Write(ctx, b, writer.Kafka{Topic: "t", Offset: int64(o)}); err != nil {
			t.Fatal(err)
		}
	}
	before := r.heldBytes()
	got := r.flushOverLimit(ctx, before)
	inflight := r.inflight.Load()
	if inflight == 0 || len(tb.main.files) == 0 {
		t.Fatalf("held %d bytes over the limit %d: the flush wrote %d files, %d bytes waiting for upload; want some", before, r.bufferLimit(), len(tb.main.files), inflight)
	}
	if want := sh.HeldBytes() + inflight; got != want {
		t.Errorf("after the flush it reports %d bytes held, want the %d left in buffers and the %d waiting for upload", got, sh.HeldBytes(), inflight)
	}
	<-r.uploadSlots
	for _, f := range tb.main.files {
		<-u.take(f.Path).done
	}
}
