package writer

import (
	"encoding/binary"
	"hash/maphash"
	"unicode/utf8"
)

// dictTable is an open-addressing hash index over a column's dictionary
// entries: cheaper than map[string]int32 (no string keys to allocate, one
// hash per lookup, entries compared in place). A slot holds the entry's
// hash, index and offset, so a probe touches the slot and the entry's bytes
// only (two cache lines at most).
type dictTable struct {
	slots []dictSlot
	n     int
	mask  uint64
}

type dictSlot struct {
	hash uint32
	idx  int32 // entry index + 1; 0 = empty
	off  uint32
}

var dictSeed = maphash.MakeSeed()

func (t *dictTable) reset() {
	clear(t.slots)
	t.n = 0
}

// dictString appends a string value in dictionary mode, checking UTF-8 only
// for a value new to the dictionary; false (nothing appended) when invalid.
func (c *column) dictString(rep, def uint8, b []byte) bool {
	i := c.dictIndexCheck(b, true)
	if i < 0 {
		return false
	}
	c.levels(rep, def)
	c.nvals++
	c.idx = append(c.idx, i)
	if c.dictPages == 0 {
		c.firstPlain += 4 + len(b)
	}
	return true
}

// dictIndex returns the dictionary index of b, adding it when new.
func (c *column) dictIndex(b []byte) int32 { return c.dictIndexCheck(b, false) }

// dictIndexCheck is dictIndex; with utf8Check a new value must be valid
// UTF-8, else it returns -1 and adds nothing.
func (c *column) dictIndexCheck(b []byte, utf8Check bool) int32 {
	t := &c.dict
	if t.n*2 >= len(t.slots) {
		t.grow()
	}
	h := maphash.Bytes(dictSeed, b)
	h32 := uint32(h >> 32)
	for i := uint64(h32) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.idx == 0 {
			if utf8Check && !utf8.Valid(b) {
				return -1
			}
			n := int32(len(c.dictOffs))
			off := uint32(len(c.dictData))
			c.dictOffs = append(c.dictOffs, off)
			c.dictData = binary.LittleEndian.AppendUint32(c.dictData, uint32(len(b)))
			c.dictData = append(c.dictData, b...)
			*s = dictSlot{hash: h32, idx: n + 1, off: off}
			t.n++
			return n
		}
		if s.hash == h32 {
			d := c.dictData[s.off:]
			if l := binary.LittleEndian.Uint32(d); int(l) == len(b) && string(d[4:4+l]) == string(b) {
				return s.idx - 1
			}
		}
	}
}

func (t *dictTable) grow() {
	old := t.slots
	n := max(64, 2*len(old))
	t.slots = make([]dictSlot, n)
	t.mask = uint64(n - 1)
	for _, s := range old {
		if s.idx == 0 {
			continue
		}
		// Re-probe from the stored hash bits: the low bits of the full hash
		// are not kept, so rehash position from the 32 kept bits.
		for i := uint64(s.hash) & t.mask; ; i = (i + 1) & t.mask {
			if t.slots[i].idx == 0 {
				t.slots[i] = s
				break
			}
		}
	}
}
