package writer

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/protolake/protolake/schema"
)

// The decoder runs a compiled form of the schema.Plan: per message position
// an mprog with a dense field-number table and slot indexes, per field an
// fprog with the levels narrowed to bytes and the default pre-encoded in its
// wire form, so the hot loop touches no interfaces and no maps.

type fieldKind uint8

const (
	fkSkip     fieldKind = iota // known field without a column
	fkScalar                    // singular leaf read straight from the wire: last one wins
	fkMessage                   // singular message payload (struct, wrapper, Timestamp, …): occurrences merge
	fkRepeated                  // list: every occurrence is an element (or a packed run of them)
	fkMap                       // map: every occurrence is an entry
)

type mprog struct {
	plan   *schema.MessagePlan
	dense  []*fprog
	sparse map[protowire.Number]*fprog
	fields []*fprog // declaration order
	nslots int
	path   string
	first  int
	end    int
	blank  []slot // nslots empty slots, copied by pushFrame
	// byTag maps a one-byte tag (field number < 16 and wire type) to the
	// field it stores, nil for the others (skipped, unknown, another wire
	// type): scan's common case in one load.
	byTag [128]*fprog

	// direct: at most 64 fields, so a message of it can be decoded in one
	// pass (decoder.direct) with a bit per field for what it has seen.
	direct bool
	// absent: the fields direct writes when the message lacks them (all
	// but skipped ones and maps); maps: the slots of the map fields, whose
	// entries direct gathers in a frame and writes at the end.
	absent uint64
	maps   []int
}

// fprog's fields are ordered by use: what scan and emit read for every
// field of every message comes first, within the first cache line.
type fprog struct {
	kind     fieldKind
	conv     schema.Conv
	wt       protowire.Type // wire type of one value (messages: BytesType or StartGroupType)
	elemWT   protowire.Type // wire type of the leaf value inside wrappers; = wt otherwise
	packable bool
	msgLeaf  bool // a leaf whose payload is a message: wrapper, Timestamp, Duration, JSON, Raw
	presence schema.Presence
	def      uint8
	nullDef  uint8
	elemDef  uint8
	rep      uint8
	slot     int
	col      int
	bit      uint64 // 1<<slot (direct messages)
	clash    uint64 // direct: a field already seen with one of these bits makes the pass fall back
	child    *mprog // struct, repeated message element, or map entry
	peers    []int  // slots of the other members of the field's oneof
	first    int
	end      int
	defRaw   uint64 // default in wire form (varint value / fixed bits)
	defBytes []byte // default of strings and bytes
	enum     *schema.EnumNames
	p        *schema.FieldPlan
	path     string
	partIdx  int
	group    bool
	jsonKind uint8
}

const (
	jsonStruct = iota + 1
	jsonList
	jsonValue
)

type compiler struct {
	memo map[*schema.MessagePlan]*mprog
}

func compilePlan(p *schema.Plan) (*mprog, error) {
	c := &compiler{memo: map[*schema.MessagePlan]*mprog{}}
	return c.message(p.Root)
}

func (c *compiler) message(mp *schema.MessagePlan) (*mprog, error) {
	if m, ok := c.memo[mp]; ok {
		return m, nil
	}
	m := &mprog{plan: mp, path: mp.Path, first: mp.FirstColumn, end: mp.EndColumn}
	c.memo[mp] = m
	maxNum := protowire.Number(0)
	for _, f := range mp.Fields {
		fp, err := c.field(f)
		if err != nil {
			return nil, err
		}
		fp.slot = len(m.fields)
		m.fields = append(m.fields, fp)
		maxNum = max(maxNum, f.Number)
	}
	m.nslots = len(m.fields)
	m.blank = newBlank(m.nslots)
	m.setTags()
	if maxNum <= 1024 {
		m.dense = make([]*fprog, maxNum+1)
		for _, f := range m.fields {
			m.dense[f.p.Number] = f
		}
	} else {
		m.sparse = map[protowire.Number]*fprog{}
		for _, f := range m.fields {
			m.sparse[f.p.Number] = f
		}
	}
	for _, members := range mp.Oneofs {
		for _, a := range members {
			fa := m.fields[a.Index]
			for _, b := range members {
				if a != b {
					fa.peers = append(fa.peers, m.fields[b.Index].slot)
				}
			}
		}
	}
	if m.direct = len(m.fields) <= 64; m.direct {
		for _, f := range m.fields {
			f.bit = 1 << f.slot
			switch f.kind {
			case fkSkip:
			case fkMap:
				m.maps = append(m.maps, f.slot)
			case fkRepeated:
				m.absent |= f.bit
			default: // singular: seen again, it merges or replaces
				m.absent |= f.bit
				f.clash = f.bit
				for _, p := range f.peers {
					f.clash |= 1 << p
				}
			}
		}
	}
	return m, nil
}

func newBlank(n int) []slot {
	b := make([]slot, n)
	for i := range b {
		b[i] = slot{head: -1, tail: -1}
	}
	return b
}

// entry builds the two-field program of a map entry.
func (c *compiler) entry(f *schema.FieldPlan) (*mprog, error) {
	m := &mprog{path: f.Path, first: f.FirstColumn, end: f.EndColumn}
	k, err := c.field(f.MapKey)
	if err != nil {
		return nil, err
	}
	v, err := c.field(f.MapValue)
	if err != nil {
		return nil, err
	}
	k.slot, v.slot = 0, 1
	m.fields = []*fprog{k, v}
	m.nslots = 2
	m.blank = newBlank(2)
	m.dense = []*fprog{nil, k, v}
	m.setTags()
	return m, nil
}

// setTags fills byTag from the fields.
func (m *mprog) setTags() {
	for _, f := range m.fields {
		if num := f.p.Number; num < 16 && f.kind != fkSkip {
			m.byTag[byte(num)<<3|byte(f.wt)] = f
			if f.packable {
				m.byTag[byte(num)<<3|byte(protowire.BytesType)] = f
			}
		}
	}
}

func level(n int, what, path string) (uint8, error) {
	if n < 0 || n > 100 {
		return 0, fmt.Errorf("field %s: %s level %d is out of range", path, what, n)
	}
	return uint8(n), nil
}

func (c *compiler) field(f *schema.FieldPlan) (*fprog, error) {
	fp := &fprog{
		p: f, conv: f.Conv, wt: f.WireType, elemWT: f.WireType, packable: f.Packable,
		col: f.Column, first: f.FirstColumn, end: f.EndColumn, presence: f.Presence,
		enum: f.Enum, path: f.Path, partIdx: f.PartitionIndex, group: f.WireType == protowire.StartGroupType,
	}
	var err error
	if fp.def, err = level(f.DefLevel, "definition", f.Path); err != nil {
		return nil, err
	}
	if fp.nullDef, err = level(f.NullDefLevel, "definition", f.Path); err != nil {
		return nil, err
	}
	if fp.elemDef, err = level(f.ElemDefLevel, "definition", f.Path); err != nil {
		return nil, err
	}
	if fp.rep, err = level(f.RepLevel, "repetition", f.Path); err != nil {
		return nil, err
	}
	switch f.Conv {
	case schema.ConvTimestamp, schema.ConvDuration, schema.ConvJSON, schema.ConvRaw:
		fp.msgLeaf = true
	}
	if f.Conv == schema.ConvJSON && f.Desc.Message() != nil {
		switch f.Desc.Message().FullName() {
		case "google.protobuf.Struct":
			fp.jsonKind = jsonStruct
		case "google.protobuf.ListValue":
			fp.jsonKind = jsonList
		case "google.protobuf.Value":
			fp.jsonKind = jsonValue
		}
	}
	if f.Wrapper {
		fp.msgLeaf = true
		fp.elemWT = convWireType(f.Conv)
	}
	switch {
	case f.Conv == schema.ConvSkip:
		fp.kind = fkSkip
	case f.Cardinality == schema.Map:
		fp.kind = fkMap
		if fp.child, err = c.entry(f); err != nil {
			return nil, err
		}
	case f.Cardinality == schema.Repeated:
		fp.kind = fkRepeated
	case f.Conv == schema.ConvNone || fp.msgLeaf:
		fp.kind = fkMessage
	default:
		fp.kind = fkScalar
	}
	if f.Conv == schema.ConvNone && f.Message != nil {
		if fp.child, err = c.message(f.Message); err != nil {
			return nil, err
		}
	}
	if f.Conv.IsLeaf() && !fp.msgLeaf && f.Default.IsValid() {
		fp.defRaw, fp.defBytes = wireDefault(f.Conv, f.Default)
	}
	if f.Conv.IsLeaf() && f.Column < 0 && f.PartitionIndex < 0 {
		return nil, fmt.Errorf("field %s: leaf without a column", f.Path)
	}
	return fp, nil
}

// convWireType is the wire type of a wrapper's value field.
func convWireType(c schema.Conv) protowire.Type {
	switch c {
	case schema.ConvFixed32, schema.ConvSfixed32, schema.ConvFloat:
		return protowire.Fixed32Type
	case schema.ConvFixed64Decimal, schema.ConvFixed64Long, schema.ConvSfixed64, schema.ConvDouble:
		return protowire.Fixed64Type
	case schema.ConvString, schema.ConvBytes:
		return protowire.BytesType
	}
	return protowire.VarintType
}

// wireDefault encodes a default value the way it would arrive on the wire.
func wireDefault(c schema.Conv, v protoreflect.Value) (uint64, []byte) {
	switch x := v.Interface().(type) {
	case int32:
		if c == schema.ConvSint32 {
			return protowire.EncodeZigZag(int64(x)), nil
		}
		return uint64(int64(x)), nil
	case int64:
		if c == schema.ConvSint64 {
			return protowire.EncodeZigZag(x), nil
		}
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case uint64:
		return x, nil
	case float32:
		return uint64(math.Float32bits(x)), nil
	case float64:
		return math.Float64bits(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		return 0, []byte(x)
	case []byte:
		return 0, x
	case protoreflect.EnumNumber:
		return uint64(int64(x)), nil
	}
	return 0, nil
}
