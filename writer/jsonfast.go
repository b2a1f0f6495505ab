package writer

import (
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// A fast path for google.protobuf.Struct, Value and ListValue: their
// canonical protojson written straight from the wire bytes. It handles the
// common, unambiguous encodings (no duplicate keys, one kind per Value, no
// NaN or infinities) and reports !ok for anything else, which then takes the
// dynamicpb + protojson path. The differential tests compare both.

const jsonMaxDepth = 64

type jsonEntry struct {
	key        []byte
	start, end int
}

func appendStructJSON(dst, b []byte, depth int) ([]byte, bool) {
	if depth > jsonMaxDepth {
		return dst, false
	}
	var arr [16]jsonEntry
	ents := arr[:0]
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return dst, false
		}
		i += n
		e, n := protowire.ConsumeBytes(b[i:])
		if n < 0 {
			return dst, false
		}
		i += n
		// entry: key = 1 (string), value = 2 (Value)
		var ent jsonEntry
		ent.start, ent.end = -1, -1
		base := i - len(e)
		for j := 0; j < len(e); {
			num, typ, n := protowire.ConsumeTag(e[j:])
			if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) {
				return dst, false
			}
			j += n
			v, n := protowire.ConsumeBytes(e[j:])
			if n < 0 {
				return dst, false
			}
			if num == 1 {
				if ent.key != nil {
					return dst, false
				}
				ent.key = v
				if ent.key == nil {
					ent.key = []byte{}
				}
			} else {
				if ent.start >= 0 {
					return dst, false
				}
				ent.start = base + j + n - len(v)
				ent.end = ent.start + len(v)
			}
			j += n
		}
		if ent.key == nil || ent.start < 0 || len(ents) == cap(arr) {
			return dst, false
		}
		// insertion in key order; duplicates are not handled here
		k := len(ents)
		ents = append(ents, ent)
		for k > 0 {
			c := string(ents[k-1].key)
			if c == string(ent.key) {
				return dst, false
			}
			if c < string(ent.key) {
				break
			}
			ents[k] = ents[k-1]
			k--
		}
		ents[k] = ent
	}
	dst = append(dst, '{')
	for i, e := range ents {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = appendJSONString(dst, e.key); !ok {
			return dst, false
		}
		dst = append(dst, ':')
		if dst, ok = appendValueJSON(dst, b[e.start:e.end], depth+1); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

func appendListJSON(dst, b []byte, depth int) ([]byte, bool) {
	if depth > jsonMaxDepth {
		return dst, false
	}
	dst = append(dst, '[')
	first := true
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return dst, false
		}
		i += n
		v, n := protowire.ConsumeBytes(b[i:])
		if n < 0 {
			return dst, false
		}
		i += n
		if !first {
			dst = append(dst, ',')
		}
		first = false
		var ok bool
		if dst, ok = appendValueJSON(dst, v, depth+1); !ok {
			return dst, false
		}
	}
	return append(dst, ']'), true
}

func appendValueJSON(dst, b []byte, depth int) ([]byte, bool) {
	if depth > jsonMaxDepth {
		return dst, false
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return dst, false
	}
	rest := b[n:]
	var used int
	switch {
	case num == 1 && typ == protowire.VarintType: // null_value
		_, used = protowire.ConsumeVarint(rest)
		dst = append(dst, "null"...)
	case num == 2 && typ == protowire.Fixed64Type:
		var v uint64
		v, used = protowire.ConsumeFixed64(rest)
		f := math.Float64frombits(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, false
		}
		dst = appendJSONFloat(dst, f)
	case num == 4 && typ == protowire.VarintType:
		var v uint64
		v, used = protowire.ConsumeVarint(rest)
		dst = strconv.AppendBool(dst, v != 0)
	case (num == 3 || num == 5 || num == 6) && typ == protowire.BytesType:
		var v []byte
		v, used = protowire.ConsumeBytes(rest)
		if used < 0 {
			return dst, false
		}
		var ok bool
		switch num {
		case 3:
			dst, ok = appendJSONString(dst, v)
		case 5:
			dst, ok = appendStructJSON(dst, v, depth)
		case 6:
			dst, ok = appendListJSON(dst, v, depth)
		}
		if !ok {
			return dst, false
		}
	default:
		return dst, false
	}
	if used < 0 || n+used != len(b) { // exactly one field
		return dst, false
	}
	return dst, true
}

// appendJSONFloat formats like protojson (and encoding/json).
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONString quotes s like protojson; !ok for invalid UTF-8.
func appendJSONString(dst, s []byte) ([]byte, bool) {
	dst = append(dst, '"')
	for len(s) > 0 {
		c := s[0]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(s)
			if r == utf8.RuneError && n == 1 {
				return dst, false
			}
			dst = append(dst, s[:n]...)
			s = s[n:]
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < ' ':
			dst = append(dst, '\\')
			switch c {
			case '\b':
				dst = append(dst, 'b')
			case '\f':
				dst = append(dst, 'f')
			case '\n':
				dst = append(dst, 'n')
			case '\r':
				dst = append(dst, 'r')
			case '\t':
				dst = append(dst, 't')
			default:
				dst = append(dst, 'u')
				dst = append(dst, "0000"[1+(bits.Len32(uint32(c))-1)/4:]...)
				dst = strconv.AppendUint(dst, uint64(c), 16)
			}
		default:
			dst = append(dst, c)
		}
		s = s[1:]
	}
	return append(dst, '"'), true
}
