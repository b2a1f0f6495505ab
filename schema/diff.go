package schema

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Evolution is the outcome of comparing a table's schema with a new proto
// version.
type Evolution struct {
	// Merged is the table schema to commit with the new version: the new
	// descriptor's columns, with each column matched to the table's by
	// field number (a renamed field keeps its column name), plus the
	// table's columns the new version no longer writes (removed fields
	// whose number is reserved, metadata columns turned off), which read
	// as null in new files. Nil when a change is breaking.
	Merged *Table

	// Changes lists every difference, compatible and breaking, in column
	// order.
	Changes []Change
}

// Breaking returns the breaking changes.
func (e *Evolution) Breaking() []Change {
	var out []Change
	for _, c := range e.Changes {
		if c.Breaking {
			out = append(out, c)
		}
	}
	return out
}

// Diff compares two versions of a message (old: the table's, new: the
// candidate) under the same options. Compatible: the Evolution with the
// merged table and a nil error. Breaking: the Evolution (Merged nil) and an
// *IncompatibleError listing the breaking changes. Other errors (the new
// version cannot be derived at all) are returned as they are.
//
// With both descriptors at hand Diff also checks enum values: a new value
// is compatible; a removed value is breaking unless its number is
// reserved; a value renamed under the same number is breaking with
// enums=string (the column's strings would change meaning).
func Diff(old, new protoreflect.MessageDescriptor, opts Options) (*Evolution, error) {
	oldT, err := Derive(old, opts)
	if err != nil {
		return nil, fmt.Errorf("old version: %w", err)
	}
	return diff(oldT.Schema, oldT, new, opts)
}

// DiffSchema compares a table's stored schema (its Delta schemaString, which
// records each column's field number and proto type in the field metadata)
// with a new proto version. It applies the same rules as Diff, except the
// enum-value checks, which need the old descriptor (the commit log archives
// it at _protolake/descriptors/<fingerprint>.binpb; use Diff when it is
// available).
func DiffSchema(stored *StructType, new protoreflect.MessageDescriptor, opts Options) (*Evolution, error) {
	if stored == nil {
		return nil, errors.New("diff: no stored schema")
	}
	return diff(stored, nil, new, opts)
}

func diff(stored *StructType, oldT *Table, new protoreflect.MessageDescriptor, opts Options) (*Evolution, error) {
	newT, err := Derive(new, opts)
	if err != nil {
		return nil, err
	}
	if err := checkPartitioning(stored, newT.Schema); err != nil {
		return nil, err
	}
	d := &differ{oldT: oldT, newT: newT, opts: opts}
	d.structs("", stored, newT.Schema, new, true)
	return d.merge(stored, new)
}

// DiffOlder compares an older proto version with a table whose current proto
// version (current, the table's pin) is a compatible evolution of it: a
// rollback, or an instance of the previous release restarting during a
// rolling deploy. Such a version may write to the table, exactly as an
// instance started before the upgrade goes on writing: its rows carry the
// fields it knows and the columns it does not know read as null; the table's
// schema and pin stay the newer version's.
//
// Compatible: the Evolution, whose Merged is the table's schema as the older
// version writes it (every column of stored kept; the columns of fields it
// does not know reported as NotWritten), and a nil error. Otherwise an
// *IncompatibleError: current is not a compatible evolution of older, or
// older conflicts with a column the table holds (another type, a reused
// number or name). A partitioning that differs from the table's is a
// *PartitioningError.
func DiffOlder(stored *StructType, current, older protoreflect.MessageDescriptor, opts Options) (*Evolution, error) {
	if stored == nil {
		return nil, errors.New("diff: no stored schema")
	}
	olderT, err := Derive(older, opts)
	if err != nil {
		return nil, err
	}
	if err := checkPartitioning(stored, olderT.Schema); err != nil {
		return nil, err
	}
	if _, err := Diff(older, current, opts); err != nil {
		var ie *IncompatibleError
		if errors.As(err, &ie) {
			return nil, &IncompatibleError{Message: string(older.FullName()), Changes: ie.Changes,
				Context: "the table's proto version is not a compatible evolution of this one"}
		}
		return nil, fmt.Errorf("the table's version: %w", err)
	}
	d := &differ{newT: olderT, opts: opts}
	d.structs("", stored, olderT.Schema, older, true)
	for i, c := range d.changes {
		switch {
		case c.Kind == FieldRemoved && c.Breaking:
			d.changes[i] = Change{Path: c.Path, Number: c.Number, Kind: NotWritten,
				Detail: "this older version does not know the field; its rows read null"}
		case c.Kind == FieldAdded:
			// The table (created or evolved by a newer version that
			// removed the field) has no column for it: an older version
			// never changes the table's schema, so its values would be
			// lost.
			d.changes[i].Breaking = true
			d.changes[i].Detail = "the table has no column for this field of the older version (a newer version removed it before the table held it), so its values would be lost"
		}
	}
	return d.merge(stored, older)
}

// merge turns the differ's changes into the Evolution: the merged table when
// every change is compatible, an *IncompatibleError otherwise.
func (d *differ) merge(stored *StructType, new protoreflect.MessageDescriptor) (*Evolution, error) {
	ev := &Evolution{Changes: d.changes}
	if b := ev.Breaking(); len(b) > 0 {
		return ev, &IncompatibleError{Message: string(new.FullName()), Changes: b}
	}
	merged, err := derive(new, d.opts, stored)
	if err != nil {
		var ce *CollisionError
		if errors.As(err, &ce) {
			c := Change{Path: joinPath(ce.Struct, ce.Names[1]), Kind: NameConflict, Breaking: true, Detail: ce.Error()}
			ev.Changes = append(ev.Changes, c)
			return ev, &IncompatibleError{Message: string(new.FullName()), Changes: []Change{c}}
		}
		return nil, err
	}
	ev.Merged = merged
	return ev, nil
}

// checkPartitioning compares the table's partition columns with the ones the
// options derive: a difference is the configuration's, not the proto
// version's.
func checkPartitioning(stored, new *StructType) error {
	if tp, cp := partitioning(stored), partitioning(new); tp != cp {
		return &PartitioningError{Table: tp, Configured: cp}
	}
	return nil
}

type differ struct {
	oldT, newT *Table
	opts       Options
	changes    []Change
}

func (d *differ) add(c Change) { d.changes = append(d.changes, c) }

// structs compares two structs whose fields are matched by field number.
// md is the new message at this position (for reserved numbers).
func (d *differ) structs(path string, old, new *StructType, md protoreflect.MessageDescriptor, top bool) {
	newByNum := map[int]*StructField{}
	for _, f := range new.Fields {
		if n := f.FieldNumber(); n != 0 {
			newByNum[n] = f
		}
	}
	oldNums := map[int]bool{}
	oldNames := map[string]*StructField{}
	for _, of := range old.Fields {
		oldNames[strings.ToLower(of.Name)] = of
		n := of.FieldNumber()
		fpath := joinPath(path, of.Name)
		if n == 0 {
			nf := new.Field(of.Name)
			if of.metaString(MetaPartition) != "" {
				continue // compared as a whole below
			}
			if nf == nil {
				d.add(Change{Path: fpath, Kind: ColumnKept, Detail: "not written any more; new rows read null"})
				continue
			}
			if nf.Type.String() != of.Type.String() {
				d.add(Change{Path: fpath, Kind: TypeChanged, Breaking: true, Detail: of.Type.String() + " → " + nf.Type.String()})
			}
			continue
		}
		oldNums[n] = true
		nf := newByNum[n]
		if nf == nil {
			if fd := md.Fields().ByNumber(protoreflect.FieldNumber(n)); fd != nil {
				d.add(Change{Path: fpath, Number: n, Kind: FieldDropped, Breaking: true,
					Detail: fmt.Sprintf("field %s is now an empty message and would have no column", fd.Name())})
				continue
			}
			if md.ReservedRanges().Has(protoreflect.FieldNumber(n)) {
				d.add(Change{Path: fpath, Number: n, Kind: FieldRemoved, Detail: "number reserved; the column is kept and new rows read null"})
			} else {
				d.add(Change{Path: fpath, Number: n, Kind: FieldRemoved, Breaking: true,
					Detail: fmt.Sprintf("the number is not reserved, so it could be reused with another meaning; add `reserved %d;` to %s", n, md.FullName())})
			}
			continue
		}
		d.field(fpath, n, of, nf)
	}
	for _, nf := range new.Fields {
		n := nf.FieldNumber()
		if n == 0 {
			if top && nf.metaString(MetaColumn) != "" && old.Field(nf.Name) == nil {
				d.add(Change{Path: joinPath(path, nf.Name), Kind: FieldAdded, Detail: "metadata column " + nf.Type.String()})
			}
			continue
		}
		if oldNums[n] {
			continue
		}
		fpath := joinPath(path, nf.Name)
		if d.reserved(fpath, n, old, nf) {
			continue
		}
		if of := oldNames[strings.ToLower(nf.Name)]; of != nil {
			d.add(Change{Path: fpath, Number: n, Kind: NameConflict, Breaking: true,
				Detail: fmt.Sprintf("the table's column %s belongs to field %d; rename the new field", of.Name, of.FieldNumber())})
			continue
		}
		d.add(Change{Path: fpath, Number: n, Kind: FieldAdded, Detail: nf.metaString(MetaType) + " as " + nf.Type.String()})
	}
}

// partitioning describes a struct's partition columns, in order.
func partitioning(st *StructType) string {
	var parts []string
	for _, f := range st.Fields {
		if e := f.metaString(MetaPartition); e != "" {
			parts = append(parts, f.Name+"="+e)
		}
	}
	return strings.Join(parts, ", ")
}

var typeNameRE = regexp.MustCompile(`\b(message|group|enum) [A-Za-z0-9_.]+`)

func cardinalityOf(t string) string {
	switch {
	case strings.HasPrefix(t, "map<"):
		return "map"
	case strings.HasPrefix(t, "repeated "):
		return "repeated"
	}
	return "singular"
}

// reserved reports (and records as breaking) a new field whose number or
// name the old message reserves: a removed field's, which the table may
// still hold as a column and old producers may still send.
func (d *differ) reserved(path string, n int, old *StructType, nf *StructField) bool {
	if d.oldT == nil {
		return false
	}
	omd := d.oldT.structMsg[old]
	if omd == nil {
		return false
	}
	found := false
	if omd.ReservedRanges().Has(protoreflect.FieldNumber(n)) {
		d.add(Change{Path: path, Number: n, Kind: ReservedNumberReused, Breaking: true,
			Detail: fmt.Sprintf("%d is reserved in %s (a removed field's number: old data and old producers use it with its old meaning); give the field a new number", n, omd.FullName())})
		found = true
	}
	name := nf.Name
	if fd := d.newT.fieldDesc[nf]; fd != nil {
		name = string(fd.Name())
	}
	if omd.ReservedNames().Has(protoreflect.Name(name)) {
		d.add(Change{Path: path, Number: n, Kind: ReservedNameReused, Breaking: true,
			Detail: fmt.Sprintf("%q is reserved in %s (a removed field's name); give the field another name", name, omd.FullName())})
		found = true
	}
	return found
}

// field compares two fields matched by number and records every difference:
// a cardinality or type change does not hide an enum value's removal.
func (d *differ) field(path string, n int, of, nf *StructField) {
	if of.Name != nf.Name {
		d.add(Change{Path: path, Number: n, Kind: FieldRenamed, Detail: fmt.Sprintf("%s → %s; the column keeps the name %s", of.Name, nf.Name, of.Name)})
	}
	ot, nt := of.metaString(MetaType), nf.metaString(MetaType)
	on, nn := typeNameRE.ReplaceAllString(ot, "$1"), typeNameRE.ReplaceAllString(nt, "$1")
	switch oc, nc := cardinalityOf(ot), cardinalityOf(nt); {
	case ot != "" && oc != nc:
		d.add(Change{Path: path, Number: n, Kind: CardinalityChanged, Breaking: true, Detail: fmt.Sprintf("%s → %s (%s → %s)", oc, nc, ot, nt)})
	case ot != "" && on != nn:
		d.add(Change{Path: path, Number: n, Kind: TypeChanged, Breaking: true, Detail: ot + " → " + nt})
	default:
		if ot != nt {
			d.add(Change{Path: path, Number: n, Kind: MessageRenamed, Detail: ot + " → " + nt})
		}
		d.types(path, n, of.Type, nf.Type)
	}
	if d.oldT != nil {
		ofd, nfd := d.oldT.fieldDesc[of], d.newT.fieldDesc[nf]
		if ofd != nil && nfd != nil {
			if oe, ne := enumOf(ofd), enumOf(nfd); oe != nil && ne != nil {
				d.enums(path, n, oe, ne)
			}
		}
	}
}

// enumOf returns the enum a field (or a map field's value) holds, nil if none.
func enumOf(fd protoreflect.FieldDescriptor) protoreflect.EnumDescriptor {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	return fd.Enum()
}

// types compares two Delta types, recursing into structs; it reports
// whether they are compatible.
func (d *differ) types(path string, n int, ot, nt DataType) bool {
	switch o := ot.(type) {
	case *StructType:
		if s, ok := nt.(*StructType); ok {
			md := d.newT.structMsg[s]
			if md == nil {
				return false
			}
			d.structs(path, o, s, md, false)
			return true
		}
	case *ArrayType:
		if a, ok := nt.(*ArrayType); ok {
			return d.types(path+"[]", n, o.ElementType, a.ElementType)
		}
	case *MapType:
		if m, ok := nt.(*MapType); ok {
			if o.KeyType.String() != m.KeyType.String() {
				d.add(Change{Path: path + "{}.key", Number: n, Kind: TypeChanged, Breaking: true, Detail: o.KeyType.String() + " → " + m.KeyType.String()})
				return false
			}
			return d.types(path+"{}.value", n, o.ValueType, m.ValueType)
		}
	case PrimitiveType:
		if p, ok := nt.(PrimitiveType); ok && p == o {
			return true
		}
	}
	d.add(Change{Path: path, Number: n, Kind: TypeChanged, Breaking: true, Detail: "column type " + ot.String() + " → " + nt.String()})
	return false
}

func (d *differ) enums(path string, n int, oe, ne protoreflect.EnumDescriptor) {
	ov, nv := oe.Values(), ne.Values()
	for i := range ov.Len() {
		v := ov.Get(i)
		if ov.ByNumber(v.Number()) != v {
			continue // an alias: the first name of a number is the one written
		}
		w := nv.ByNumber(v.Number())
		switch {
		case w == nil && ne.ReservedRanges().Has(v.Number()):
			d.add(Change{Path: path, Number: n, Kind: EnumValueRemoved, Detail: fmt.Sprintf("%s = %d (number reserved)", v.Name(), v.Number())})
		case w == nil:
			d.add(Change{Path: path, Number: n, Kind: EnumValueRemoved, Breaking: true,
				Detail: fmt.Sprintf("%s = %d; reserve the number (reserved %d;) in %s", v.Name(), v.Number(), v.Number(), ne.FullName())})
		case w.Name() != v.Name():
			d.add(Change{Path: path, Number: n, Kind: EnumValueRenamed, Breaking: d.opts.enums() == EnumString,
				Detail: fmt.Sprintf("%d: %s → %s", v.Number(), v.Name(), w.Name())})
		}
	}
	for i := range nv.Len() {
		w := nv.Get(i)
		if ov.ByNumber(w.Number()) == nil {
			d.add(Change{Path: path, Number: n, Kind: EnumValueAdded, Detail: fmt.Sprintf("%s = %d", w.Name(), w.Number())})
		}
	}
}
