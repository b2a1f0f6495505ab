package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/parquet-go/parquet-go"
)

// DeltaJSON returns the Delta schema as indented JSON (the schemaString,
// pretty-printed for people).
func (t *Table) DeltaJSON() ([]byte, error) {
	compact, err := t.Schema.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// ParquetText returns the Parquet schema in the textual form parquet-mr
// and parquet-go print ("message … { optional int64 x = 1; … }").
func (t *Table) ParquetText() string {
	var b strings.Builder
	_ = parquet.PrintSchema(&b, t.Parquet.Name(), t.Parquet)
	b.WriteByte('\n')
	return b.String()
}

// WritePlan writes the shredding plan as text: the leaf columns with their
// types and levels, then the field tree with each field's decoding.
func (t *Table) WritePlan(w io.Writer) error {
	p := t.Plan
	var b bytes.Buffer
	fmt.Fprintf(&b, "plan for %s\n\ncolumns:\n", p.Message.FullName())
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tpath\tphysical\tlogical\trep\tdef\t")
	for _, c := range p.Columns {
		logical := c.Logical
		if logical == "" {
			logical = "-"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d\t\n", c.Index, strings.Join(c.Path, "."), c.Physical, logical, c.MaxRepLevel, c.MaxDefLevel)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nfields of %s (def %d, rep %d):\n", p.Root.Desc.FullName(), p.Root.DefLevel, p.Root.RepLevel)
	writeMessagePlan(&b, p.Root, "  ")
	if p.Kafka != nil {
		fmt.Fprintf(&b, "\n_kafka: topic=col %d partition=col %d offset=col %d timestamp=col %d (def 2)\n", p.Kafka.Topic, p.Kafka.Partition, p.Kafka.Offset, p.Kafka.Timestamp)
	}
	if p.Unknown >= 0 {
		fmt.Fprintf(&b, "_unknown: col %d (def 1; null when there are no unknown top-level fields)\n", p.Unknown)
	}
	for i, pc := range p.Partitions {
		src := "_kafka.timestamp"
		if pc.Field != nil {
			src = pc.Field.Name
		}
		fmt.Fprintf(&b, "partition %d: %s = %s(%s) as %s (not in the data files)\n", i, pc.Name, pc.Transform, src, pc.DeltaType)
	}
	for _, wn := range t.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func writeMessagePlan(b *bytes.Buffer, m *MessagePlan, indent string) {
	for _, f := range m.Fields {
		writeFieldPlan(b, f, indent)
	}
}

func writeFieldPlan(b *bytes.Buffer, f *FieldPlan, indent string) {
	fmt.Fprintf(b, "%s%d %s: %s %s wire=%s", indent, f.Number, f.Name, f.Cardinality, f.Kind, wireName(f))
	if f.Cardinality == Singular {
		fmt.Fprintf(b, " presence=%s", f.Presence)
	}
	if f.Conv != ConvNone {
		fmt.Fprintf(b, " conv=%s", f.Conv)
	}
	if f.Wrapper {
		b.WriteString(" wrapper")
	}
	if f.Column >= 0 {
		fmt.Fprintf(b, " col=%d", f.Column)
	}
	if f.PartitionIndex >= 0 {
		fmt.Fprintf(b, " partition=%d", f.PartitionIndex)
	}
	if f.Oneof >= 0 {
		fmt.Fprintf(b, " oneof=%d", f.Oneof)
	}
	if f.Conv != ConvSkip {
		fmt.Fprintf(b, " def=%d", f.DefLevel)
		if f.Cardinality == Singular {
			fmt.Fprintf(b, " null=%d", f.NullDefLevel)
		} else {
			fmt.Fprintf(b, " elem=%d", f.ElemDefLevel)
		}
		fmt.Fprintf(b, " rep=%d cols=[%d,%d)", f.RepLevel, f.FirstColumn, f.EndColumn)
	}
	if f.Default.IsValid() && f.Desc.HasDefault() {
		if ed := f.Desc.DefaultEnumValue(); ed != nil {
			fmt.Fprintf(b, " default=%s(%d)", ed.Name(), ed.Number())
		} else {
			fmt.Fprintf(b, " default=%v", f.Default.Interface())
		}
	}
	b.WriteByte('\n')
	if f.MapKey != nil {
		writeFieldPlan(b, f.MapKey, indent+"  ")
		writeFieldPlan(b, f.MapValue, indent+"  ")
	}
	if f.Message != nil {
		writeMessagePlan(b, f.Message, indent+"  ")
	}
}

func wireName(f *FieldPlan) string {
	var s string
	switch f.WireType {
	case 0:
		s = "varint"
	case 1:
		s = "fixed64"
	case 2:
		s = "bytes"
	case 3:
		s = "group"
	case 5:
		s = "fixed32"
	default:
		s = fmt.Sprint(f.WireType)
	}
	if f.Packable {
		s += "|packed"
	}
	return s
}
