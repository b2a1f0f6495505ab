package ingest

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// TestReadFileOnce: the uploader's copy of a data file whose reader tells
// its length (the writer's do) is one allocation of the file's size.
// Grown while reading, a 10 MB file took 24 MB, and buffers count a file
// by its length, so memory_limit did not see the difference.
func TestReadFileOnce(t *testing.T) {
	const size = 10 << 20
	src := bytes.Repeat([]byte{1, 2, 3, 4}, size/4)
	cases := map[string]io.Reader{
		"with Len":    bytes.NewReader(src),
		"without Len": io.MultiReader(bytes.NewReader(src)), // read as before: still whole
	}
	for name, rd := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := readFile(rd)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("read %d bytes, want the %d of the file", len(got), len(src))
			}
			if _, ok := rd.(interface{ Len() int }); ok {
				if n := after.TotalAlloc - before.TotalAlloc; n > size+64<<10 {
					t.Errorf("copying a %d MiB file allocated %.1f MiB, want its size", size>>20, float64(n)/(1<<20))
				}
			}
		})
	}
}
