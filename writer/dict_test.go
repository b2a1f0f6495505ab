package writer

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestDictIndex checks the dictionary index on values that differ only
// where the short-value key could confuse them: trailing zero bytes, one
// byte, the length (0 to 9 bytes, around the 8-byte key), a shared 8-byte
// prefix of longer values, through several table growths.
func TestDictIndex(t *testing.T) {
	var vals [][]byte
	for n := 0; n <= 9; n++ {
		for _, fill := range []byte{0, 'a', 0xff} {
			vals = append(vals, bytes.Repeat([]byte{fill}, n))
		}
	}
	vals = append(vals, []byte("a\x00"), []byte("\x00a"), []byte("ab\x00\x00"), []byte("cmp-0001"), []byte("cmp-0001x"), []byte("cmp-0001y"), []byte("cmp-00010"))
	for i := range 3000 { // grows the table from 64 to 4096 slots
		vals = append(vals, fmt.Appendf(nil, "v%d", i), fmt.Appendf(nil, "long-value-%d", i))
	}
	c := newColumn(&colSpec{kind: parquet.ByteArray, dict: true, str: true})
	want := map[string]int32{}
	for pass := range 2 {
		for _, v := range vals {
			got := c.dictIndex(v)
			w, seen := want[string(v)]
			if !seen {
				if pass > 0 {
					t.Fatalf("%q is new in pass 2", v)
				}
				w = int32(len(want))
				want[string(v)] = w
			}
			if got != w {
				t.Fatalf("pass %d: dictIndex(%q) = %d, want %d", pass, v, got, w)
			}
			if !bytes.Equal(c.dictValue(got), v) {
				t.Fatalf("dictValue(%d) = %q, want %q", got, c.dictValue(got), v)
			}
		}
	}
	if c.dict.n != len(want) || len(c.dictOffs) != len(want) {
		t.Fatalf("%d slots used, %d entries, want %d", c.dict.n, len(c.dictOffs), len(want))
	}
	c.dict.reset()
	c.dictData, c.dictOffs = c.dictData[:0], c.dictOffs[:0]
	if got := c.dictIndex([]byte("cmp-0001")); got != 0 {
		t.Fatalf("after reset: index %d, want 0", got)
	}
}
