package schema

import (
	"encoding/binary"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Plan is the shredding plan: everything a decoder needs to turn the wire
// bytes of one protobuf message into one row of Parquet column values, in a
// single pass and without dynamic messages.
//
// The plan is a tree that mirrors the Parquet schema: one *MessagePlan per
// message *position* (the same message type nested at two places has two
// MessagePlans with different column indexes and levels), one *FieldPlan per
// proto field at that position. Leaf fields own exactly one Parquet leaf
// column (Columns[f.Column]); struct-like fields own the contiguous column
// range [f.FirstColumn, f.EndColumn).
//
// # Walking the plan
//
// A decoder keeps, per column, a buffer of (value, repetition level,
// definition level) triples and walks the message like this (Dremel
// striping; r is the repetition level to use for the next value written, d
// the definition level reached so far):
//
//	decode(m *MessagePlan, buf []byte, r int):
//	    for each (num, wiretype, payload) in buf:
//	        f := m.Field(num)
//	        if f == nil or !f.Accepts(wiretype): unknown field (top level:
//	            append the raw bytes to _unknown; nested: skip)
//	        if f.Conv == ConvSkip: skip
//	        remember payload in slot f.Index (singular: last one wins, except
//	            message payloads, which protobuf merges — keep them all;
//	            repeated/map: append; packed payloads hold many elements)
//	        if f.Oneof >= 0: clear the other members of m.Oneofs[f.Oneof]
//	    for each f in m.Fields (declaration order = column order):
//	        switch f.Cardinality:
//	        Singular:
//	            absent && f.Presence == Explicit: write null at
//	                f.NullDefLevel, rep r, on columns [f.FirstColumn, f.EndColumn)
//	            absent && f.Presence == Implicit: write f.Default (leaf) at
//	                f.DefLevel
//	            absent && f.Presence == Required: reject the message
//	            leaf: write convert(payload) at f.DefLevel, rep r
//	            message: decode(f.Message, payload, r)
//	        Repeated, Map:
//	            no elements: write null at f.DefLevel (the empty list/map),
//	                rep r, on [f.FirstColumn, f.EndColumn)
//	            element i: rep = r for i == 0, else f.RepLevel; the element
//	                is written like a singular leaf at f.ElemDefLevel, or
//	                decoded with f.Message (repeated message), or, for maps,
//	                as the two fields f.MapKey and f.MapValue of the entry
//	                message (each absent one takes its default value)
//
// Only partition-identity fields are special: they have Column == -1 and
// PartitionIndex >= 0, their value goes to the row's partition key instead
// of a column (see PartitionColumn).
//
// The plan is immutable once built and safe for concurrent use.
type Plan struct {
	// Message is the table's message descriptor (cold paths only).
	Message protoreflect.MessageDescriptor

	// Root is the plan of the top-level message: DefLevel 0, RepLevel 0.
	Root *MessagePlan

	// Columns lists the leaf columns of the Parquet data files in Parquet
	// order (the order parquet-go numbers them): proto leaves first, then
	// the metadata columns. Partition columns are not in the data files.
	Columns []*Column

	// Kafka locates the leaves of the `_kafka` metadata column; nil when
	// Options.KafkaMetadata is false.
	Kafka *KafkaColumns

	// Unknown is the column index of `_unknown` (optional BYTE_ARRAY: null
	// when the message has no unknown top-level field, else the
	// concatenated wire bytes of those fields, tags included, in the order
	// they appeared), or -1 when Options.UnknownFields is false.
	Unknown int

	// Partitions are the table's partition columns in the order of
	// Delta's partitionColumns. They are not in the data files.
	Partitions []*PartitionColumn
}

// MessagePlan is the plan of one message at one position in the tree.
type MessagePlan struct {
	// Desc is the message descriptor (cold paths: protojson, errors).
	Desc protoreflect.MessageDescriptor

	// Path is the field path of this position, for error messages:
	// "" for the root, else like "placement.sizes[]" or "experiments{}.value".
	Path string

	// Fields are the plan fields in proto declaration order, which is also
	// the order of their columns. Fields dropped from the table (empty
	// messages) are included with Conv == ConvSkip so a decoder can tell
	// them from unknown fields.
	Fields []*FieldPlan

	// Oneofs lists the members of each real (non-synthetic) oneof that
	// have columns; FieldPlan.Oneof indexes it. When several members of a
	// oneof appear on the wire, the last one wins and the others are null.
	Oneofs [][]*FieldPlan

	// DefLevel is the definition level reached when this message is
	// present (leaves of its absent explicit fields are written with it).
	DefLevel int

	// RepLevel is the number of repeated ancestors of this position.
	RepLevel int

	// FirstColumn and EndColumn delimit the leaf columns of this subtree.
	FirstColumn, EndColumn int

	dense  []*FieldPlan // indexed by field number when the numbers are small
	sparse map[protowire.Number]*FieldPlan
}

// denseLimit is the largest field number looked up through a slice; larger
// numbers (rare: extensions ranges, sparse legacy schemas) use a map.
const denseLimit = 256

// Field returns the plan field for a field number, or nil when the message
// declares no such field (an unknown field, or an extension).
func (m *MessagePlan) Field(num protowire.Number) *FieldPlan {
	if uint64(num) < uint64(len(m.dense)) {
		return m.dense[num]
	}
	if m.sparse == nil {
		return nil
	}
	return m.sparse[num]
}

// index builds the field-number lookup.
func (m *MessagePlan) index() {
	maxNum := protowire.Number(0)
	for _, f := range m.Fields {
		maxNum = max(maxNum, f.Number)
	}
	if maxNum <= denseLimit {
		m.dense = make([]*FieldPlan, maxNum+1)
		for _, f := range m.Fields {
			m.dense[f.Number] = f
		}
		return
	}
	m.sparse = make(map[protowire.Number]*FieldPlan, len(m.Fields))
	for _, f := range m.Fields {
		if f.Number <= denseLimit {
			if m.dense == nil {
				m.dense = make([]*FieldPlan, denseLimit+1)
			}
			m.dense[f.Number] = f
		} else {
			m.sparse[f.Number] = f
		}
	}
}

// Cardinality says how many values a field holds.
type Cardinality uint8

const (
	// Singular is a non-repeated field (a Parquet optional node).
	Singular Cardinality = iota
	// Repeated is a repeated non-map field (a 3-level Parquet LIST with a
	// required element).
	Repeated
	// Map is a map field (a Parquet MAP: repeated key_value with a required
	// key and a required value).
	Map
)

// String returns "singular", "repeated" or "map".
func (c Cardinality) String() string {
	switch c {
	case Singular:
		return "singular"
	case Repeated:
		return "repeated"
	case Map:
		return "map"
	}
	return fmt.Sprintf("Cardinality(%d)", uint8(c))
}

// Presence says what an absent singular field becomes.
type Presence uint8

const (
	// Explicit presence (message fields, proto2 optional, proto3
	// `optional`, oneof members, wrappers, Timestamp, Duration, Any):
	// absent is null.
	Explicit Presence = iota
	// Implicit presence (proto3 scalars without `optional`; editions
	// IMPLICIT): absent is the field's default value, written at DefLevel.
	// List elements and map keys/values are Implicit too: an element is
	// always there, and a map entry missing its key or value takes the
	// default (an absent message value is an empty message).
	Implicit
	// Required is a proto2 `required` field (or editions LEGACY_REQUIRED):
	// absent makes the message invalid, as proto.Unmarshal reports; the
	// decoder rejects the message.
	Required
)

// String returns "explicit", "implicit" or "required".
func (p Presence) String() string {
	switch p {
	case Explicit:
		return "explicit"
	case Implicit:
		return "implicit"
	case Required:
		return "required"
	}
	return fmt.Sprintf("Presence(%d)", uint8(p))
}

// Conv says how a field's payload becomes a column value. It fixes both the
// wire decoding and the Parquet value; the Go protobuf runtime's rules
// apply (an int32 arrives as a sign-extended 64-bit varint and is
// truncated to its low 32 bits; a bool is any non-zero varint).
type Conv uint8

const (
	// ConvNone: not a leaf. The field is a struct (f.Message), a list of
	// structs, or a map; its columns are below it.
	ConvNone Conv = iota
	// ConvSkip: a known field without a column (an empty message, dropped
	// with a warning). Skip its payload.
	ConvSkip

	ConvInt32          // varint → INT32 (low 32 bits)
	ConvInt64          // varint → INT64
	ConvUint32         // varint → INT64, zero-extended from 32 bits
	ConvUint64Decimal  // varint → FIXED_LEN_BYTE_ARRAY(9) DECIMAL(20,0), see PutDecimal20
	ConvUint64Long     // varint → INT64, the same 64 bits (values ≥ 2^63 read negative)
	ConvSint32         // zigzag varint → INT32
	ConvSint64         // zigzag varint → INT64
	ConvFixed32        // 4 bytes little-endian uint32 → INT64
	ConvFixed64Decimal // 8 bytes little-endian uint64 → FIXED_LEN_BYTE_ARRAY(9) DECIMAL(20,0)
	ConvFixed64Long    // 8 bytes little-endian → INT64 bits
	ConvSfixed32       // 4 bytes little-endian → INT32
	ConvSfixed64       // 8 bytes little-endian → INT64
	ConvFloat          // 4 bytes IEEE 754 → FLOAT
	ConvDouble         // 8 bytes IEEE 754 → DOUBLE
	ConvBool           // varint ≠ 0 → BOOLEAN
	ConvString         // length-delimited → BYTE_ARRAY STRING; invalid UTF-8 rejects the message
	ConvBytes          // length-delimited → BYTE_ARRAY
	// ConvEnumString: varint → BYTE_ARRAY STRING holding the value's name
	// (f.Enum.Name), or the number in decimal when the enum has no value
	// with that number.
	ConvEnumString
	// ConvEnumInt: varint → INT32 (option enums: int).
	ConvEnumInt
	// ConvTimestamp: a google.protobuf.Timestamp message (seconds = field 1
	// int64 varint, nanos = field 2 int32 varint, both default 0) →
	// INT64 TIMESTAMP(MICROS, UTC) = seconds*1e6 + floor(nanos/1000).
	// Sub-microsecond digits are truncated. A timestamp outside
	// 0001-01-01..9999-12-31 (or nanos outside 0..999999999) is invalid:
	// reject the message.
	ConvTimestamp
	// ConvDuration: a google.protobuf.Duration message (same fields) →
	// INT64 microseconds = seconds*1e6 + nanos/1000 (truncated toward zero).
	// A duration beyond ±10000 years is invalid: reject the message.
	ConvDuration
	// ConvJSON: a google.protobuf.Struct, Value or ListValue message →
	// BYTE_ARRAY STRING holding its protojson (cold path: unmarshal the
	// payload into a dynamicpb message of f.Desc.Message() — or the
	// structpb type —, protojson.Marshal it, then json.Compact the result:
	// protojson deliberately varies its whitespace, the column must not).
	// Map keys come out in sorted order. A Value with no kind set is
	// written as "null".
	ConvJSON
	// ConvRaw: a message cut off by max_recursion_depth → BYTE_ARRAY holding
	// the payload unchanged (its wire encoding; for a group, the bytes
	// between the start and end tags), which proto.Unmarshal reads back as
	// f.Desc.Message().
	ConvRaw
)

var convNames = [...]string{
	ConvNone: "none", ConvSkip: "skip",
	ConvInt32: "int32", ConvInt64: "int64", ConvUint32: "uint32→int64",
	ConvUint64Decimal: "uint64→decimal(20,0)", ConvUint64Long: "uint64→int64 bits",
	ConvSint32: "sint32 zigzag", ConvSint64: "sint64 zigzag",
	ConvFixed32: "fixed32→int64", ConvFixed64Decimal: "fixed64→decimal(20,0)",
	ConvFixed64Long: "fixed64→int64 bits", ConvSfixed32: "sfixed32", ConvSfixed64: "sfixed64",
	ConvFloat: "float", ConvDouble: "double", ConvBool: "bool",
	ConvString: "string (utf-8 checked)", ConvBytes: "bytes",
	ConvEnumString: "enum→name", ConvEnumInt: "enum→int32",
	ConvTimestamp: "Timestamp→micros", ConvDuration: "Duration→micros",
	ConvJSON: "protojson", ConvRaw: "serialized message (recursion cut)",
}

// String describes the conversion, e.g. "uint32→int64".
func (c Conv) String() string {
	if int(c) < len(convNames) && convNames[c] != "" {
		return convNames[c]
	}
	return fmt.Sprintf("Conv(%d)", uint8(c))
}

// IsLeaf reports whether the conversion writes one leaf column value.
func (c Conv) IsLeaf() bool { return c >= ConvInt32 }

// FieldPlan is the plan of one proto field at one position.
type FieldPlan struct {
	// Desc is the field descriptor (for maps: the map field itself).
	Desc protoreflect.FieldDescriptor

	// Number is the proto field number, Name the column name (the proto
	// field name, or the name the table already had for this number).
	Number protowire.Number
	Name   string

	// Path is the column path for error messages, e.g. "bids[].latency".
	Path string

	// Index is the position of this field in its MessagePlan.Fields, for
	// decoders that keep per-message slots.
	Index int

	// Kind is the proto kind of a value (for maps: MessageKind, the entry).
	Kind protoreflect.Kind

	// WireType is the wire type of one value: VarintType, Fixed32Type,
	// Fixed64Type, BytesType (strings, bytes, messages, maps) or
	// StartGroupType (proto2 groups).
	WireType protowire.Type

	// Packable is true for repeated scalar numeric fields: a parser must
	// accept both packed (one BytesType payload holding many values) and
	// unpacked (one WireType record per value) encodings, whatever the
	// declaration says.
	Packable bool

	Cardinality Cardinality
	Presence    Presence

	// Conv is how a value becomes a column value; ConvNone for structs,
	// lists of structs and maps, ConvSkip for dropped fields. For
	// repeated fields it applies to each element.
	Conv Conv

	// Wrapper is true for google.protobuf.*Value wrappers: the payload is a
	// message whose field 1 (absent: the zero value) is converted with
	// Conv; its wire type is the one Conv implies (varint for the integer
	// and bool conversions, fixed32 for float, fixed64 for double, bytes
	// for string and bytes). The field itself has explicit presence.
	Wrapper bool

	// Enum maps numbers to names for ConvEnumString; nil otherwise.
	Enum *EnumNames

	// Default is the value an absent Implicit field reads as: the zero value
	// for proto3, the declared [default = …] for proto2/editions fields
	// (kept even where presence is explicit, for cold-path readers). In
	// the Go type of Desc.Default(): int32, int64, uint32, uint64, float32,
	// float64, bool, string, []byte, protoreflect.EnumNumber.
	Default protoreflect.Value

	// Column is the leaf column index (Plan.Columns) of a leaf field or of
	// a repeated leaf's element; -1 for non-leaf and dropped fields and
	// for identity partition fields.
	Column int

	// FirstColumn and EndColumn delimit the leaf columns of this field's
	// subtree; nulls for an absent field go to each of them.
	FirstColumn, EndColumn int

	// Message is the child plan of a struct-like field: a singular message
	// or group, Any, or the element of a repeated message; nil otherwise.
	Message *MessagePlan

	// MapKey and MapValue are the entry fields of a map (numbers 1 and 2,
	// Cardinality Singular, Presence Implicit); nil otherwise. MapValue is
	// a leaf (Column) or struct (Message) like any field.
	MapKey, MapValue *FieldPlan

	// Oneof indexes the parent's MessagePlan.Oneofs, or -1.
	Oneof int

	// PartitionIndex indexes Plan.Partitions when this top-level field is
	// an identity partition column (it then has no data column), else -1.
	PartitionIndex int

	// DefLevel is the definition level written when the field is present:
	// for a singular leaf, its value's level; for a struct, the level its
	// absent explicit children are written with; for lists and maps, the
	// level of an empty (present, no elements) list or map.
	DefLevel int

	// NullDefLevel is the definition level of a null (absent explicit)
	// singular field: the parent's DefLevel.
	NullDefLevel int

	// ElemDefLevel is, for lists and maps, the definition level of one
	// element or entry (DefLevel+1; the element, key and value are
	// required nodes, so they do not add levels). 0 for singular fields.
	ElemDefLevel int

	// RepLevel is the repetition level of this field's elements for lists
	// and maps (the number of repeated ancestors including itself), and
	// the number of repeated ancestors for singular fields. A leaf column's
	// max repetition level is the RepLevel of its leaf field.
	RepLevel int
}

// Accepts reports whether a wire record of type t is a valid encoding of
// this field (the declared type, or BytesType for a packed repeated
// scalar). A mismatch is treated as an unknown field, as the protobuf
// runtime does.
func (f *FieldPlan) Accepts(t protowire.Type) bool {
	return t == f.WireType || (f.Packable && t == protowire.BytesType)
}

// EnumNames maps enum numbers to value names. Dense numbers (the usual
// 0..n) use a slice, the rest a map.
type EnumNames struct {
	// Desc is the enum descriptor.
	Desc protoreflect.EnumDescriptor

	dense  []string // index = number, for 0 ≤ number < len
	sparse map[protoreflect.EnumNumber]string
}

// Name returns the name of the enum value numbered n and true, or "" and
// false when the enum has no such value (write the number in decimal
// instead: strconv.AppendInt(dst, int64(n), 10)). With aliases
// (allow_alias) the first declared name wins.
func (e *EnumNames) Name(n protoreflect.EnumNumber) (string, bool) {
	if n >= 0 && int(n) < len(e.dense) {
		s := e.dense[n]
		return s, s != ""
	}
	s, ok := e.sparse[n]
	return s, ok
}

func newEnumNames(ed protoreflect.EnumDescriptor) *EnumNames {
	e := &EnumNames{Desc: ed}
	vals := ed.Values()
	maxDense := 0
	for i := range vals.Len() {
		n := vals.Get(i).Number()
		if n >= 0 && int(n) < 4*vals.Len()+16 {
			maxDense = max(maxDense, int(n)+1)
		}
	}
	e.dense = make([]string, maxDense)
	for i := range vals.Len() {
		v := vals.Get(i)
		n := v.Number()
		if n >= 0 && int(n) < maxDense {
			if e.dense[n] == "" {
				e.dense[n] = string(v.Name())
			}
			continue
		}
		if e.sparse == nil {
			e.sparse = make(map[protoreflect.EnumNumber]string)
		}
		if _, dup := e.sparse[n]; !dup {
			e.sparse[n] = string(v.Name())
		}
	}
	return e
}

// Column is one leaf column of the Parquet data files.
type Column struct {
	// Index is the column's position in Plan.Columns, which is parquet-go's
	// leaf column index for the schema in Table.Parquet.
	Index int

	// Path is the Parquet column path, e.g. ["bids", "list", "element",
	// "price_micros"] (what parquet.Schema.Lookup takes).
	Path []string

	// Node is the Parquet leaf node (its Type() gives the physical,
	// logical and converted types; use it to create column buffers).
	Node parquet.Node

	// Physical is the physical type name ("INT64", "FIXED_LEN_BYTE_ARRAY(9)",
	// …) and Logical the logical annotation ("STRING", "TIMESTAMP(MICROS,
	// UTC)", "DECIMAL(20,0)" or "").
	Physical, Logical string

	// MaxRepLevel and MaxDefLevel are the column's maximum levels.
	MaxRepLevel, MaxDefLevel int

	// Field is the plan field whose values go here (for a map key/value,
	// the MapKey/MapValue plan); nil for metadata columns.
	Field *FieldPlan
}

// KafkaColumns locates the `_kafka` metadata struct. `_kafka` is an
// optional group of four optional leaves, always written in full
// (definition level 2 for every leaf, repetition level 0).
type KafkaColumns struct {
	Topic     int // BYTE_ARRAY STRING
	Partition int // INT32
	Offset    int // INT64
	Timestamp int // INT64 TIMESTAMP(MICROS, UTC): the record's timestamp
}

// Transform is how a partition column's value derives from its source.
type Transform uint8

const (
	// Identity: the value of a top-level primitive field, as its Delta type.
	Identity Transform = iota
	// Day: the UTC date of a timestamp (Delta type date).
	Day
	// Hour: a timestamp truncated to the UTC hour (Delta type timestamp).
	Hour
)

// String returns "identity", "day" or "hour".
func (t Transform) String() string {
	switch t {
	case Identity:
		return "identity"
	case Day:
		return "day"
	case Hour:
		return "hour"
	}
	return fmt.Sprintf("Transform(%d)", uint8(t))
}

// PartitionColumn is a top-level Delta column stored in the partition path
// and in each add action's partitionValues, never in the data files.
type PartitionColumn struct {
	// Name is the Delta column name.
	Name string

	// Transform and the source: a top-level field (Field, non-nil) or the
	// Kafka record timestamp (KafkaTimestamp).
	Transform      Transform
	Field          *FieldPlan
	KafkaTimestamp bool

	// DeltaType is the column's Delta type ("string", "long", "date",
	// "timestamp", …).
	DeltaType string
}

// PutDecimal20 writes v as the 9-byte big-endian two's complement unscaled
// value of a DECIMAL(20,0) (a leading zero byte, then v big-endian) and
// returns dst[:9]. dst must have room for 9 bytes.
func PutDecimal20(dst []byte, v uint64) []byte {
	dst = dst[:9]
	dst[0] = 0
	binary.BigEndian.PutUint64(dst[1:], v)
	return dst
}
