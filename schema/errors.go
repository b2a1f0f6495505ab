package schema

import (
	"fmt"
	"strings"
)

// RecursionError reports a message that contains itself, directly or through
// other messages, while Options.MaxRecursionDepth is 0.
type RecursionError struct {
	// Message is the table's message.
	Message string
	// Cycle is the path of the cycle: "msg.field" steps ending with the
	// message it started from, e.g. ["a.B.children", "a.B"].
	Cycle []string
	// Path is the column path where the cycle closes.
	Path string
}

// Error names the cycle and the option that unrolls it.
func (e *RecursionError) Error() string {
	return fmt.Sprintf("message %s is recursive at field path %s: %s; set max_recursion_depth (--max-recursion-depth N) to unroll N levels and keep deeper levels as serialized bytes",
		e.Message, e.Path, strings.Join(e.Cycle, " → "))
}

// TypeDepthError reports a column whose Delta type nests deeper than
// MaxTypeDepth levels.
type TypeDepthError struct {
	// Message is the table's message.
	Message string
	// Path is the column path where the limit is passed.
	Path string
	// Depth is the nesting depth of the column's type.
	Depth int
}

// Error names the column and what to do.
func (e *TypeDepthError) Error() string {
	return fmt.Sprintf("message %s: column %s nests %d levels deep (struct, array and map each count), more than the %d a Delta schema of this table may have; lower max_recursion_depth (--max-recursion-depth) or flatten the message",
		e.Message, e.Path, e.Depth, MaxTypeDepth)
}

// CollisionError reports two columns of one struct whose names are equal
// ignoring case (Delta column names are case-insensitive).
type CollisionError struct {
	// Struct is the path of the struct holding both ("" for the top level).
	Struct string
	// Names are the two colliding names; Origins say where each comes from
	// ("field 1", "metadata column", "partition column", "column kept from
	// the table").
	Names   [2]string
	Origins [2]string
}

// Error names both columns, where they come from, and what to do.
func (e *CollisionError) Error() string {
	where := "at the top level"
	if e.Struct != "" {
		where = "in " + e.Struct
	}
	hint := "rename one of the fields"
	for _, o := range e.Origins {
		switch {
		case o == "metadata column":
			hint = fmt.Sprintf("rename the field, or turn the metadata column off (no_kafka_meta / --no-kafka-meta for %s, no_unknown / --no-unknown for %s)", KafkaColumn, UnknownColumn)
		case o == "partition column":
			hint = "give the partition column another name (NAME=day(FIELD))"
		case strings.HasPrefix(o, "column"):
			hint = "give the new field another name: the table keeps the column of the earlier field"
		}
	}
	return fmt.Sprintf("column names %q (%s) and %q (%s) collide %s: Delta column names are case-insensitive; %s",
		e.Names[0], e.Origins[0], e.Names[1], e.Origins[1], where, hint)
}

// InvalidNameError reports a column name Delta rejects without column
// mapping (empty, or containing one of ` ,;{}()\n\t=`).
type InvalidNameError struct {
	Path string
	Name string
}

// Error names the column and the characters Delta refuses.
func (e *InvalidNameError) Error() string {
	return fmt.Sprintf("column name %q at %s is not allowed by Delta (no spaces or any of ,;{}()=, tabs, newlines); choose another name", e.Name, e.Path)
}

// invalidNameChars are the characters Delta refuses in column names when
// column mapping is off.
const invalidNameChars = " ,;{}()\n\t="

func checkName(path, name string) error {
	if name == "" || strings.ContainsAny(name, invalidNameChars) {
		return &InvalidNameError{Path: path, Name: name}
	}
	return nil
}

// MessageNotFoundError reports a message name the descriptors do not define.
type MessageNotFoundError struct {
	Name string
	// Source is the descriptor set or .proto files searched.
	Source string
	// Candidates are the closest message names defined, best first.
	Candidates []string
	// NotMessage is set when Name names something else (an enum, a
	// service, a field…); it holds what it is.
	NotMessage string
}

// Error names the message and the source, and lists close names.
func (e *MessageNotFoundError) Error() string {
	var b strings.Builder
	if e.NotMessage != "" {
		article := "a"
		if strings.ContainsRune("aeiou", rune(e.NotMessage[0])) {
			article = "an"
		}
		fmt.Fprintf(&b, "%s in %s is %s %s, not a message", e.Name, e.Source, article, e.NotMessage)
	} else {
		fmt.Fprintf(&b, "message %q is not defined in %s", e.Name, e.Source)
	}
	if len(e.Candidates) > 0 {
		fmt.Fprintf(&b, "; did you mean %s?", strings.Join(e.Candidates, ", "))
	} else {
		b.WriteString("; give the message's full name, package included (e.g. pkg.v1.Message)")
	}
	return b.String()
}

// PartitionError reports a partition column that cannot be built.
type PartitionError struct {
	Spec   string
	Reason string
}

// Error names the partition spec and why it cannot be built.
func (e *PartitionError) Error() string {
	return fmt.Sprintf("partition %q: %s", e.Spec, e.Reason)
}

// Warning is something derivation changed or dropped that the user should
// know about (the table is still complete for every value on the wire).
type Warning struct {
	// Path is the field path, e.g. "placement.extra".
	Path string
	// Message explains what happened.
	Message string
}

// String returns "path: message".
func (w Warning) String() string { return w.Path + ": " + w.Message }

// ChangeKind classifies one difference between two proto versions.
type ChangeKind string

// Change kinds. Those marked breaking always are; the others are
// compatible.
const (
	FieldAdded           ChangeKind = "field added"
	FieldRenamed         ChangeKind = "field renamed (column keeps its name)"
	FieldRemoved         ChangeKind = "field removed"        // breaking unless its number is reserved
	TypeChanged          ChangeKind = "type changed"         // breaking
	CardinalityChanged   ChangeKind = "cardinality changed"  // breaking
	MessageRenamed       ChangeKind = "message type renamed" // compatible when the shape is
	EnumValueAdded       ChangeKind = "enum value added"     // compatible
	EnumValueRemoved     ChangeKind = "enum value removed"   // breaking unless reserved
	EnumValueRenamed     ChangeKind = "enum value renamed"   // breaking with enums=string
	NameConflict         ChangeKind = "column name conflict" // breaking
	ColumnKept           ChangeKind = "column kept, no longer written"
	FieldDropped         ChangeKind = "field has no column any more"       // breaking
	ReservedNumberReused ChangeKind = "reserved number reused"             // breaking
	ReservedNameReused   ChangeKind = "reserved name reused"               // breaking
	NotWritten           ChangeKind = "column not written by this version" // compatible (DiffOlder)
)

// Change is one difference between a table's schema and a new proto version.
type Change struct {
	// Path is the column path, e.g. "lines[].quantity" or "attributes{}.value".
	Path string
	// Number is the proto field number (0 for metadata/partition columns).
	Number int
	Kind   ChangeKind
	// Breaking is true when the new version cannot write to the table.
	Breaking bool
	// Detail says what changed, e.g. "int32 → string".
	Detail string
}

// String returns one line: verdict, path, field number, kind and detail.
func (c Change) String() string {
	verdict := "compatible"
	if c.Breaking {
		verdict = "BREAKING"
	}
	num := ""
	if c.Number != 0 {
		num = fmt.Sprintf(" (field %d)", c.Number)
	}
	s := fmt.Sprintf("%s: %s%s: %s", verdict, c.Path, num, c.Kind)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// IncompatibleError reports a proto version that cannot write to a table:
// every breaking change, each with its field path.
type IncompatibleError struct {
	// Message is the message's full name.
	Message string
	// Context, when set, says against what the version was judged (e.g.
	// "against archived version v1 (fingerprint 1a2b…)").
	Context string
	// Changes are the breaking changes, in column order.
	Changes []Change
}

// Error lists every breaking change with its field path.
func (e *IncompatibleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "new version of %s is not compatible with the table (", e.Message)
	if e.Context != "" {
		fmt.Fprintf(&b, "%s; ", e.Context)
	}
	fmt.Fprintf(&b, "%d breaking change", len(e.Changes))
	if len(e.Changes) != 1 {
		b.WriteString("s")
	}
	b.WriteString("): ")
	for i, c := range e.Changes {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s", c.Path)
		if c.Number != 0 {
			fmt.Fprintf(&b, " (field %d)", c.Number)
		}
		fmt.Fprintf(&b, " %s", c.Kind)
		if c.Detail != "" {
			fmt.Fprintf(&b, " (%s)", c.Detail)
		}
	}
	b.WriteString("; only additive changes are allowed: add fields with new numbers, reserve removed ones, or write to a new table")
	return b.String()
}

// PartitioningError reports partition columns, derived from the configured
// options (partition_by, --partition), that differ from the table's. It is a
// configuration problem, not an incompatible proto version: a table's
// partitioning never changes.
type PartitioningError struct {
	// Table and Configured are the partition columns, each as
	// "name=transform(source)", comma-separated ("" for none).
	Table, Configured string
}

// Error names both partitionings and what to do.
func (e *PartitioningError) Error() string {
	return fmt.Sprintf("configured partitioning [%s] differs from the table's [%s]: a table's partitioning cannot change; "+
		"configure the table's partitioning (partition_by in the table config, --partition for schema), or write to a new table", e.Configured, e.Table)
}
