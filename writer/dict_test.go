package writer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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

// BenchmarkDictIndex looks up random values of a filled dictionary: short
// values (at most 8 bytes, matched from the slot alone) in a large and a
// small table, and long ones (hashed with maphash, compared with the
// dictionary's bytes).
func BenchmarkDictIndex(b *testing.B) {
	gen := func(n int, format string) [][]byte {
		v := make([][]byte, n)
		for i := range v {
			v[i] = fmt.Appendf(nil, format, i)
		}
		return v
	}
	for _, bc := range []struct {
		name string
		vals [][]byte
	}{
		{"short-5000", gen(5000, "cr-%05d")},
		{"short-12", gen(12, "C%d")},
		{"long-900", gen(900, "Mozilla/5.0 (iOS) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newColumn(&colSpec{kind: parquet.ByteArray, dict: true, str: true})
			for _, v := range bc.vals {
				c.dictIndex(v)
			}
			r := rand.New(rand.NewPCG(1, 2))
			seq := make([]int32, 1<<16)
			for i := range seq {
				seq[i] = int32(r.IntN(len(bc.vals)))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got, want := c.dictIndex(bc.vals[seq[i&(1<<16-1)]]), seq[i&(1<<16-1)]; got != want {
					b.Fatalf("index %d, want %d", got, want)
				}
			}
		})
	}
}

// TestDropEntries: taking the last entries out of the dictionary (a
// rolled-back record's) leaves a table that finds every kept value at its
// index and none of the dropped ones, through table growths in the dropped
// record and collisions of a table kept three quarters full.
func TestDropEntries(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	c := newColumn(&colSpec{kind: parquet.ByteArray, dict: true, str: true})
	var kept [][]byte
	for round := range 300 {
		n := int32(len(c.dictOffs))
		for range 1 + r.IntN(40) { // a record: new values and kept ones
			if len(kept) > 0 && r.IntN(3) == 0 {
				c.dictIndex(kept[r.IntN(len(kept))])
			} else {
				c.dictIndex(fmt.Appendf(nil, "r%d-%d", round, r.IntN(1<<20)))
			}
		}
		if r.IntN(2) == 0 { // rolled back
			c.dropEntries(n)
		}
		kept = kept[:0]
		for e := range int32(len(c.dictOffs)) {
			kept = append(kept, bytes.Clone(c.dictValue(e)))
		}
		used := 0
		for _, s := range c.dict.slots {
			if s.idx != 0 {
				used++
			}
		}
		if used != len(kept) || c.dict.n != len(kept) {
			t.Fatalf("round %d: %d slots used, n %d, want %d", round, used, c.dict.n, len(kept))
		}
		for e, v := range kept {
			if got := c.dictIndex(v); got != int32(e) {
				t.Fatalf("round %d: dictIndex(%q) = %d, want %d", round, v, got, e)
			}
		}
	}
	if len(kept) < 1000 {
		t.Fatalf("%d entries: the table did not grow enough", len(kept))
	}
}
