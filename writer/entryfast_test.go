package writer

import (
	"errors"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/protolake/protolake/schema"
)

// TestEntryFast: entryFast, mapEntries' fast path, fills a map entry's
// frame as scan does whenever it accepts a payload, leaves the frame blank
// when it does not, and accepts the payloads encoders write (key then
// value, either absent). The payloads are entries of AdImpression's labels
// (string to string) and experiments (string to message) maps: canonical
// ones and the same reordered, duplicated, cut, with other fields or wire
// types.
func TestEntryFast(t *testing.T) {
	w, _ := newWriterFor(t, adTable(t, schema.Options{}))
	d := &w.dec
	r := rand.New(rand.NewPCG(7, 11))
	accepted := 0
	for n := range 20000 {
		e := w.prog.dense[11+2*(n%2)].child // labels, experiments
		var p []byte
		canonical := n%4 < 2
		if canonical {
			for num := protowire.Number(1); num <= 2; num++ {
				if r.IntN(4) > 0 {
					p = appendTestField(p, r, num, protowire.BytesType)
				}
			}
		} else {
			for range r.IntN(4) {
				typ := protowire.BytesType
				if r.IntN(4) == 0 {
					typ = protowire.VarintType
				}
				p = appendTestField(p, r, protowire.Number(1+r.IntN(3)), typ)
			}
			if len(p) > 0 && r.IntN(3) == 0 {
				p = p[:r.IntN(len(p))]
			}
		}
		off := r.IntN(3)
		d.buf = append(make([]byte, off), p...)
		d.start(0)
		fast := d.pushFrame(e)
		ok := d.entryFast(e, fast, off, len(d.buf))
		if canonical && !ok {
			t.Fatalf("canonical entry %x not taken by entryFast", p)
		}
		if !ok {
			for k, s := range d.slots[fast : fast+2] {
				if s != (slot{head: -1, tail: -1}) {
					t.Fatalf("entry %x: entryFast declined it but left slot %d %+v", p, k, s)
				}
			}
			continue
		}
		accepted++
		scanned := d.pushFrame(e)
		if err := d.scan(e, scanned, off, len(d.buf), 0, false, false, 1); err != nil {
			t.Fatalf("entry %x: entryFast took it, scan fails: %v", p, err)
		}
		for k := range 2 {
			a, b := d.slots[fast+k], d.slots[scanned+k]
			if a.n != b.n || e.fields[k].kind == fkScalar && a.v != b.v ||
				e.fields[k].kind != fkScalar && a.n > 0 && d.occs[a.head].v != d.occs[b.head].v {
				t.Fatalf("entry %x field %d: entryFast %+v, scan %+v", p, k+1, a, b)
			}
		}
	}
	if accepted < 10000 {
		t.Fatalf("only %d entries took the fast path", accepted)
	}
}

func appendTestField(p []byte, r *rand.Rand, num protowire.Number, typ protowire.Type) []byte {
	p = protowire.AppendTag(p, num, typ)
	if typ == protowire.VarintType {
		return protowire.AppendVarint(p, r.Uint64()>>r.IntN(64))
	}
	b := make([]byte, r.IntN(5))
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return protowire.AppendBytes(p, b)
}

// TestEntryFastEveryMap: on every map of the edge schemas (integer, bool
// and string keys; string, bytes, enum, bool, integer, float, message,
// Timestamp and Value values) and AdImpression's, entryFast fills the
// frame exactly as scan does, with the same record cost, whenever it takes
// an entry, and leaves the frame, the occurrences and the cost as they were
// when it does not. The entries are built from tokens: key and value with
// their own or another wire type, unknown and two-byte-tag fields, 1- to
// 10-byte and non-minimal varints, lengths past the end, cut anywhere. A
// message value that does not fit the record budget is declined and scan
// reports ErrRecordTooLarge.
func TestEntryFastEveryMap(t *testing.T) {
	tabs := []*schema.Table{
		deriveTable(t, "edge/edge.binpb", "edge.Maps", schema.Options{}),
		deriveTable(t, "edge/edge.binpb", "edge.WellKnown", schema.Options{}),
		deriveTable(t, "edge/edge.binpb", "edge.Nested", schema.Options{MaxRecursionDepth: 2}),
		adTable(t, schema.Options{}),
	}
	r := rand.New(rand.NewPCG(5, 8))
	kinds := map[[2]protowire.Type]bool{}
	accepted, declined, budget := 0, 0, 0
	for _, tab := range tabs {
		w, _ := newWriterFor(t, tab)
		d := &w.dec
		var entries []*mprog
		seen := map[*mprog]bool{}
		var walk func(m *mprog)
		walk = func(m *mprog) {
			if m == nil || seen[m] {
				return
			}
			seen[m] = true
			for _, f := range m.fields {
				if f.kind == fkMap {
					entries = append(entries, f.child)
				}
				walk(f.child)
			}
		}
		walk(w.prog)
		if len(entries) == 0 {
			t.Fatalf("%s: no maps", tab.Plan.Message.FullName())
		}
		for _, e := range entries {
			kinds[[2]protowire.Type{e.fields[0].wt, e.fields[1].wt}] = true
			for n := range 3000 {
				p := entryTokens(r, e, n%3 == 0)
				off := r.IntN(3)
				d.buf = append(make([]byte, off), p...)
				d.start(0)
				if n%5 == 0 { // the value's occurrence fits the budget or just not
					d.start(64)
					d.cost = 64 - occBytes + int64(r.IntN(2))
				}
				d.occs = append(d.occs, occ{}) // an occurrence before the entry's
				cost, nocc := d.cost, len(d.occs)
				fast := d.pushFrame(e)
				ok := d.entryFast(e, fast, off, len(d.buf))
				if !ok {
					declined++
					if d.cost != cost || len(d.occs) != nocc {
						t.Fatalf("%s entry %x: declined, cost %d -> %d, occurrences %d -> %d", e.path, p, cost, d.cost, nocc, len(d.occs))
					}
					for k, s := range d.slots[fast : fast+2] {
						if s != (slot{head: -1, tail: -1}) {
							t.Fatalf("%s entry %x: declined but left slot %d %+v", e.path, p, k, s)
						}
					}
					if d.maxCost > 0 && e.fields[1].kind == fkMessage {
						if err := d.scan(e, fast, off, len(d.buf), 0, false, false, 1); errors.Is(err, ErrRecordTooLarge) {
							budget++
						}
					}
					continue
				}
				accepted++
				fastCost := d.cost
				d.cost = cost
				scanned := d.pushFrame(e)
				if err := d.scan(e, scanned, off, len(d.buf), 0, false, false, 1); err != nil {
					t.Fatalf("%s entry %x: entryFast took it, scan fails: %v", e.path, p, err)
				}
				if d.cost != fastCost {
					t.Fatalf("%s entry %x: cost %d after entryFast, %d after scan", e.path, p, fastCost, d.cost)
				}
				for k := range 2 {
					a, b := d.slots[fast+k], d.slots[scanned+k]
					if a.n != b.n || e.fields[k].kind == fkScalar && a.v != b.v ||
						e.fields[k].kind != fkScalar && a.n > 0 && (d.occs[a.head] != d.occs[b.head] || a.head != a.tail) {
						t.Fatalf("%s entry %x field %d: entryFast %+v, scan %+v", e.path, p, k+1, a, b)
					}
				}
			}
		}
	}
	if accepted < 10000 || declined < 10000 || budget < 100 {
		t.Fatalf("entries taken %d, declined %d, over budget %d: the generator misses a path", accepted, declined, budget)
	}
	for _, k := range [][2]protowire.Type{{protowire.VarintType, protowire.BytesType}, {protowire.VarintType, protowire.VarintType}, {protowire.BytesType, protowire.BytesType}} {
		if !kinds[k] {
			t.Fatalf("no map with key and value wire types %v", k)
		}
	}
}

// entryTokens builds a map entry payload for e: canonical (key then value,
// each present or not, with their wire types) or from random tokens.
func entryTokens(r *rand.Rand, e *mprog, canonical bool) []byte {
	var p []byte
	varint := func() {
		switch r.IntN(5) {
		case 0:
			p = protowire.AppendVarint(p, uint64(r.IntN(128)))
		case 1: // negative: 10 bytes
			p = protowire.AppendVarint(p, uint64(-1-r.Int64N(1<<40)))
		case 2: // non-minimal
			p = append(p, 0x80|byte(r.IntN(128)), 0x80, 0)
		default:
			p = protowire.AppendVarint(p, r.Uint64()>>r.IntN(64))
		}
	}
	value := func(typ protowire.Type) {
		switch typ {
		case protowire.VarintType:
			varint()
		case protowire.Fixed32Type:
			p = protowire.AppendFixed32(p, r.Uint32())
		case protowire.Fixed64Type:
			p = protowire.AppendFixed64(p, r.Uint64())
		default:
			b := make([]byte, r.IntN(6))
			for i := range b {
				b[i] = byte(r.IntN(256))
				if r.IntN(2) == 0 {
					b[i] = 'a' + byte(r.IntN(26))
				}
			}
			if r.IntN(8) == 0 { // a length past the payload's end
				p = protowire.AppendVarint(p, uint64(len(b)+1+r.IntN(3)))
				p = append(p, b...)
				return
			}
			p = protowire.AppendBytes(p, b)
		}
	}
	if canonical {
		for k := range 2 {
			if r.IntN(4) > 0 {
				p = protowire.AppendTag(p, protowire.Number(k+1), e.fields[k].wt)
				value(e.fields[k].wt)
			}
		}
		return p
	}
	types := []protowire.Type{protowire.VarintType, protowire.Fixed64Type, protowire.BytesType, protowire.Fixed32Type}
	for range r.IntN(4) {
		num := protowire.Number(1 + r.IntN(2))
		switch r.IntN(8) {
		case 0:
			num = 3
		case 1:
			num = 17 // two-byte tag
		}
		typ := e.fields[min(int(num), 2)-1].wt
		if r.IntN(4) == 0 {
			typ = types[r.IntN(len(types))]
		}
		if num == 1 && r.IntN(8) == 0 {
			p = append(p, 0x80|byte(num)<<3|byte(typ), 0) // a non-minimal tag
		} else {
			p = protowire.AppendTag(p, num, typ)
		}
		value(typ)
	}
	if len(p) > 0 && r.IntN(4) == 0 {
		p = p[:r.IntN(len(p))]
	}
	return p
}
