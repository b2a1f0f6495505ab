package ingest

import (
	"encoding/binary"
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

// unframe returns the protobuf message inside a record value. With the
// confluent framing the header (see unframeConfluent) is stripped; the schema
// id is not checked: the table's descriptor decides the decoding.
func unframe(framing string, v []byte) ([]byte, error) {
	if framing != FramingConfluent {
		return v, nil
	}
	_, _, payload, err := unframeConfluent(v)
	return payload, err
}

// maxMessageIndexes bounds the message-index path of a Confluent header.
const maxMessageIndexes = 100

// unframeConfluent splits a value written by a Confluent schema-registry
// serializer: a magic byte 0, a 4-byte big-endian schema id, then the
// message-index path as a zigzag varint count followed by that many zigzag
// varints (a single 0 byte standing for [0], the first message; index is
// then nil), then the message.
func unframeConfluent(v []byte) (id int, index []int, payload []byte, err error) {
	if len(v) < 6 {
		return 0, nil, nil, fmt.Errorf("%w: confluent header needs at least 6 bytes, the value has %d", errFraming, len(v))
	}
	if v[0] != 0 {
		return 0, nil, nil, fmt.Errorf("%w: confluent magic byte is %#x, want 0", errFraming, v[0])
	}
	id = int(binary.BigEndian.Uint32(v[1:5]))
	rest := v[5:]
	n, k := protowire.ConsumeVarint(rest)
	if k < 0 {
		return 0, nil, nil, fmt.Errorf("%w: confluent message-index count is not a varint", errFraming)
	}
	rest = rest[k:]
	count := protowire.DecodeZigZag(n)
	if count < 0 || count > maxMessageIndexes {
		return 0, nil, nil, fmt.Errorf("%w: confluent message-index count %d out of range", errFraming, count)
	}
	for i := int64(0); i < count; i++ {
		x, k := protowire.ConsumeVarint(rest)
		if k < 0 {
			return 0, nil, nil, fmt.Errorf("%w: confluent message index %d is not a varint", errFraming, i)
		}
		ix := protowire.DecodeZigZag(x)
		if ix < 0 || ix > 1<<20 {
			return 0, nil, nil, fmt.Errorf("%w: confluent message index %d is %d", errFraming, i, ix)
		}
		index = append(index, int(ix))
		rest = rest[k:]
	}
	return id, index, rest, nil
}
