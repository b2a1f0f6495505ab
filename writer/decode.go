package writer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
)

// MaxDepth is the deepest message nesting the decoder accepts.
const MaxDepth = 100

// DecodeError is a message the writer rejected. Nothing of the message is
// left in any column.
type DecodeError struct {
	// Path is the field path, e.g. "placement.sizes[].width" ("" for the
	// message itself).
	Path string
	// Offset is the byte offset in the message where the problem is.
	Offset int
	// Err says what is wrong.
	Err error
}

func (e *DecodeError) Error() string {
	path := e.Path
	if path == "" {
		path = "(message)"
	}
	return fmt.Sprintf("decode field %s at byte %d: %v", path, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Errors a DecodeError wraps.
var (
	ErrTruncated       = errors.New("truncated or malformed wire data")
	ErrInvalidUTF8     = errors.New("string is not valid UTF-8")
	ErrTooDeep         = fmt.Errorf("message nesting deeper than %d", MaxDepth)
	ErrRequiredMissing = errors.New("required field is missing")
	ErrInvalidValue    = errors.New("invalid value")
	// ErrRecordTooLarge: decoding the record would take more buffer memory
	// than Config.MaxRecordBytes allows.
	ErrRecordTooLarge = errors.New("record too large to buffer")
)

// RecordCellBytes is what one column cell (a value with its levels) of a
// record counts against Config.MaxRecordBytes; occBytes is one repeated
// occurrence the decoder keeps while scanning.
const (
	RecordCellBytes = 10
	occBytes        = 16
)

// overBudget reports whether the record decoded so far is over
// Config.MaxRecordBytes.
func (d *decoder) overBudget() bool { return d.maxCost > 0 && d.cost > d.maxCost }

func (d *decoder) tooLarge(path string, off int) error {
	return d.fail(path, off, fmt.Errorf("%w: decoding it takes more than %d bytes of buffers, the per-record bound (a quarter of memory_limit in protolake run); it is not written", ErrRecordTooLarge, d.maxCost))
}

// slot is one field's state in a message frame: a singular scalar's last
// value, or a list of occurrences (elements, message payloads to merge).
type slot struct {
	n          int32  // occurrences
	v          uint64 // last scalar value, or start<<32|end of the last bytes payload
	head, tail int32  // occurrence list, -1 when empty
}

// occ is one occurrence: a value, or a payload range [v>>32, v&0xffffffff).
type occ struct {
	v      uint64
	next   int32
	packed bool
}

type decoder struct {
	root     *mprog
	buf      []byte
	slots    []slot
	occs     []occ
	unknown  []byte
	cols     []*column
	scratch  []byte
	jsonBuf  []byte
	keyBuf   [][]byte
	mapStack []mapEnt
	partCols []*column // scratch column for partition values of well-known types
	slowJSON bool      // tests: always take the protojson path
	fast     bool      // message payloads decode in one pass (direct) where their program allows
	twoPass  int64     // records the one-pass decode handed to the two passes (tests)
	cost     int64     // buffer bytes the current record takes so far
	maxCost  int64     // Config.MaxRecordBytes
}

func rng(start, end int) uint64 { return uint64(start)<<32 | uint64(uint32(end)) }
func unrng(v uint64) (int, int) { return int(v >> 32), int(uint32(v)) }

func (d *decoder) fail(path string, off int, err error) error {
	return &DecodeError{Path: path, Offset: off, Err: err}
}

func wireErr(n int) error {
	switch protowire.ParseError(n) {
	case nil:
		return ErrTruncated
	default:
		return fmt.Errorf("%w: %v", ErrTruncated, protowire.ParseError(n))
	}
}

// pushFrame reserves slots for one message instance.
func (d *decoder) pushFrame(m *mprog) int {
	f := len(d.slots)
	d.slots = append(d.slots, m.blank...)
	return f
}

// errFallback: the one-pass decode met what it cannot write as it reads (a
// singular field or oneof seen twice, or any error); the record is decoded
// again in two passes (scan, emit), which also gives the error.
var errFallback = errors.New("decode in one pass: a field seen twice")

// direct decodes a message payload [start, end) of m in one pass at
// repetition level r: scan in direct mode, writing each field as it reads
// it. Columns are separate buffers, so the fields need not arrive in column
// order; only map entries, whose duplicate keys must be resolved first, are
// gathered in a frame and written at the end.
func (d *decoder) direct(m *mprog, start, end int, r uint8, top bool, depth int) error {
	if len(m.maps) == 0 {
		return d.scan(m, -1, start, end, r, top, true, depth)
	}
	fr := d.pushFrame(m)
	err := d.scan(m, fr, start, end, r, top, true, depth)
	d.slots = d.slots[:fr]
	return err
}

func (d *decoder) addOcc(s *slot, v uint64, packed bool) {
	i := int32(len(d.occs))
	d.occs = append(d.occs, occ{v: v, next: -1, packed: packed})
	if s.tail >= 0 {
		d.occs[s.tail].next = i
	} else {
		s.head = i
	}
	s.tail = i
	s.n++
}

// scan walks the wire records of [start, end) once. Not direct, it is
// phase one of two: it fills the frame's slots, which emit then writes in
// column order. direct (see decoder.direct), it writes each field at
// repetition level r as it reads it, and the fields it has not seen at the
// end; a frame (frame >= 0) holds only map entries then. top is true for
// the table's message, whose unknown fields are kept. The loop keeps only
// the common path (one-byte tag, known field); longer tags, skipped fields
// and oneof peers are calls, which keeps the loop's variables in registers.
func (d *decoder) scan(m *mprog, frame, start, end int, r uint8, top, direct bool, depth int) error {
	b := d.buf[:end]
	var slots []slot
	if frame >= 0 {
		slots = d.slots[frame : frame+m.nslots]
	}
	byTag := &m.byTag
	var seen uint64 // direct: the fields read so far
	i := start
	for i < len(b) {
		tagStart := i
		var num protowire.Number
		var typ protowire.Type
		c := b[i]
		f := byTag[c&0x7f]
		if c < 0x80 && f != nil { // a one-byte tag of a field stored with this wire type: the common case
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
			i++
		} else {
			if c < 0x80 && c >= 8 {
				num, typ = protowire.Number(c>>3), protowire.Type(c&7)
				i++
			} else if c >= 0x80 && i+1 < len(b) && b[i+1]-1 < 0x7f { // a two-byte tag: fields 16 to 2047
				x := uint(c&0x7f) | uint(b[i+1])<<7
				num, typ = protowire.Number(x>>3), protowire.Type(x&7)
				i += 2
			} else {
				var err error
				if num, typ, i, err = d.longTag(m, b, i); err != nil {
					return err
				}
			}
			f = nil
			if uint64(num) < uint64(len(m.dense)) {
				f = m.dense[num]
			} else if m.sparse != nil {
				f = m.sparse[num]
			}
			if f == nil || f.kind == fkSkip || !(typ == f.wt || (f.packable && typ == protowire.BytesType)) {
				var err error
				if i, err = d.skipField(m, f, b, num, typ, tagStart, i, top, depth); err != nil {
					return err
				}
				continue
			}
		}
		if direct {
			if seen&f.clash != 0 {
				return errFallback
			}
		} else if f.peers != nil {
			if err := d.clearPeers(m, f, slots, depth); err != nil {
				return err
			}
		}
		var v uint64
		packed := false
		switch typ {
		case protowire.VarintType:
			if i < len(b) && b[i] < 0x80 {
				v, i = uint64(b[i]), i+1
				break
			}
			x, n := protowire.ConsumeVarint(b[i:])
			if n < 0 {
				return d.fail(f.path, i, wireErr(n))
			}
			v, i = x, i+n
		case protowire.Fixed32Type:
			if len(b)-i < 4 {
				return d.fail(f.path, i, ErrTruncated)
			}
			v = uint64(binary.LittleEndian.Uint32(b[i:]))
			i += 4
		case protowire.Fixed64Type:
			if len(b)-i < 8 {
				return d.fail(f.path, i, ErrTruncated)
			}
			v = binary.LittleEndian.Uint64(b[i:])
			i += 8
		case protowire.BytesType:
			var l uint64
			var n int
			if i < len(b) && b[i] < 0x80 {
				l, n = uint64(b[i]), 1
			} else {
				l, n = protowire.ConsumeVarint(b[i:])
				if n < 0 {
					return d.fail(f.path, i, wireErr(n))
				}
			}
			if l > uint64(len(b)-i-n) {
				return d.fail(f.path, i, ErrTruncated)
			}
			i += n
			v = rng(i, i+int(l))
			i += int(l)
			packed = typ != f.wt
		case protowire.StartGroupType:
			_, n := protowire.ConsumeGroup(num, b[i:])
			if n < 0 {
				return d.fail(f.path, i, wireErr(n))
			}
			v = rng(i, i+n-protowire.SizeTag(num))
			i += n
		default:
			return d.fail(f.path, tagStart, ErrTruncated)
		}
		if direct {
			if f.kind == fkScalar {
				if f.col >= 0 {
					if err := d.leaf(f, r, f.def, v); err != nil {
						return err
					}
				}
				seen |= f.bit
				continue
			}
			bit, err := d.directOcc(f, slots, v, packed, r, seen&f.bit != 0, tagStart, depth)
			if err != nil {
				return err
			}
			seen |= bit
			continue
		}
		s := &slots[f.slot]
		if f.kind == fkScalar {
			if s.n > 0 && f.conv == schema.ConvString { // the dropped value must be valid too
				if start, end := unrng(s.v); !utf8.Valid(b[start:end]) {
					return d.fail(f.path, start, ErrInvalidUTF8)
				}
			}
			s.n, s.v = 1, v
		} else {
			d.addOcc(s, v, packed)
			if d.cost += occBytes; d.overBudget() {
				return d.tooLarge(f.path, tagStart)
			}
		}
	}
	if direct {
		for x := m.absent &^ seen; x != 0; x &= x - 1 {
			if err := d.emitField(m.fields[bits.TrailingZeros64(x)], slot{head: -1, tail: -1}, r, depth); err != nil {
				return err
			}
		}
		for _, k := range m.maps {
			if err := d.emitField(m.fields[k], slots[k], r, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// directOcc writes occurrence v of a repeated or message field f in direct
// mode (more: f has elements in the row already), or gathers it when f is
// a map; it returns f.bit when f counts as seen. Occurrences cost what
// scan charges for them, so a record is over budget in one pass exactly when
// it is in two.
func (d *decoder) directOcc(f *fprog, slots []slot, v uint64, packed bool, r uint8, more bool, tagStart, depth int) (uint64, error) {
	if d.cost += occBytes; d.overBudget() {
		return 0, d.tooLarge(f.path, tagStart)
	}
	if f.kind == fkMap {
		d.addOcc(&slots[f.slot], v, packed)
		return 0, nil
	}
	o := int32(len(d.occs))
	d.occs = append(d.occs, occ{v: v, next: -1, packed: packed})
	if f.kind == fkMessage {
		if f.col < 0 && f.child == nil {
			return f.bit, nil // identity partition column of a Timestamp
		}
		return f.bit, d.message(f, o, false, r, f.def, depth)
	}
	rep := r
	if more {
		rep = f.rep
	}
	rep, err := d.listOcc(f, o, rep, depth)
	if rep != f.rep {
		return 0, err // an empty packed run: no element yet
	}
	return f.bit, err
}

// longTag reads a tag of more than one byte (or a malformed one) at b[i:]
// and returns the index after it.
func (d *decoder) longTag(m *mprog, b []byte, i int) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b[i:])
	if n < 0 {
		return 0, 0, i, d.fail(m.path, i, wireErr(n))
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, i, d.fail(m.path, i, fmt.Errorf("%w: field number %d out of range", ErrTruncated, num))
	}
	return num, typ, i + n, nil
}

// skipField steps over the value at b[i:] of a field scan does not store
// (unknown, without a column, or of another wire type), keeping it with
// the unknown fields when top, and returns the index after it.
func (d *decoder) skipField(m *mprog, f *fprog, b []byte, num protowire.Number, typ protowire.Type, tagStart, i int, top bool, depth int) (int, error) {
	if typ == protowire.EndGroupType {
		return i, d.fail(m.path, tagStart, fmt.Errorf("%w: unexpected end group", ErrTruncated))
	}
	n := protowire.ConsumeFieldValue(num, typ, b[i:])
	if n < 0 {
		p := m.path
		if f != nil {
			p = f.path
		}
		return i, d.fail(p, i, wireErr(n))
	}
	if f != nil && f.kind == fkSkip && typ == f.wt {
		if err := d.validateSkipped(f, num, typ, i, i+n, depth); err != nil {
			return i, err
		}
	}
	i += n
	if top && (f == nil || f.kind != fkSkip) {
		d.unknown = append(d.unknown, b[tagStart:i]...)
	}
	return i, nil
}

// clearPeers drops the other members of f's oneof set so far (the last
// member wins), validating what it drops as protobuf would have parsed it.
func (d *decoder) clearPeers(m *mprog, f *fprog, slots []slot, depth int) error {
	for _, p := range f.peers {
		if ps := slots[p]; ps.n > 0 {
			if err := d.validateSlot(m.fields[p], ps, depth); err != nil {
				return err
			}
			slots[p] = slot{head: -1, tail: -1}
		}
	}
	return nil
}

// emit is phase two: it writes the frame's fields in column order at
// repetition level r.
func (d *decoder) emit(m *mprog, frame int, r uint8, depth int) error {
	// The frame's slots, in field order (f.slot is f's index in m.fields).
	// Nested frames pushed below may move d.slots; this frame is only read
	// here, so the copy this slice sees stays right.
	fields := m.fields
	slots := d.slots[frame : frame+len(fields)]
	for i, f := range fields {
		var err error
		if s := slots[i]; f.kind == fkScalar && s.n > 0 && f.col >= 0 {
			err = d.leaf(f, r, f.def, s.v) // the common case, without emitField's call
		} else {
			err = d.emitField(f, s, r, depth)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// emitField writes field f at repetition level r from its slot.
func (d *decoder) emitField(f *fprog, s slot, r uint8, depth int) error {
	switch f.kind {
	case fkScalar:
		if f.col < 0 {
			return nil // identity partition column
		}
		if s.n == 0 {
			return d.absent(f, r, depth)
		}
		return d.leaf(f, r, f.def, s.v)
	case fkMessage:
		if s.n == 0 {
			return d.absent(f, r, depth)
		}
		if f.col < 0 && f.child == nil {
			return nil // identity partition column of a Timestamp
		}
		return d.message(f, s.head, true, r, f.def, depth)
	case fkRepeated:
		return d.list(f, s, r, depth)
	case fkMap:
		return d.mapEntries(f, s, r, depth)
	}
	return nil
}

// absent writes an absent singular field.
func (d *decoder) absent(f *fprog, r uint8, depth int) error {
	switch f.presence {
	case schema.Explicit:
		for c := f.first; c < f.end; c++ {
			d.cols[c].null(r, f.nullDef)
		}
		return nil
	case schema.Required:
		return d.fail(f.path, 0, ErrRequiredMissing)
	}
	// Implicit.
	if f.child != nil { // an absent map value message is an empty message
		if depth+1 > MaxDepth {
			return d.fail(f.path, 0, ErrTooDeep)
		}
		fr := d.pushFrame(f.child)
		err := d.emit(f.child, fr, r, depth+1)
		d.slots = d.slots[:fr]
		return err
	}
	if f.msgLeaf {
		return d.msgLeafFrom(f, -1, false, r, f.def, depth)
	}
	if f.conv == schema.ConvString || f.conv == schema.ConvBytes {
		d.cols[f.col].byteArray(r, f.def, f.defBytes)
		return nil
	}
	return d.leaf(f, r, f.def, f.defRaw)
}

// message writes a message-payload field from occurrence head: merged
// with the following occurrences when chain is set (a singular field), alone
// otherwise (a list element).
func (d *decoder) message(f *fprog, head int32, chain bool, r, def uint8, depth int) error {
	if f.msgLeaf {
		return d.msgLeafFrom(f, head, chain, r, def, depth)
	}
	if depth+1 > MaxDepth {
		start, _ := unrng(d.occs[head].v)
		return d.fail(f.path, start, ErrTooDeep)
	}
	if d.fast && f.child.direct && (!chain || d.occs[head].next < 0) {
		start, end := unrng(d.occs[head].v)
		return d.direct(f.child, start, end, r, false, depth+1)
	}
	fr := d.pushFrame(f.child)
	for o := head; o >= 0; o = d.occs[o].next {
		start, end := unrng(d.occs[o].v)
		if err := d.scan(f.child, fr, start, end, 0, false, false, depth+1); err != nil {
			return err
		}
		if !chain {
			break
		}
	}
	err := d.emit(f.child, fr, r, depth+1)
	d.slots = d.slots[:fr]
	return err
}

// list writes the elements of a repeated field.
func (d *decoder) list(f *fprog, s slot, r uint8, depth int) error {
	rep := r
	for o := s.head; o >= 0; o = d.occs[o].next {
		var err error
		if rep, err = d.listOcc(f, o, rep, depth); err != nil {
			return err
		}
	}
	if rep == r {
		// No occurrence, or only empty packed chunks: zero elements, which
		// is still an (empty) list that needs its levels.
		for c := f.first; c < f.end; c++ {
			d.cols[c].null(r, f.def)
		}
	}
	return nil
}

// listOcc writes the elements of occurrence o of a repeated field, the
// first at repetition level rep, and returns the level of the next (f.rep
// once an element is written).
func (d *decoder) listOcc(f *fprog, o int32, rep uint8, depth int) (uint8, error) {
	oc := d.occs[o]
	cells := int64(f.end-f.first) * RecordCellBytes
	switch {
	case oc.packed:
		start, end := unrng(oc.v)
		b := d.buf
		for i := start; i < end; {
			var v uint64
			switch f.wt {
			case protowire.VarintType:
				x, n := protowire.ConsumeVarint(b[i:end])
				if n < 0 {
					return rep, d.fail(f.path, i, wireErr(n))
				}
				v, i = x, i+n
			case protowire.Fixed32Type:
				if end-i < 4 {
					return rep, d.fail(f.path, i, ErrTruncated)
				}
				v = uint64(uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24)
				i += 4
			case protowire.Fixed64Type:
				if end-i < 8 {
					return rep, d.fail(f.path, i, ErrTruncated)
				}
				x, _ := protowire.ConsumeFixed64(b[i:end])
				v, i = x, i+8
			default:
				return rep, d.fail(f.path, i, ErrTruncated)
			}
			if d.cost += cells; d.overBudget() {
				return rep, d.tooLarge(f.path, i)
			}
			if err := d.leaf(f, rep, f.elemDef, v); err != nil {
				return rep, err
			}
			rep = f.rep
		}
		return rep, nil
	case f.child != nil:
		if d.cost += cells; d.overBudget() {
			return rep, d.tooLarge(f.path, 0)
		}
		if err := d.message(f, o, false, rep, f.elemDef, depth); err != nil {
			return rep, err
		}
	case f.msgLeaf:
		if d.cost += cells; d.overBudget() {
			return rep, d.tooLarge(f.path, 0)
		}
		if err := d.msgLeafOne(f, o, rep, f.elemDef, depth); err != nil {
			return rep, err
		}
	default:
		if d.cost += cells; d.overBudget() {
			return rep, d.tooLarge(f.path, 0)
		}
		if err := d.leaf(f, rep, f.elemDef, oc.v); err != nil {
			return rep, err
		}
	}
	return f.rep, nil
}

// mapEntries writes the entries of a map, the last of duplicate keys
// winning (at its own position).
func (d *decoder) mapEntries(f *fprog, s slot, r uint8, depth int) error {
	if s.n == 0 {
		for c := f.first; c < f.end; c++ {
			d.cols[c].null(r, f.def)
		}
		return nil
	}
	if depth+1 > MaxDepth {
		return d.fail(f.path, 0, ErrTooDeep)
	}
	e := f.child
	// Scan every entry into its own frame and decide which survive (the
	// last of each key) before emitting anything: emitting recurses into
	// nested maps, which reuse the scratch buffers. The per-entry state
	// lives in a stack region [mbase, mbase+n) of d.mapStack, indexed
	// afresh after each recursion.
	n := int(s.n)
	base := len(d.slots)
	mbase := len(d.mapStack)
	for o := s.head; o >= 0; o = d.occs[o].next {
		fr := d.pushFrame(e)
		start, end := unrng(d.occs[o].v)
		if !d.entryFast(e, fr, start, end) {
			if err := d.scan(e, fr, start, end, 0, false, false, depth+1); err != nil {
				return err
			}
		}
		d.mapStack = append(d.mapStack, mapEnt{occ: o})
	}
	keys := d.keyBuf[:0]
	for k := 0; k < n; k++ {
		keys = append(keys, d.mapKey(e.fields[0], d.slots[base+2*k]))
	}
	d.keyBuf = keys
	// Small maps compare pairwise; large ones use a hash map so a hostile
	// message cannot make this quadratic.
	if n > 32 {
		last := make(map[string]int, n)
		for k := 0; k < n; k++ {
			last[string(keys[k])] = k
		}
		for k := 0; k < n; k++ {
			d.mapStack[mbase+k].drop = last[string(keys[k])] != k
		}
	} else {
		for k := 0; k < n; k++ {
			for j := k + 1; j < n; j++ {
				if string(keys[j]) == string(keys[k]) {
					d.mapStack[mbase+k].drop = true
					break
				}
			}
		}
	}
	rep := r
	for k := 0; k < n; k++ {
		me := d.mapStack[mbase+k]
		if me.drop {
			// protobuf parsed the dropped entry: it must be valid too.
			start, end := unrng(d.occs[me.occ].v)
			if err := d.validate(e, start, end, depth+1); err != nil {
				return err
			}
			continue
		}
		if d.cost += int64(f.end-f.first) * RecordCellBytes; d.overBudget() {
			return d.tooLarge(f.path, 0)
		}
		if err := d.emit(e, base+2*k, rep, depth+1); err != nil {
			return err
		}
		rep = f.rep
	}
	d.slots = d.slots[:base]
	d.mapStack = d.mapStack[:mbase]
	return nil
}

// entryFast fills the frame fr of map entry program e from the entry
// payload [start, end) as scan would, when the payload has the form
// encoders write: the key (field 1) then the value (field 2), either
// absent, with one-byte tags, a scalar key and a scalar or message value
// of varint or length-delimited wire type. It returns false, the frame
// untouched, for any other payload, which scan then reads (and rejects
// as it does), and when the value's occurrence would put the record over
// budget, which scan then reports.
func (d *decoder) entryFast(e *mprog, fr, start, end int) bool {
	kf, vf := e.fields[0], e.fields[1]
	if kf.kind != fkScalar || vf.kind != fkScalar && vf.kind != fkMessage ||
		!fastWire(kf.wt) || !fastWire(vf.wt) {
		return false
	}
	b := d.buf[:end]
	i := start
	var k, v uint64
	hasK, hasV := false, false
	if i < len(b) && b[i] == 1<<3|byte(kf.wt) {
		if k, i = fastValue(b, i+1, kf.wt); i < 0 {
			return false
		}
		hasK = true
	}
	if i < len(b) && b[i] == 2<<3|byte(vf.wt) {
		if v, i = fastValue(b, i+1, vf.wt); i < 0 {
			return false
		}
		hasV = true
	}
	if i != len(b) {
		return false
	}
	slots := d.slots[fr : fr+2]
	if hasK {
		slots[0].n, slots[0].v = 1, k
	}
	if !hasV {
		return true
	}
	if vf.kind == fkScalar {
		slots[1].n, slots[1].v = 1, v
		return true
	}
	if d.maxCost > 0 && d.cost+occBytes > d.maxCost {
		slots[0] = slot{head: -1, tail: -1}
		return false
	}
	d.cost += occBytes
	d.addOcc(&slots[1], v, false)
	return true
}

// fastWire reports whether entryFast reads values of wire type t.
func fastWire(t protowire.Type) bool { return t == protowire.VarintType || t == protowire.BytesType }

type mapEnt struct {
	occ  int32
	drop bool
}

// mapKey returns the key of an entry in a comparable form: the payload
// bytes of a string key, else the decoded value's 8 bytes.
func (d *decoder) mapKey(kf *fprog, s slot) []byte {
	var v uint64
	if s.n == 0 {
		if kf.conv == schema.ConvString {
			return kf.defBytes
		}
		v = kf.defRaw
	} else {
		if kf.conv == schema.ConvString {
			start, end := unrng(s.v)
			return d.buf[start:end]
		}
		v = s.v
	}
	// Normalize to the converted value: int32 keys keep the low 32 bits.
	switch kf.conv {
	case schema.ConvInt32, schema.ConvUint32, schema.ConvFixed32, schema.ConvSfixed32, schema.ConvSint32, schema.ConvEnumInt, schema.ConvEnumString:
		v = uint64(uint32(v))
	case schema.ConvBool:
		if v != 0 {
			v = 1
		}
	}
	k := make([]byte, 8) // rare path: maps only
	for i := range 8 {
		k[i] = byte(v >> (8 * i))
	}
	return k
}

// leaf converts one wire value and appends it.
func (d *decoder) leaf(f *fprog, r, def uint8, v uint64) error {
	c := d.cols[f.col]
	switch f.conv {
	case schema.ConvInt32, schema.ConvSfixed32, schema.ConvEnumInt:
		c.int32(r, def, int32(v))
	case schema.ConvInt64, schema.ConvUint64Long, schema.ConvFixed64Long, schema.ConvSfixed64:
		c.int64(r, def, int64(v))
	case schema.ConvUint32, schema.ConvFixed32:
		c.int64(r, def, int64(uint32(v)))
	case schema.ConvUint64Decimal, schema.ConvFixed64Decimal:
		c.decimal20(r, def, v)
	case schema.ConvSint32:
		c.int32(r, def, int32(protowire.DecodeZigZag(v&math.MaxUint32)))
	case schema.ConvSint64:
		c.int64(r, def, protowire.DecodeZigZag(v))
	case schema.ConvFloat:
		c.float(r, def, math.Float32frombits(uint32(v)))
	case schema.ConvDouble:
		c.double(r, def, math.Float64frombits(v))
	case schema.ConvBool:
		c.boolean(r, def, v != 0)
	case schema.ConvEnumString:
		if name, ok := f.enum.Name(protoreflect.EnumNumber(int32(v))); ok {
			c.byteArray(r, def, unsafe.Slice(unsafe.StringData(name), len(name)))
		} else {
			d.scratch = strconv.AppendInt(d.scratch[:0], int64(int32(v)), 10)
			c.byteArray(r, def, d.scratch)
		}
	case schema.ConvString:
		start, end := unrng(v)
		b := d.buf[start:end]
		if c.dictMode {
			// A dictionary hit is bytes validated when they were added.
			if !c.dictString(r, def, b) {
				return d.fail(f.path, start, ErrInvalidUTF8)
			}
			return nil
		}
		if !utf8.Valid(b) {
			return d.fail(f.path, start, ErrInvalidUTF8)
		}
		c.byteArray(r, def, b)
	case schema.ConvBytes:
		start, end := unrng(v)
		c.byteArray(r, def, d.buf[start:end])
	default:
		return d.fail(f.path, 0, fmt.Errorf("%w: conversion %v of a wire value", ErrInvalidValue, f.conv))
	}
	return nil
}

func (d *decoder) msgLeafOne(f *fprog, o int32, r, def uint8, depth int) error {
	return d.msgLeafFrom(f, o, false, r, def, depth)
}

func (d *decoder) msgLeafFrom(f *fprog, head int32, chain bool, r, def uint8, depth int) error {
	if depth+1 > MaxDepth {
		return d.fail(f.path, 0, ErrTooDeep)
	}
	switch f.conv {
	case schema.ConvJSON, schema.ConvRaw:
		d.scratch = d.scratch[:0]
		off := 0
		for o := head; o >= 0; {
			start, end := unrng(d.occs[o].v)
			if off == 0 {
				off = start
			}
			d.scratch = append(d.scratch, d.buf[start:end]...)
			if !chain {
				break
			}
			o = d.occs[o].next
		}
		if f.conv == schema.ConvJSON {
			var ok bool
			d.jsonBuf = d.jsonBuf[:0]
			switch f.jsonKind {
			case jsonStruct:
				d.jsonBuf, ok = appendStructJSON(d.jsonBuf, d.scratch, depth)
			case jsonList:
				d.jsonBuf, ok = appendListJSON(d.jsonBuf, d.scratch, depth)
			case jsonValue:
				d.jsonBuf, ok = appendValueJSON(d.jsonBuf, d.scratch, depth)
			}
			if ok && !d.slowJSON {
				d.cols[f.col].byteArray(r, def, d.jsonBuf)
				return nil
			}
		}
		msg := dynamicpb.NewMessage(f.p.Desc.Message())
		if err := (proto.UnmarshalOptions{RecursionLimit: MaxDepth - depth}).Unmarshal(d.scratch, msg); err != nil {
			return d.fail(f.path, off, fmt.Errorf("%w: %v", ErrInvalidValue, err))
		}
		if f.conv == schema.ConvRaw {
			d.cols[f.col].byteArray(r, def, d.scratch)
			return nil
		}
		j, err := protojson.Marshal(msg)
		if err != nil {
			if msg.Descriptor().FullName() != "google.protobuf.Value" || msg.Has(msg.Descriptor().Oneofs().Get(0).Fields().Get(0)) {
				return d.fail(f.path, off, fmt.Errorf("%w: %v", ErrInvalidValue, err))
			}
			j = []byte("null") // a Value with no kind set
		}
		// protojson randomizes whitespace; the column holds the compact form.
		var cb bytes.Buffer
		if err := json.Compact(&cb, j); err != nil {
			return d.fail(f.path, off, fmt.Errorf("%w: %v", ErrInvalidValue, err))
		}
		d.cols[f.col].byteArray(r, def, cb.Bytes())
		return nil
	}
	// Timestamp, Duration (fields 1 and 2) and wrappers (field 1): last
	// one wins across all merged occurrences.
	var f1, f2 uint64
	var has1 bool
	b := d.buf
	want := protowire.VarintType
	if f.p.Wrapper {
		want = f.elemWT
	}
	for o := head; o >= 0; {
		start, end := unrng(d.occs[o].v)
		for i := start; i < end; {
			var num protowire.Number
			var typ protowire.Type
			n := 1
			if c := b[i]; c < 0x80 && c >= 8 {
				num, typ = protowire.Number(c>>3), protowire.Type(c&7)
			} else {
				num, typ, n = protowire.ConsumeTag(b[i:end])
				if n < 0 {
					return d.fail(f.path, i, wireErr(n))
				}
				if num > protowire.MaxValidNumber {
					return d.fail(f.path, i, fmt.Errorf("%w: field number %d out of range", ErrTruncated, num))
				}
			}
			i += n
			if (num == 1 || (num == 2 && !f.p.Wrapper)) && typ == want {
				var v uint64
				switch typ {
				case protowire.VarintType:
					x, n := protowire.ConsumeVarint(b[i:end])
					if n < 0 {
						return d.fail(f.path, i, wireErr(n))
					}
					v, i = x, i+n
				case protowire.Fixed32Type:
					x, n := protowire.ConsumeFixed32(b[i:end])
					if n < 0 {
						return d.fail(f.path, i, wireErr(n))
					}
					v, i = uint64(x), i+n
				case protowire.Fixed64Type:
					x, n := protowire.ConsumeFixed64(b[i:end])
					if n < 0 {
						return d.fail(f.path, i, wireErr(n))
					}
					v, i = x, i+n
				case protowire.BytesType:
					l, n := protowire.ConsumeVarint(b[i:end])
					if n < 0 || l > uint64(end-i-n) {
						return d.fail(f.path, i, ErrTruncated)
					}
					v = rng(i+n, i+n+int(l))
					i += n + int(l)
				}
				if num == 1 {
					f1, has1 = v, true
				} else {
					f2 = v
				}
				continue
			}
			if typ == protowire.EndGroupType {
				return d.fail(f.path, i-n, ErrTruncated)
			}
			n = protowire.ConsumeFieldValue(num, typ, b[i:end])
			if n < 0 {
				return d.fail(f.path, i, wireErr(n))
			}
			i += n
		}
		if !chain {
			break
		}
		o = d.occs[o].next
	}
	c := d.cols[f.col]
	switch {
	case f.p.Wrapper:
		if !has1 {
			if f.conv == schema.ConvString || f.conv == schema.ConvBytes {
				c.byteArray(r, def, nil)
				return nil
			}
			return d.leaf(f, r, def, 0)
		}
		return d.leaf(f, r, def, f1)
	case f.conv == schema.ConvTimestamp:
		sec, nanos := int64(f1), int64(int32(f2))
		if sec < minTimestampSeconds || sec > maxTimestampSeconds || nanos < 0 || nanos > 999_999_999 {
			return d.fail(f.path, 0, fmt.Errorf("%w: timestamp %ds %dns is outside 0001-01-01..9999-12-31", ErrInvalidValue, sec, nanos))
		}
		c.int64(r, def, sec*1_000_000+nanos/1000)
	case f.conv == schema.ConvDuration:
		sec, nanos := int64(f1), int64(int32(f2))
		if sec < -maxDurationSeconds || sec > maxDurationSeconds || nanos < -999_999_999 || nanos > 999_999_999 {
			return d.fail(f.path, 0, fmt.Errorf("%w: duration %ds %dns is beyond ±10000 years", ErrInvalidValue, sec, nanos))
		}
		c.int64(r, def, sec*1_000_000+nanos/1000)
	default:
		return d.fail(f.path, 0, fmt.Errorf("%w: conversion %v of a message", ErrInvalidValue, f.conv))
	}
	return nil
}

// fastValue reads the value of wire type want (varint or length-delimited)
// at b[i:] and returns it (a payload as rng) and the index after it, or
// i < 0 when it is malformed.
func fastValue(b []byte, i int, want protowire.Type) (uint64, int) {
	var v uint64
	if i < len(b) && b[i] < 0x80 {
		v, i = uint64(b[i]), i+1
	} else {
		x, n := protowire.ConsumeVarint(b[i:])
		if n < 0 {
			return 0, -1
		}
		v, i = x, i+n
	}
	if want == protowire.BytesType {
		if v > uint64(len(b)-i) {
			return 0, -1
		}
		return rng(i, i+int(v)), i + int(v)
	}
	return v, i
}

const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
	maxDurationSeconds  = 315576000000
)
