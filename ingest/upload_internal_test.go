package ingest

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/protolake/protolake/storage/mem"
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
