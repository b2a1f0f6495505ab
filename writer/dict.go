package writer

import (
	"encoding/binary"
	"hash/maphash"
)

// dictTable is an open-addressing hash index over a column's dictionary
// entries: cheaper than map[string]int32 (no string keys to allocate, one
// hash per lookup, entries compared in place).
type dictTable struct {
	slots  []int32  // entry index + 1; 0 = empty
	hashes []uint64 // hash of each entry
	mask   uint64
}

var dictSeed = maphash.MakeSeed()

func (t *dictTable) reset() {
	clear(t.slots)
	t.hashes = t.hashes[:0]
}

// dictIndex returns the dictionary index of b, adding it when new.
func (c *column) dictIndex(b []byte) int32 {
	t := &c.dict
	if len(t.hashes)*2 >= len(t.slots) {
		t.grow()
	}
	h := maphash.Bytes(dictSeed, b)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i]
		if e == 0 {
			n := int32(len(c.dictOffs))
			c.dictOffs = append(c.dictOffs, uint32(len(c.dictData)))
			c.dictData = binary.LittleEndian.AppendUint32(c.dictData, uint32(len(b)))
			c.dictData = append(c.dictData, b...)
			t.hashes = append(t.hashes, h)
			t.slots[i] = n + 1
			return n
		}
		if t.hashes[e-1] == h && string(c.dictValue(e-1)) == string(b) {
			return e - 1
		}
	}
}

func (t *dictTable) grow() {
	n := max(64, 2*len(t.slots))
	t.slots = make([]int32, n)
	t.mask = uint64(n - 1)
	for e, h := range t.hashes {
		for i := h & t.mask; ; i = (i + 1) & t.mask {
			if t.slots[i] == 0 {
				t.slots[i] = int32(e + 1)
				break
			}
		}
	}
}
