package writer

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"unicode/utf8"
)

// dictTable is an open-addressing hash index over a column's dictionary
// entries: cheaper than map[string]int32 (no string keys to allocate, one
// hash per lookup, entries compared in place). A slot holds the value's
// first 8 bytes, its length and hash bits, so a value of at most 8 bytes —
// most dictionary values: country codes, enum names, short ids — is found
// or ruled out from the slot alone, hashed with one multiplication, without
// a call or a load of the dictionary's bytes. Longer values are hashed with
// maphash and compared with the entry's bytes after a prefix match.
type dictTable struct {
	slots []dictSlot
	n     int
	mask  uint64
}

type dictSlot struct {
	key uint64 // the value's first 8 bytes, little-endian, zero-padded
	tag uint32 // low 24 bits of the hash | min(len, 255)<<24
	idx int32  // entry index + 1; 0 = empty
}

var (
	dictSeed = maphash.MakeSeed()
	// dictK0 and dictK1 key the short-value hash (a wyhash-style folded
	// multiply) per process, like maphash's seed, so that crafted values
	// cannot be chosen to collide. dictK1 has its top bit set so that
	// dictK1^len is never zero.
	dictK0, dictK1 = maphash.Bytes(dictSeed, []byte("k0")), maphash.Bytes(dictSeed, []byte("k1")) | 1<<63
)

// dictKey returns the key word and the hash of b.
func dictKey(b []byte) (key, h uint64) {
	n := len(b)
	switch {
	case n >= 8:
		key = binary.LittleEndian.Uint64(b)
		if n > 8 {
			return key, maphash.Bytes(dictSeed, b)
		}
	case n >= 4:
		// Two overlapping 4-byte loads: the shared bytes are the same.
		key = uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<(8*(n-4))
	case n > 0:
		key = uint64(b[0]) | uint64(b[n/2])<<(8*(n/2)) | uint64(b[n-1])<<(8*(n-1))
	}
	hi, lo := bits.Mul64(key^dictK0, dictK1^uint64(n))
	return key, hi ^ lo
}

func dictTag(h uint64, n int) uint32 { return uint32(h)&0xffffff | uint32(min(n, 255))<<24 }

func (t *dictTable) reset() {
	clear(t.slots)
	t.n = 0
}

// dictString appends a string value in dictionary mode, checking UTF-8 only
// for a value new to the dictionary; false (nothing appended) when invalid.
func (c *column) dictString(rep, def uint8, b []byte) bool {
	if len(b) > maxDictBytes {
		if c.dictPages == 0 { // see dropDictionary
			if !utf8.Valid(b) {
				return false
			}
			c.byteArray(rep, def, b)
			return true
		}
		c.large = true // it goes into the dictionary (see column.large)
	}
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
// UTF-8, else it returns -1 and adds nothing. Only a miss (dictAdd) grows
// the table: a lookup finds it at most 3/4 full plus the entry added last,
// so a probe always ends at an empty slot.
func (c *column) dictIndexCheck(b []byte, utf8Check bool) int32 {
	t := &c.dict
	key, h := dictKey(b)
	tag := dictTag(h, len(b))
	for i := (h >> 32) & t.mask; len(t.slots) > 0; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.idx == 0 {
			break
		}
		if s.tag == tag && s.key == key && (len(b) <= 8 || string(c.dictValue(s.idx-1)) == string(b)) {
			return s.idx - 1
		}
	}
	return c.dictAdd(b, key, h, utf8Check)
}

// dictAdd adds b, which the dictionary does not hold, with its key word
// and hash (dictKey), growing the table first when it is 3/4 full.
func (c *column) dictAdd(b []byte, key, h uint64, utf8Check bool) int32 {
	if utf8Check && !utf8.Valid(b) {
		return -1
	}
	t := &c.dict
	if 4*t.n >= 3*len(t.slots) {
		c.growDict()
	}
	i := (h >> 32) & t.mask
	for t.slots[i].idx != 0 {
		i = (i + 1) & t.mask
	}
	n := int32(len(c.dictOffs))
	if c.rec != nil && c.dictRec != *c.rec {
		c.dictRec, c.dictMark = *c.rec, n
	}
	c.dictOffs = append(c.dictOffs, uint32(len(c.dictData)))
	c.dictData = binary.LittleEndian.AppendUint32(c.dictData, uint32(len(b)))
	c.dictData = append(c.dictData, b...)
	t.slots[i] = dictSlot{key: key, tag: dictTag(h, len(b)), idx: n + 1}
	t.n++
	return n
}

// dropEntries takes the entries from n on out of the dictionary. They are
// the last ones added, and the table holds what inserting the entries in
// order gives (growDict re-inserts them in order too), so clearing their
// slots from the last back leaves the table of the first n: a rolled-back
// record costs what it added, not a rebuild of the whole table.
func (c *column) dropEntries(n int32) {
	t := &c.dict
	for e := int32(len(c.dictOffs)) - 1; e >= n; e-- {
		_, h := dictKey(c.dictValue(e))
		i := (h >> 32) & t.mask
		for t.slots[i].idx != e+1 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = dictSlot{}
		t.n--
	}
	if int(n) < len(c.dictOffs) {
		c.dictData = c.dictData[:c.dictOffs[n]]
		c.dictOffs = c.dictOffs[:n]
	}
}

// growDict doubles the table (64 slots at first) and re-inserts every
// entry, hashing it again from the dictionary's bytes.
func (c *column) growDict() {
	t := &c.dict
	n := max(64, 2*len(t.slots))
	if cap(t.slots) >= n {
		t.slots = t.slots[:n]
		clear(t.slots)
	} else {
		t.slots = make([]dictSlot, n)
	}
	t.mask = uint64(n - 1)
	for e := range int32(len(c.dictOffs)) {
		b := c.dictValue(e)
		key, h := dictKey(b)
		for i := (h >> 32) & t.mask; ; i = (i + 1) & t.mask {
			if t.slots[i].idx == 0 {
				t.slots[i] = dictSlot{key: key, tag: dictTag(h, len(b)), idx: e + 1}
				break
			}
		}
	}
}
