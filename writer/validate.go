package writer

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
)

// Values that protobuf parses but the row does not keep (a string
// overwritten by a later occurrence, a oneof member replaced by another, the
// earlier of duplicate map entries) must still be valid: protobuf-go rejects
// the whole message when any of them is malformed or holds invalid UTF-8.
// The validators below check such dropped payloads without writing them.

// validateSlot checks the occurrences of a field that is being dropped.
func (d *decoder) validateSlot(f *fprog, s slot, depth int) error {
	if s.n == 0 {
		return nil
	}
	if f.kind == fkScalar {
		if f.conv == schema.ConvString {
			start, end := unrng(s.v)
			if !utf8.Valid(d.buf[start:end]) {
				return d.fail(f.path, start, ErrInvalidUTF8)
			}
		}
		return nil
	}
	for o := s.head; o >= 0; o = d.occs[o].next {
		if err := d.validatePayload(f, d.occs[o].v, d.occs[o].packed, depth); err != nil {
			return err
		}
	}
	return nil
}

// validatePayload checks one length-delimited or group payload of f.
func (d *decoder) validatePayload(f *fprog, v uint64, packed bool, depth int) error {
	start, end := unrng(v)
	b := d.buf[start:end]
	switch {
	case packed:
		for i := 0; i < len(b); {
			var n int
			switch f.wt {
			case protowire.VarintType:
				_, n = protowire.ConsumeVarint(b[i:])
			case protowire.Fixed32Type:
				_, n = protowire.ConsumeFixed32(b[i:])
			case protowire.Fixed64Type:
				_, n = protowire.ConsumeFixed64(b[i:])
			default:
				n = -1
			}
			if n < 0 {
				return d.fail(f.path, start+i, ErrTruncated)
			}
			i += n
		}
	case f.child != nil:
		return d.validate(f.child, start, end, depth+1)
	case f.conv == schema.ConvJSON || f.conv == schema.ConvRaw:
		if err := (proto.UnmarshalOptions{RecursionLimit: MaxDepth - depth}).Unmarshal(b, dynamicpb.NewMessage(f.p.Desc.Message())); err != nil {
			return d.fail(f.path, start, fmt.Errorf("%w: %v", ErrInvalidValue, err))
		}
	case f.msgLeaf: // wrappers, Timestamp, Duration: structure, and a wrapped string's UTF-8
		for i := 0; i < len(b); {
			num, typ, n := protowire.ConsumeTag(b[i:])
			if n < 0 || num > protowire.MaxValidNumber {
				return d.fail(f.path, start+i, ErrTruncated)
			}
			i += n
			if typ == protowire.EndGroupType {
				return d.fail(f.path, start+i-n, ErrTruncated)
			}
			m := protowire.ConsumeFieldValue(num, typ, b[i:])
			if m < 0 {
				return d.fail(f.path, start+i, ErrTruncated)
			}
			if f.p.Wrapper && f.conv == schema.ConvString && num == 1 && typ == protowire.BytesType {
				s, _ := protowire.ConsumeBytes(b[i:])
				if !utf8.Valid(s) {
					return d.fail(f.path, start+i, ErrInvalidUTF8)
				}
			}
			i += m
		}
	case f.conv == schema.ConvString:
		if !utf8.Valid(b) {
			return d.fail(f.path, start, ErrInvalidUTF8)
		}
	}
	return nil
}

// validate walks a message payload of m: wire structure, UTF-8 of strings,
// nested messages; nothing is written.
func (d *decoder) validate(m *mprog, start, end, depth int) error {
	if depth > MaxDepth {
		return d.fail(m.path, start, ErrTooDeep)
	}
	b := d.buf
	for i := start; i < end; {
		num, typ, n := protowire.ConsumeTag(b[i:end])
		if n < 0 || num > protowire.MaxValidNumber {
			return d.fail(m.path, i, ErrTruncated)
		}
		i += n
		var f *fprog
		if uint64(num) < uint64(len(m.dense)) {
			f = m.dense[num]
		} else if m.sparse != nil {
			f = m.sparse[num]
		}
		if typ == protowire.EndGroupType {
			return d.fail(m.path, i-n, ErrTruncated)
		}
		if f == nil || !(typ == f.wt || (f.packable && typ == protowire.BytesType)) || (typ != protowire.BytesType && typ != protowire.StartGroupType) {
			k := protowire.ConsumeFieldValue(num, typ, b[i:end])
			if k < 0 {
				return d.fail(m.path, i, ErrTruncated)
			}
			i += k
			continue
		}
		var v uint64
		if typ == protowire.BytesType {
			s, k := protowire.ConsumeBytes(b[i:end])
			if k < 0 {
				return d.fail(f.path, i, ErrTruncated)
			}
			v = rng(i+k-len(s), i+k)
			i += k
		} else {
			_, k := protowire.ConsumeGroup(num, b[i:end])
			if k < 0 {
				return d.fail(f.path, i, ErrTruncated)
			}
			v = rng(i, i+k-protowire.SizeTag(num))
			i += k
		}
		if f.kind == fkSkip {
			if err := d.validateSkippedPayload(f, v, depth); err != nil {
				return err
			}
			continue
		}
		if err := d.validatePayload(f, v, typ == protowire.BytesType && typ != f.wt, depth); err != nil {
			return err
		}
	}
	return nil
}

// validateSkipped checks the payload of a field without columns (an empty
// message such as google.protobuf.Empty, or one holding only such
// messages), whose wire value (after its tag) is b[start:end]: protobuf-go
// parses it as that message and rejects the whole record when it is
// malformed (a truncated tag, an unbalanced group), so the writer must
// too, although it writes nothing of it.
func (d *decoder) validateSkipped(f *fprog, num protowire.Number, typ protowire.Type, start, end, depth int) error {
	b := d.buf[start:end]
	var v uint64
	switch typ {
	case protowire.BytesType:
		p, _ := protowire.ConsumeBytes(b)
		v = rng(end-len(p), end)
	case protowire.StartGroupType:
		v = rng(start, end-protowire.SizeTag(num))
	default:
		return nil
	}
	return d.validateSkippedPayload(f, v, depth)
}

// validateSkippedPayload checks the message payload v of a field without
// columns (see validateSkipped).
func (d *decoder) validateSkippedPayload(f *fprog, v uint64, depth int) error {
	start, end := unrng(v)
	if start == end || f.p == nil || f.p.Desc == nil || f.p.Desc.Message() == nil {
		return nil
	}
	b := d.buf[start:end]
	err := (proto.UnmarshalOptions{RecursionLimit: MaxDepth - depth}).Unmarshal(b, dynamicpb.NewMessage(f.p.Desc.Message()))
	if err == nil {
		return nil
	}
	if proto.Unmarshal(b, dynamicpb.NewMessage(f.p.Desc.Message())) == nil {
		return d.fail(f.path, start, ErrTooDeep)
	}
	return d.fail(f.path, start, fmt.Errorf("%w: %v", ErrTruncated, err))
}
