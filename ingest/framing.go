package ingest

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Framings of record values.
const (
	FramingRaw       = "raw"
	FramingConfluent = "confluent"
)

// errFraming marks a record whose framing header is invalid.
var errFraming = errors.New("invalid framing")

// unframe returns the protobuf message inside a record value. Confluent's
// schema-registry serializers write a magic byte 0, a 4-byte big-endian schema
// id, then the message-index path as a zigzag varint count followed by that
// many zigzag varints (a single 0 byte standing for the first message). The
// schema id is not checked: the table's descriptor decides the decoding.
func unframe(framing string, v []byte) ([]byte, error) {
	if framing != FramingConfluent {
		return v, nil
	}
	if len(v) < 6 {
		return nil, fmt.Errorf("%w: confluent header needs at least 6 bytes, the value has %d", errFraming, len(v))
	}
	if v[0] != 0 {
		return nil, fmt.Errorf("%w: confluent magic byte is %#x, want 0", errFraming, v[0])
	}
	rest := v[5:]
	n, k := protowire.ConsumeVarint(rest)
	if k < 0 {
		return nil, fmt.Errorf("%w: confluent message-index count is not a varint", errFraming)
	}
	rest = rest[k:]
	count := protowire.DecodeZigZag(n)
	if count < 0 || count > 100 {
		return nil, fmt.Errorf("%w: confluent message-index count %d out of range", errFraming, count)
	}
	for i := int64(0); i < count; i++ {
		_, k := protowire.ConsumeVarint(rest)
		if k < 0 {
			return nil, fmt.Errorf("%w: confluent message index %d is not a varint", errFraming, i)
		}
		rest = rest[k:]
	}
	return rest, nil
}
