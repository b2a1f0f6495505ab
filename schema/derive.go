package schema

import (
	"fmt"
	"github.com/protolake/protolake/internal/suggest"
	"strings"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Table is the table schema derived from one protobuf message: the Delta
// schema, the Parquet schema of the data files and the shredding plan, which
// always agree with each other.
type Table struct {
	// Message is the message the table stores, one row per message.
	Message protoreflect.MessageDescriptor

	// Options are the options the table was derived with.
	Options Options

	// Schema is the Delta table schema (metaData.schemaString is
	// Schema.MarshalJSON, see SchemaString). It includes partition columns
	// and, after Diff, columns kept from earlier versions that the current
	// descriptor no longer writes.
	Schema *StructType

	// Parquet is the schema of the data files: Schema minus the partition
	// columns (Delta stores those only in the path and partitionValues) and
	// minus kept columns no longer written.
	Parquet *parquet.Schema

	// Plan is the shredding plan for Parquet.
	Plan *Plan

	// PartitionColumns are the Delta partitionColumns, in order.
	PartitionColumns []string

	// Warnings list the fields dropped or changed on the way (empty
	// messages), in column order.
	Warnings []Warning

	// structMsg and fieldDesc map Delta nodes back to their descriptors
	// (for Diff).
	structMsg map[*StructType]protoreflect.MessageDescriptor
	fieldDesc map[*StructField]protoreflect.FieldDescriptor
}

// SchemaString returns the Delta metaData.schemaString: compact Spark
// StructType JSON.
func (t *Table) SchemaString() string {
	b, err := t.Schema.MarshalJSON()
	if err != nil {
		// Only metadata values we put there ourselves are marshalled.
		return ""
	}
	return string(b)
}

// Limits that keep a derived schema within what Parquet and readers handle.
const (
	// MaxColumns is the largest number of leaf columns a table may have.
	MaxColumns = 10000
	// maxLevel is the deepest definition level parquet-go supports.
	maxLevel = 250
)

// Metadata column names.
const (
	KafkaColumn   = "_kafka"
	UnknownColumn = "_unknown"
)

// Derive computes the table schema of message md.
func Derive(md protoreflect.MessageDescriptor, opts Options) (*Table, error) {
	return derive(md, opts, nil)
}

func derive(md protoreflect.MessageDescriptor, opts Options, prior *StructType) (*Table, error) {
	if md == nil {
		return nil, fmt.Errorf("derive table schema: no message descriptor")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if md.IsMapEntry() {
		return nil, fmt.Errorf("message %s is a map entry type, not a message a topic can carry; pick the message that declares the map", md.FullName())
	}
	b := &builder{
		opts:      opts,
		root:      md,
		structMsg: map[*StructType]protoreflect.MessageDescriptor{},
		fieldDesc: map[*StructField]protoreflect.FieldDescriptor{},
		partition: map[protoreflect.FieldNumber]int{},
	}
	plan := &Plan{Message: md, Unknown: -1}

	// Partition specs first: identity fields get no data column.
	specs := make([]partitionSpec, len(opts.Partitions))
	for i, p := range opts.Partitions {
		spec, err := parsePartition(p)
		if err != nil {
			return nil, err
		}
		specs[i] = spec
		if spec.transform == Identity {
			fd := md.Fields().ByName(protoreflect.Name(spec.source))
			if fd == nil {
				return nil, &PartitionError{Spec: p, Reason: fmt.Sprintf("message %s has no top-level field %q%s", md.FullName(), spec.source, suggestField(md, spec.source))}
			}
			if spec.name != spec.source {
				return nil, &PartitionError{Spec: p, Reason: "an identity partition column is the field's own column and keeps its name; drop the NAME= part"}
			}
			b.partition[fd.Number()] = i
		}
	}

	b.stack = append(b.stack, frame{md: md})
	rootStruct, rootNode, rootPlan, err := b.message(md, "", nil, 0, 0, prior, true)
	if err != nil {
		return nil, err
	}
	plan.Root = rootPlan
	top := rootNode
	for _, f := range rootStruct.Fields {
		if path, depth := deepest(f.Type, f.Name); depth > MaxTypeDepth {
			return nil, &TypeDepthError{Message: string(md.FullName()), Path: path, Depth: depth}
		}
	}
	if len(rootStruct.Fields) == 0 {
		return nil, fmt.Errorf("message %s has no fields that map to columns (%s); a table needs at least one; pick another message", md.FullName(), warningList(b.warnings))
	}

	origins := map[string]string{}
	for _, f := range rootStruct.Fields {
		origins[strings.ToLower(f.Name)] = f.Name + "\x00" + originOf(f)
	}
	claim := func(name, origin string) error {
		if err := checkName(name, name); err != nil {
			return err
		}
		if prev, ok := origins[strings.ToLower(name)]; ok {
			prevName, prevOrigin, _ := strings.Cut(prev, "\x00")
			return &CollisionError{Names: [2]string{prevName, name}, Origins: [2]string{prevOrigin, origin}}
		}
		origins[strings.ToLower(name)] = name + "\x00" + origin
		return nil
	}

	// Metadata columns.
	if !opts.NoKafkaMeta {
		if err := claim(KafkaColumn, "metadata column"); err != nil {
			return nil, err
		}
		k := &KafkaColumns{}
		kinds := []struct {
			name  string
			dt    PrimitiveType
			node  parquet.Node
			index *int
		}{
			{"topic", TypeString, parquet.String(), &k.Topic},
			{"partition", TypeInteger, parquet.Leaf(parquet.Int32Type), &k.Partition},
			{"offset", TypeLong, parquet.Leaf(parquet.Int64Type), &k.Offset},
			{"timestamp", TypeTimestamp, parquet.Timestamp(parquet.Microsecond), &k.Timestamp},
		}
		st := &StructType{}
		var children []namedNode
		for _, c := range kinds {
			st.Fields = append(st.Fields, &StructField{Name: c.name, Type: c.dt, Nullable: true, Metadata: map[string]any{}})
			children = append(children, namedNode{c.name, parquet.Optional(c.node)})
			*c.index = b.addColumn([]string{KafkaColumn, c.name}, c.node, 0, 2, nil)
		}
		rootStruct.Fields = append(rootStruct.Fields, &StructField{Name: KafkaColumn, Type: st, Nullable: true, Metadata: map[string]any{MetaColumn: "kafka"}})
		top = append(top, namedNode{KafkaColumn, parquet.Optional(newOrderedGroup(children))})
		plan.Kafka = k
	}
	if !opts.NoUnknown {
		if err := claim(UnknownColumn, "metadata column"); err != nil {
			return nil, err
		}
		leaf := parquet.Leaf(parquet.ByteArrayType)
		node := parquet.Optional(leaf)
		plan.Unknown = b.addColumn([]string{UnknownColumn}, leaf, 0, 1, nil)
		rootStruct.Fields = append(rootStruct.Fields, &StructField{Name: UnknownColumn, Type: TypeBinary, Nullable: true, Metadata: map[string]any{MetaColumn: "unknown"}})
		top = append(top, namedNode{UnknownColumn, node})
	}

	// Partition columns.
	t := &Table{Message: md, Options: opts}
	for _, spec := range specs {
		pc := &PartitionColumn{Name: spec.name, Transform: spec.transform}
		if spec.transform == Identity {
			fp := rootPlan.Field(protowire.Number(md.Fields().ByName(protoreflect.Name(spec.source)).Number()))
			if err := identityPartitionOK(fp); err != nil {
				return nil, &PartitionError{Spec: spec.raw, Reason: err.Error()}
			}
			pc.Field = fp
			sf := rootStruct.Field(fp.Name)
			pc.DeltaType = sf.Type.String()
			sf.Metadata[MetaPartition] = "identity(" + spec.source + ")"
			pc.Name = fp.Name
		} else {
			if spec.source == kafkaTimestampSource {
				pc.KafkaTimestamp = true
			} else {
				fd := md.Fields().ByName(protoreflect.Name(spec.source))
				if fd == nil {
					return nil, &PartitionError{Spec: spec.raw, Reason: fmt.Sprintf("message %s has no top-level field %q%s", md.FullName(), spec.source, suggestField(md, spec.source))}
				}
				fp := rootPlan.Field(protowire.Number(fd.Number()))
				if fp == nil || fp.Conv != ConvTimestamp || fp.Cardinality != Singular {
					return nil, &PartitionError{Spec: spec.raw, Reason: fmt.Sprintf("%s(…) needs a singular google.protobuf.Timestamp field; %s is %s", spec.transform, spec.source, protoType(fd))}
				}
				pc.Field = fp
			}
			dt := TypeDate
			if spec.transform == Hour {
				dt = TypeTimestamp
			}
			pc.DeltaType = string(dt)
			if err := claim(spec.name, "partition column"); err != nil {
				return nil, err
			}
			expr := spec.transform.String() + "(" + spec.source + ")"
			rootStruct.Fields = append(rootStruct.Fields, &StructField{Name: spec.name, Type: dt, Nullable: true, Metadata: map[string]any{MetaPartition: expr}})
		}
		plan.Partitions = append(plan.Partitions, pc)
		t.PartitionColumns = append(t.PartitionColumns, pc.Name)
	}

	// Columns kept from the table's earlier versions (top level, not
	// proto fields: e.g. a metadata column turned off).
	if prior != nil {
		for _, pf := range prior.Fields {
			if pf.FieldNumber() != 0 || rootStruct.Field(pf.Name) != nil {
				continue
			}
			if pf.metaString(MetaPartition) != "" {
				continue // partitioning changes are Diff's business
			}
			if err := claim(pf.Name, "column kept from the table"); err != nil {
				return nil, err
			}
			rootStruct.Fields = append(rootStruct.Fields, pf)
		}
	}

	if len(top) == 0 {
		return nil, fmt.Errorf("message %s has no fields that map to data columns, and the metadata columns are off; a data file needs at least one column", md.FullName())
	}
	root := newOrderedGroup(top)
	sch := parquet.NewSchema(string(md.FullName()), root)
	// The plan's column numbering must be parquet-go's; check once here so a
	// mismatch is an error, not corrupt files.
	cols := sch.Columns()
	if len(cols) != len(b.columns) {
		return nil, fmt.Errorf("internal error: plan has %d columns, Parquet schema %d", len(b.columns), len(cols))
	}
	for i, c := range cols {
		if strings.Join(c, ".") != strings.Join(b.columns[i].Path, ".") {
			return nil, fmt.Errorf("internal error: column %d is %v in the plan, %v in the Parquet schema", i, b.columns[i].Path, c)
		}
	}
	plan.Columns = b.columns
	t.Schema = rootStruct
	t.Parquet = sch
	t.Plan = plan
	t.Warnings = b.warnings
	t.structMsg = b.structMsg
	t.fieldDesc = b.fieldDesc
	return t, nil
}

func warningList(ws []Warning) string {
	if len(ws) == 0 {
		return "it declares no fields"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}

func originOf(f *StructField) string {
	if n := f.FieldNumber(); n != 0 {
		return fmt.Sprintf("field %d", n)
	}
	return "column kept from the table"
}

func identityPartitionOK(fp *FieldPlan) error {
	if fp == nil || fp.Conv == ConvSkip {
		return fmt.Errorf("the field has no column (an empty message)")
	}
	if fp.Cardinality != Singular {
		return fmt.Errorf("field %s is %s; a partition column holds one primitive value per row", fp.Name, fp.Cardinality)
	}
	switch fp.Conv {
	case ConvInt32, ConvInt64, ConvUint32, ConvUint64Decimal, ConvUint64Long, ConvSint32, ConvSint64,
		ConvFixed32, ConvFixed64Decimal, ConvFixed64Long, ConvSfixed32, ConvSfixed64,
		ConvBool, ConvString, ConvEnumString, ConvEnumInt:
		return nil
	case ConvTimestamp:
		return fmt.Errorf("field %s is a Timestamp; partition by day(%s) or hour(%s) instead", fp.Name, fp.Name, fp.Name)
	}
	return fmt.Errorf("field %s (%s) cannot be a partition column; use an integer, string, bool or enum field", fp.Name, fp.Desc.Kind())
}

type frame struct {
	md    protoreflect.MessageDescriptor
	field string // the field through which the path leaves this message
}

type builder struct {
	opts      Options
	root      protoreflect.MessageDescriptor
	stack     []frame
	columns   []*Column
	warnings  []Warning
	nodes     int
	structMsg map[*StructType]protoreflect.MessageDescriptor
	fieldDesc map[*StructField]protoreflect.FieldDescriptor
	partition map[protoreflect.FieldNumber]int // identity partition fields → spec index
}

// addColumn registers a leaf column and returns its index.
func (b *builder) addColumn(path []string, node parquet.Node, rep, def int, fp *FieldPlan) int {
	typ := node.Type()
	physical := typ.Kind().String()
	if typ.Kind() == parquet.FixedLenByteArray {
		physical = fmt.Sprintf("FIXED_LEN_BYTE_ARRAY(%d)", typ.Length())
	}
	logical := ""
	if lt := typ.LogicalType(); lt != nil {
		logical = lt.String()
	}
	c := &Column{
		Index:       len(b.columns),
		Path:        append([]string(nil), path...),
		Node:        node,
		Physical:    physical,
		Logical:     logical,
		MaxRepLevel: rep,
		MaxDefLevel: def,
		Field:       fp,
	}
	b.columns = append(b.columns, c)
	return c.Index
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// message builds the struct for md at one position. def is the definition
// level reached when the message is present, rep its repetition level. It
// returns a nil plan when the message has no columns.
func (b *builder) message(md protoreflect.MessageDescriptor, path string, colPath []string, def, rep int, prior *StructType, top bool) (*StructType, []namedNode, *MessagePlan, error) {
	if def > maxLevel {
		return nil, nil, nil, fmt.Errorf("field path %s of %s nests deeper than Parquet allows (%d levels); lower max_recursion_depth", path, b.root.FullName(), maxLevel)
	}
	st := &StructType{}
	b.structMsg[st] = md
	mp := &MessagePlan{Desc: md, Path: path, DefLevel: def, RepLevel: rep, FirstColumn: len(b.columns)}
	var children []namedNode
	origins := map[string]string{}
	oneofIndex := map[protoreflect.FullName]int{}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		b.nodes++
		if b.nodes > 100*MaxColumns || len(b.columns) > MaxColumns {
			return nil, nil, nil, fmt.Errorf("message %s has more than %d columns (at %s); lower max_recursion_depth or split the message", b.root.FullName(), MaxColumns, path)
		}
		name := string(fd.Name())
		var priorField *StructField
		if prior != nil {
			for _, pf := range prior.Fields {
				if pf.FieldNumber() == int(fd.Number()) {
					priorField = pf
					name = pf.Name
					break
				}
			}
		}
		fpath := joinPath(path, name)
		if err := checkName(fpath, name); err != nil {
			return nil, nil, nil, err
		}
		fp := &FieldPlan{
			Desc:           fd,
			Number:         protowire.Number(fd.Number()),
			Name:           name,
			Path:           fpath,
			Index:          len(mp.Fields),
			Kind:           fd.Kind(),
			Oneof:          -1,
			PartitionIndex: -1,
			Column:         -1,
			FirstColumn:    len(b.columns),
			NullDefLevel:   def,
			DefLevel:       def + 1,
			RepLevel:       rep,
		}
		if top {
			if pi, ok := b.partition[fd.Number()]; ok {
				fp.PartitionIndex = pi
			}
		}
		sf, node, err := b.field(fp, fd, with(colPath, name), def, rep, priorField)
		if err != nil {
			return nil, nil, nil, err
		}
		fp.EndColumn = len(b.columns)
		mp.Fields = append(mp.Fields, fp)
		if sf == nil {
			b.columns = b.columns[:fp.FirstColumn]
			fp.EndColumn = fp.FirstColumn
			fp.Conv = ConvSkip
			fp.Column = -1
			fp.Message, fp.MapKey, fp.MapValue = nil, nil, nil
			continue
		}
		if prev, ok := origins[strings.ToLower(name)]; ok {
			prevName, prevOrigin, _ := strings.Cut(prev, "\x00")
			return nil, nil, nil, &CollisionError{Struct: structLabel(md, path), Names: [2]string{prevName, name},
				Origins: [2]string{prevOrigin, fmt.Sprintf("field %d", fd.Number())}}
		}
		origins[strings.ToLower(name)] = name + "\x00" + fmt.Sprintf("field %d", fd.Number())
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			idx, ok := oneofIndex[od.FullName()]
			if !ok {
				idx = len(mp.Oneofs)
				oneofIndex[od.FullName()] = idx
				mp.Oneofs = append(mp.Oneofs, nil)
			}
			fp.Oneof = idx
			mp.Oneofs[idx] = append(mp.Oneofs[idx], fp)
		}
		st.Fields = append(st.Fields, sf)
		b.fieldDesc[sf] = fd
		if node != nil {
			children = append(children, namedNode{name, node})
		}
	}
	// Columns of earlier versions whose field is gone (its number reserved):
	// kept in the Delta schema, no longer written.
	if prior != nil {
		for _, pf := range prior.Fields {
			n := pf.FieldNumber()
			if n == 0 || st.Field(pf.Name) != nil {
				continue
			}
			if fd := fields.ByNumber(protoreflect.FieldNumber(n)); fd != nil {
				if fp := mp.Field(protowire.Number(n)); fp != nil && fp.Conv != ConvSkip {
					continue
				}
			}
			if prev, ok := origins[strings.ToLower(pf.Name)]; ok {
				prevName, prevOrigin, _ := strings.Cut(prev, "\x00")
				return nil, nil, nil, &CollisionError{Struct: structLabel(md, path), Names: [2]string{prevName, pf.Name},
					Origins: [2]string{prevOrigin, fmt.Sprintf("column of removed field %d, kept from the table", n)}}
			}
			origins[strings.ToLower(pf.Name)] = pf.Name + "\x00kept"
			st.Fields = append(st.Fields, pf)
		}
	}
	mp.EndColumn = len(b.columns)
	mp.index()
	if len(children) == 0 && !top {
		return st, nil, nil, nil
	}
	return st, children, mp, nil
}

func structLabel(md protoreflect.MessageDescriptor, path string) string {
	if path == "" {
		return string(md.FullName())
	}
	return path + " (" + string(md.FullName()) + ")"
}

// field builds one field of a message: its Delta field and its Parquet node
// (nil for an identity partition field). A nil StructField means the field
// was dropped.
func (b *builder) field(fp *FieldPlan, fd protoreflect.FieldDescriptor, colPath []string, def, rep int, prior *StructField) (*StructField, parquet.Node, error) {
	meta := map[string]any{MetaFieldNumber: int64(fd.Number()), MetaType: protoType(fd)}
	var priorType DataType
	if prior != nil {
		priorType = prior.Type
	}
	var dt DataType
	var node parquet.Node
	switch {
	case fd.IsMap():
		fp.Cardinality = Map
		fp.Kind = protoreflect.MessageKind
		fp.WireType = protowire.BytesType
		fp.Presence = Implicit
		fp.ElemDefLevel = def + 2
		fp.RepLevel = rep + 1
		var priorValue *StructType
		if mt, ok := priorType.(*MapType); ok {
			priorValue, _ = mt.ValueType.(*StructType)
		}
		key := b.entryField(fd.MapKey(), fp.Path+"{}.key", def+2, rep+1)
		kv, knode, _, err := b.value(key, fd.MapKey(), with(colPath, "key_value", "key"), def+2, rep+1, nil)
		if err != nil {
			return nil, nil, err
		}
		val := b.entryField(fd.MapValue(), fp.Path+"{}.value", def+2, rep+1)
		vv, vnode, extra, err := b.value(val, fd.MapValue(), with(colPath, "key_value", "value"), def+2, rep+1, priorValue)
		if err != nil {
			return nil, nil, err
		}
		if vv == nil {
			b.warn(fp.Path, fmt.Sprintf("map value %s has no fields, so the map has no value to store; the field is dropped", fd.MapValue().Message().FullName()))
			return nil, nil, nil
		}
		fp.MapKey, fp.MapValue = key, val
		maps(meta, extra)
		dt = &MapType{KeyType: kv, ValueType: vv, ValueContainsNull: false}
		node = parquet.Optional(parquet.Map(knode, parquet.Required(vnode)))
	case fd.IsList():
		fp.Cardinality = Repeated
		fp.Presence = Implicit
		fp.ElemDefLevel = def + 2
		fp.RepLevel = rep + 1
		var priorElem *StructType
		if at, ok := priorType.(*ArrayType); ok {
			priorElem, _ = at.ElementType.(*StructType)
		}
		elemPath := fp.Path + "[]"
		saved := fp.Path
		fp.Path = elemPath
		ev, enode, extra, err := b.value(fp, fd, with(colPath, "list", "element"), def+2, rep+1, priorElem)
		fp.Path = saved
		if err != nil {
			return nil, nil, err
		}
		if ev == nil {
			return nil, nil, nil
		}
		maps(meta, extra)
		dt = &ArrayType{ElementType: ev, ContainsNull: false}
		node = parquet.Optional(parquet.List(parquet.Required(enode)))
		fp.Packable = isPackable(fd.Kind())
	default:
		fp.Cardinality = Singular
		switch {
		case fd.Cardinality() == protoreflect.Required:
			fp.Presence = Required
		case fd.HasPresence():
			fp.Presence = Explicit
		default:
			fp.Presence = Implicit
		}
		var priorStruct *StructType
		if s, ok := priorType.(*StructType); ok {
			priorStruct = s
		}
		v, vnode, extra, err := b.value(fp, fd, colPath, def+1, rep, priorStruct)
		if err != nil {
			return nil, nil, err
		}
		if v == nil {
			return nil, nil, nil
		}
		maps(meta, extra)
		dt = v
		node = parquet.Optional(vnode)
	}
	if fp.PartitionIndex >= 0 {
		// Delta keeps partition values in the path, not in the files: the
		// field has no column in the Parquet schema (the leaf was not
		// added), its value goes to partitionValues.
		node = nil
	}
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind && !fd.IsList() && !fd.IsMap() {
		fp.Default = fd.Default()
	}
	if node != nil {
		node = parquet.FieldID(node, int(fd.Number()))
	}
	return &StructField{Name: fp.Name, Type: dt, Nullable: true, Metadata: meta}, node, nil
}

// with returns a new path: p followed by elems.
func with(p []string, elems ...string) []string {
	return append(append(make([]string, 0, len(p)+len(elems)), p...), elems...)
}

func maps(dst, src map[string]any) {
	for k, v := range src {
		dst[k] = v
	}
}

// entryField is the plan of a map entry's key or value.
func (b *builder) entryField(fd protoreflect.FieldDescriptor, path string, def, rep int) *FieldPlan {
	fp := &FieldPlan{
		Desc:           fd,
		Number:         protowire.Number(fd.Number()),
		Name:           string(fd.Name()),
		Path:           path,
		Index:          int(fd.Number()) - 1,
		Kind:           fd.Kind(),
		Cardinality:    Singular,
		Presence:       Implicit,
		Oneof:          -1,
		PartitionIndex: -1,
		Column:         -1,
		FirstColumn:    len(b.columns),
		DefLevel:       def,
		NullDefLevel:   def,
		RepLevel:       rep,
	}
	if fd.Kind() != protoreflect.MessageKind {
		fp.Default = fd.Default()
	}
	return fp
}

func isPackable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

func wireTypeOf(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.VarintType
}

// scalar maps a scalar kind to its conversion, Delta type and Parquet node.
func (b *builder) scalar(k protoreflect.Kind) (Conv, PrimitiveType, parquet.Node, map[string]any) {
	i32 := parquet.Leaf(parquet.Int32Type)
	i64 := parquet.Leaf(parquet.Int64Type)
	dec := parquet.Decimal(0, 20, parquet.FixedLenByteArrayType(9))
	long := b.opts.uint64() == Uint64Long
	bits := map[string]any{MetaEncoding: "uint64 bits"}
	switch k {
	case protoreflect.Int32Kind:
		return ConvInt32, TypeInteger, i32, nil
	case protoreflect.Sint32Kind:
		return ConvSint32, TypeInteger, i32, nil
	case protoreflect.Sfixed32Kind:
		return ConvSfixed32, TypeInteger, i32, nil
	case protoreflect.Int64Kind:
		return ConvInt64, TypeLong, i64, nil
	case protoreflect.Sint64Kind:
		return ConvSint64, TypeLong, i64, nil
	case protoreflect.Sfixed64Kind:
		return ConvSfixed64, TypeLong, i64, nil
	case protoreflect.Uint32Kind:
		return ConvUint32, TypeLong, i64, nil
	case protoreflect.Fixed32Kind:
		return ConvFixed32, TypeLong, i64, nil
	case protoreflect.Uint64Kind:
		if long {
			return ConvUint64Long, TypeLong, i64, bits
		}
		return ConvUint64Decimal, TypeDecimal20, dec, nil
	case protoreflect.Fixed64Kind:
		if long {
			return ConvFixed64Long, TypeLong, i64, bits
		}
		return ConvFixed64Decimal, TypeDecimal20, dec, nil
	case protoreflect.FloatKind:
		return ConvFloat, TypeFloat, parquet.Leaf(parquet.FloatType), nil
	case protoreflect.DoubleKind:
		return ConvDouble, TypeDouble, parquet.Leaf(parquet.DoubleType), nil
	case protoreflect.BoolKind:
		return ConvBool, TypeBoolean, parquet.Leaf(parquet.BooleanType), nil
	case protoreflect.StringKind:
		return ConvString, TypeString, parquet.String(), nil
	case protoreflect.BytesKind:
		return ConvBytes, TypeBinary, parquet.Leaf(parquet.ByteArrayType), nil
	}
	return ConvNone, "", nil, nil
}

// value builds the value of a field (the element of a list, a map key or
// value): its Delta type and its required Parquet node. def is the level
// of a present value, rep its repetition level. A nil DataType means the
// value has no columns (empty message): the caller drops the field.
func (b *builder) value(fp *FieldPlan, fd protoreflect.FieldDescriptor, colPath []string, def, rep int, prior *StructType) (DataType, parquet.Node, map[string]any, error) {
	fp.Kind = fd.Kind()
	fp.WireType = wireTypeOf(fd.Kind())
	leaf := func(c Conv, dt DataType, n parquet.Node, meta map[string]any) (DataType, parquet.Node, map[string]any, error) {
		fp.Conv = c
		if fp.PartitionIndex < 0 {
			fp.Column = b.addColumn(colPath, n, rep, def, fp)
		}
		return dt, n, meta, nil
	}
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if b.opts.enums() == EnumInt {
			return leaf(ConvEnumInt, TypeInteger, parquet.Leaf(parquet.Int32Type), map[string]any{MetaEncoding: "enum number"})
		}
		fp.Enum = newEnumNames(fd.Enum())
		return leaf(ConvEnumString, TypeString, parquet.String(), nil)
	case protoreflect.MessageKind, protoreflect.GroupKind:
	default:
		c, dt, n, meta := b.scalar(fd.Kind())
		return leaf(c, dt, n, meta)
	}

	md := fd.Message()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return leaf(ConvTimestamp, TypeTimestamp, parquet.Timestamp(parquet.Microsecond), nil)
	case "google.protobuf.Duration":
		return leaf(ConvDuration, TypeLong, parquet.Leaf(parquet.Int64Type), map[string]any{MetaUnit: "microseconds"})
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return leaf(ConvJSON, TypeString, parquet.String(), map[string]any{MetaEncoding: "protojson"})
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		inner := md.Fields().ByNumber(1)
		if inner != nil && inner.Cardinality() != protoreflect.Repeated {
			c, dt, n, meta := b.scalar(inner.Kind())
			if c != ConvNone {
				fp.Wrapper = true
				return leaf(c, dt, n, meta)
			}
		}
	}

	// Recursion: count md on the path.
	count := 0
	first := -1
	for i, f := range b.stack {
		if f.md.FullName() == md.FullName() {
			count++
			if first < 0 {
				first = i
			}
		}
	}
	if count > 0 {
		if b.opts.MaxRecursionDepth == 0 {
			var cycle []string
			for _, f := range b.stack[first : len(b.stack)-1] {
				cycle = append(cycle, string(f.md.FullName())+"."+f.field)
			}
			last := b.stack[len(b.stack)-1]
			cycle = append(cycle, string(last.md.FullName())+"."+fieldName(fd), string(md.FullName()))
			return nil, nil, nil, &RecursionError{Message: string(b.root.FullName()), Cycle: cycle, Path: fp.Path}
		}
		if count > b.opts.MaxRecursionDepth {
			return leaf(ConvRaw, TypeBinary, parquet.Leaf(parquet.ByteArrayType), map[string]any{MetaEncoding: "protobuf"})
		}
	}

	b.stack[len(b.stack)-1].field = fieldName(fd)
	b.stack = append(b.stack, frame{md: md})
	st, children, mp, err := b.message(md, fp.Path, colPath, def, rep, prior, false)
	b.stack = b.stack[:len(b.stack)-1]
	if err != nil {
		return nil, nil, nil, err
	}
	if mp == nil {
		what := "has no fields"
		if md.Fields().Len() > 0 {
			what = "has no fields that map to columns"
		}
		b.warn(fp.Path, fmt.Sprintf("message %s %s; Parquet forbids empty groups, so the field is dropped", md.FullName(), what))
		return nil, nil, nil, nil
	}
	fp.Conv = ConvNone
	fp.Message = mp
	return st, newOrderedGroup(children), nil, nil
}

// deepest returns the nesting depth of dt (0 for a primitive) and the path
// of its deepest part.
func deepest(dt DataType, path string) (string, int) {
	best, depth := path, 0
	consider := func(child DataType, p string) {
		if cp, d := deepest(child, p); d+1 > depth {
			best, depth = cp, d+1
		}
	}
	switch t := dt.(type) {
	case *StructType:
		for _, f := range t.Fields {
			consider(f.Type, path+"."+f.Name)
		}
	case *ArrayType:
		consider(t.ElementType, path+"[]")
	case *MapType:
		consider(t.KeyType, path+"{key}")
		consider(t.ValueType, path+"{}")
	}
	return best, depth
}

// fieldName names fd in a cycle path: a map value is named after its map
// field, not the entry's "value".
func fieldName(fd protoreflect.FieldDescriptor) string {
	if cm := fd.ContainingMessage(); cm != nil && cm.IsMapEntry() {
		if parent, ok := cm.Parent().(protoreflect.MessageDescriptor); ok {
			fields := parent.Fields()
			for i := range fields.Len() {
				if f := fields.Get(i); f.IsMap() && f.MapValue() == fd {
					return string(f.Name())
				}
			}
		}
	}
	return string(fd.Name())
}

func (b *builder) warn(path, msg string) {
	b.warnings = append(b.warnings, Warning{Path: path, Message: msg})
}

// protoType is the MetaType of a field: its type as declared.
func protoType(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "map<" + baseType(fd.MapKey()) + ", " + baseType(fd.MapValue()) + ">"
	}
	if fd.IsList() {
		return "repeated " + baseType(fd)
	}
	return baseType(fd)
}

func baseType(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	case protoreflect.MessageKind:
		return "message " + string(fd.Message().FullName())
	case protoreflect.GroupKind:
		return "group " + string(fd.Message().FullName())
	}
	return fd.Kind().String()
}

// suggestField returns " (did you mean …?)" for a mistyped field name.
func suggestField(md protoreflect.MessageDescriptor, name string) string {
	var names []string
	for i := range md.Fields().Len() {
		names = append(names, string(md.Fields().Get(i).Name()))
	}
	c := suggest.Closest(name, names, 3)
	if len(c) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(c, ", ") + "?"
}
