package mem_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/storagetest"
)

func TestAcceptance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return mem.New() })
}

// TestPutSizedReaderAllocatesOnce: a reader that tells its length (the
// writer's files) is copied into one buffer, not grown by doubling (about
// 20 allocations for 1 MiB), and a reader that does not is read whole.
func TestPutSizedReaderAllocatesOnce(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	data := bytes.Repeat([]byte("protolake"), 1<<17)
	allocs := testing.AllocsPerRun(10, func() {
		if err := st.Put(ctx, "k", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 {
		t.Errorf("Put of a %d-byte bytes.Reader: %.0f allocations, want at most 4", len(data), allocs)
	}
	if err := st.Put(ctx, "unsized", io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k", "unsized"} {
		r, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes (err %v), want the %d put", k, len(got), err, len(data))
		}
	}
}
