package writer

import (
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
