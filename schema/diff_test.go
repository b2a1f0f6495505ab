package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func changeLines(cs []Change) string {
	var lines []string
	for _, c := range cs {
		lines = append(lines, c.String())
	}
	return strings.Join(lines, "\n")
}

func TestDiffEvolutionCompatible(t *testing.T) {
	v1 := msg(t, "evolution/v1/order.binpb", "shop.Order")
	v2 := msg(t, "evolution/v2/order.binpb", "shop.Order")
	ev, err := Diff(v1, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"compatible: customer_id (field 3): field renamed (column keeps its name): customer_id → buyer_id; the column keeps the name customer_id",
		"compatible: state (field 4): enum value added: STATE_CANCELLED = 3",
		"compatible: lines[].currency (field 4): field added: string as string",
		"compatible: coupon (field 8): field removed: number reserved; the column is kept and new rows read null",
		"compatible: shipping (field 9): field added: message shop.Shipping as struct<carrier:string,tracking_number:string>",
		"compatible: notes (field 10): field added: repeated string as array<string>",
	}, "\n")
	if got := changeLines(ev.Changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	m := ev.Merged
	// Column order: new declaration order, then the kept column, then
	// metadata columns.
	var names []string
	for _, f := range m.Schema.Fields {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "order_id,created_at,customer_id,state,lines,attributes,total_cents,shipping,notes,coupon,_kafka,_unknown" {
		t.Errorf("merged columns %s", got)
	}
	// The renamed field writes into its old column, in files and plan.
	if fp := m.Plan.Root.Field(3); fp.Name != "customer_id" || m.Plan.Columns[fp.Column].Path[0] != "customer_id" {
		t.Errorf("field 3 writes to %q", fp.Name)
	}
	if _, ok := m.Parquet.Lookup("customer_id"); !ok {
		t.Error("Parquet schema has no customer_id column")
	}
	if _, ok := m.Parquet.Lookup("buyer_id"); ok {
		t.Error("Parquet schema has a buyer_id column")
	}
	// The kept column is in the Delta schema only.
	if _, ok := m.Parquet.Lookup("coupon"); ok {
		t.Error("kept column coupon is in the data files")
	}
	if f := m.Schema.Field("coupon"); f == nil || f.FieldNumber() != 8 {
		t.Error("coupon is not kept in the Delta schema")
	}
	golden(t, "shop.Order.v1-v2.merged.delta.json", mustJSON(t, m))

	// The stored schemaString gives the same answer (minus enum values,
	// which it does not record).
	stored, err := ParseSchemaString(derived(t, "evolution/v1/order.binpb", Options{}).SchemaString())
	if err != nil {
		t.Fatal(err)
	}
	ev2, err := DiffSchema(stored, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev2.Merged.SchemaString() != m.SchemaString() {
		t.Errorf("DiffSchema merged schema differs from Diff's:\n%s\n%s", ev2.Merged.SchemaString(), m.SchemaString())
	}
	// Merging again is stable: the merged table accepts v2 unchanged.
	ev3, err := DiffSchema(m.Schema, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev3.Merged.SchemaString() != m.SchemaString() {
		t.Errorf("re-merge changed the schema:\n%s\n%s", ev3.Merged.SchemaString(), m.SchemaString())
	}
	for _, c := range ev3.Changes {
		if c.Kind == FieldAdded {
			t.Errorf("re-merge reports an addition: %s", c)
		}
	}
}

func derived(t *testing.T, set string, opts Options) *Table {
	t.Helper()
	tb, err := Derive(msg(t, set, "shop.Order"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func mustJSON(t *testing.T, tb *Table) []byte {
	t.Helper()
	b, err := tb.DeltaJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiffEvolutionBreaking(t *testing.T) {
	v1 := msg(t, "evolution/v1/order.binpb", "shop.Order")
	v3 := msg(t, "evolution/v3/order.binpb", "shop.Order")
	want := strings.Join([]string{
		"BREAKING: customer_id (field 3): cardinality changed: singular → repeated (string → repeated string)",
		"BREAKING: lines[].quantity (field 2): type changed: int32 → string",
		"BREAKING: attributes (field 6): cardinality changed: map → repeated (map<string, string> → repeated string)",
		"BREAKING: total_cents (field 7): type changed: int64 → double",
		"BREAKING: coupon (field 8): type changed: string → int64",
	}, "\n")
	ev, err := Diff(v1, v3, Options{})
	var inc *IncompatibleError
	if !errors.As(err, &inc) {
		t.Fatalf("got %v", err)
	}
	if ev.Merged != nil {
		t.Error("a breaking diff has a merged schema")
	}
	if got := changeLines(inc.Changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	for _, w := range []string{"shop.Order", "5 breaking changes", "lines[].quantity (field 2) type changed (int32 → string)", "write to a new table"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	stored, _ := ParseSchemaString(derived(t, "evolution/v1/order.binpb", Options{}).SchemaString())
	_, err = DiffSchema(stored, v3, Options{})
	if !errors.As(err, &inc) || changeLines(inc.Changes) != want {
		t.Errorf("DiffSchema: %v", err)
	}
}

func TestDiffSynthetic(t *testing.T) {
	const base = `syntax = "proto3";
package p;
enum E { E_UNSPECIFIED = 0; E_A = 1; E_B = 2; }
message Inner { string s = 1; }
message M {
  int64 id = 1;
  E e = 2;
  Inner inner = 3;
  map<string, Inner> byname = 4;
  uint64 big = 5;
  string note = 6;
}`
	tests := []struct {
		name     string
		old, new string
		oldOpts  Options
		newOpts  Options
		breaking bool
		want     []string // substrings of the change list
	}{
		{name: "identical", old: base, new: base, want: nil},
		{name: "comment only", old: base, new: strings.Replace(base, "int64 id = 1;", "int64 id = 1; // the id", 1)},
		{name: "enum value removed", old: base, new: strings.Replace(base, " E_B = 2;", "", 1), breaking: true,
			want: []string{"BREAKING: e (field 2): enum value removed: E_B = 2; reserve the number (reserved 2;) in p.E"}},
		{name: "enum value removed and reserved", old: base, new: strings.Replace(base, " E_B = 2;", " reserved 2;", 1),
			want: []string{"compatible: e (field 2): enum value removed: E_B = 2 (number reserved)"}},
		{name: "enum value renamed", old: base, new: strings.Replace(base, "E_B = 2", "E_BEE = 2", 1), breaking: true,
			want: []string{"BREAKING: e (field 2): enum value renamed: 2: E_B → E_BEE"}},
		{name: "enum value renamed with enums=int", old: base, new: strings.Replace(base, "E_B = 2", "E_BEE = 2", 1),
			oldOpts: Options{Enums: EnumInt}, newOpts: Options{Enums: EnumInt},
			want: []string{"compatible: e (field 2): enum value renamed: 2: E_B → E_BEE"}},
		{name: "field removed without reserving", old: base, new: strings.Replace(base, "string note = 6;", "", 1), breaking: true,
			want: []string{"BREAKING: note (field 6): field removed: the number is not reserved", "reserved 6;"}},
		{name: "nested field added in map value", old: base, new: strings.Replace(base, "string s = 1;", "string s = 1; int32 n = 2;", 1),
			want: []string{"compatible: inner.n (field 2): field added", "compatible: byname{}.value.n (field 2): field added"}},
		{name: "message type renamed", old: base, new: strings.ReplaceAll(base, "Inner", "Inner2"),
			want: []string{"compatible: inner (field 3): message type renamed: message p.Inner → message p.Inner2",
				"compatible: byname (field 4): message type renamed: map<string, message p.Inner> → map<string, message p.Inner2>"}},
		{name: "new field reuses a kept column's name", old: base, new: strings.Replace(base, "string note = 6;", "reserved 6; int32 note = 7;", 1), breaking: true,
			want: []string{"BREAKING: note (field 7): column name conflict: the table's column note belongs to field 6"}},
		{name: "new field collides ignoring case", old: base, new: strings.Replace(base, "string note = 6;", "reserved 6; string Note = 7;", 1), breaking: true,
			want: []string{"BREAKING: Note (field 7): column name conflict: the table's column note belongs to field 6"}},
		{name: "new field takes a renamed field's column name", old: base, new: strings.Replace(base, "string note = 6;", "string memo = 6; string note = 7;", 1), breaking: true,
			want: []string{"compatible: note (field 6): field renamed", "BREAKING: note (field 7): column name conflict"}},
		{name: "uint64 option changed", old: base, new: base, newOpts: Options{Uint64: Uint64Long}, breaking: true,
			want: []string{"BREAKING: big (field 5): type changed: column type decimal(20,0) → long"}},
		{name: "kafka metadata turned off", old: base, new: base, newOpts: Options{NoKafkaMeta: true},
			want: []string{"compatible: _kafka: column kept, no longer written"}},
		{name: "kafka metadata turned on", old: base, new: base, oldOpts: Options{NoKafkaMeta: true},
			want: []string{"compatible: _kafka: field added: metadata column"}},
		{name: "reserved number reused", old: strings.Replace(base, "string note = 6;", "string note = 6; reserved 7;", 1), new: strings.Replace(base, "string note = 6;", "string note = 6; int64 seven = 7;", 1), breaking: true,
			want: []string{"BREAKING: seven (field 7): reserved number reused: 7 is reserved in p.M (a removed field's number: old data and old producers use it with its old meaning); give the field a new number"}},
		{name: "reserved nested number reused", old: strings.Replace(base, "string s = 1;", "string s = 1; reserved 2;", 1), new: strings.Replace(base, "string s = 1;", "string s = 1; int32 n = 2;", 1), breaking: true,
			want: []string{"BREAKING: inner.n (field 2): reserved number reused: 2 is reserved in p.Inner", "BREAKING: byname{}.value.n (field 2): reserved number reused"}},
		{name: "reserved name reused", old: strings.Replace(base, "string note = 6;", "string note = 6; reserved \"memo\";", 1), new: strings.Replace(base, "string note = 6;", "string note = 6; string memo = 8;", 1), breaking: true,
			want: []string{`BREAKING: memo (field 8): reserved name reused: "memo" is reserved in p.M (a removed field's name); give the field another name`}},
		{name: "cardinality change and enum value removed", old: base, new: strings.Replace(strings.Replace(base, " E_B = 2;", "", 1), "E e = 2;", "repeated E e = 2;", 1), breaking: true,
			want: []string{"BREAKING: e (field 2): cardinality changed: singular → repeated (enum p.E → repeated enum p.E)\nBREAKING: e (field 2): enum value removed: E_B = 2; reserve the number (reserved 2;) in p.E"}},
		{name: "enum renamed type and value removed", old: base, new: strings.Replace(strings.ReplaceAll(base, "E e = 2;", "F e = 2;"), "enum E { E_UNSPECIFIED = 0; E_A = 1; E_B = 2; }", "enum E { E_UNSPECIFIED = 0; E_A = 1; E_B = 2; } enum F { F_UNSPECIFIED = 0; F_A = 1; }", 1), breaking: true,
			want: []string{"compatible: e (field 2): message type renamed: enum p.E → enum p.F", "BREAKING: e (field 2): enum value renamed: 0: E_UNSPECIFIED → F_UNSPECIFIED", "BREAKING: e (field 2): enum value removed: E_B = 2"}},
		{name: "same partitioning", old: base, new: base, oldOpts: Options{Partitions: []string{"day(_kafka.timestamp)"}}, newOpts: Options{Partitions: []string{"day(_kafka.timestamp)"}}},
		{name: "int32 to sint32", old: strings.Replace(base, "int64 id = 1", "int32 id = 1", 1), new: strings.Replace(base, "int64 id = 1", "sint32 id = 1", 1), breaking: true,
			want: []string{"BREAKING: id (field 1): type changed: int32 → sint32"}},
		{name: "message to bytes", old: base, new: strings.Replace(base, "Inner inner = 3;", "bytes inner = 3;", 1), breaking: true,
			want: []string{"BREAKING: inner (field 3): type changed: message p.Inner → bytes"}},
		{name: "map value type", old: base, new: strings.Replace(base, "map<string, Inner>", "map<string, string>", 1), breaking: true,
			want: []string{"BREAKING: byname (field 4): type changed: map<string, message p.Inner> → map<string, string>"}},
		{name: "map key type", old: base, new: strings.Replace(base, "map<string, Inner>", "map<int32, Inner>", 1), breaking: true,
			want: []string{"BREAKING: byname (field 4): type changed: map<string, message p.Inner> → map<int32, message p.Inner>"}},
		{name: "message removed in use", old: base, new: strings.Replace(strings.Replace(base, "message Inner { string s = 1; }", "", 1), "Inner", "Outer", -1) + "\nmessage Outer { int32 s = 1; }", breaking: true,
			want: []string{"BREAKING: inner.s (field 1): type changed: string → int32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := inlineMessage(t, tt.old, "p.M")
			nw := inlineMessage(t, tt.new, "p.M")
			oldT, err := Derive(old, tt.oldOpts)
			if err != nil {
				t.Fatal(err)
			}
			// Through the stored schema; and through Diff when options agree.
			ev, err := DiffSchema(oldT.Schema, nw, tt.newOpts)
			if samePartitioning(tt.oldOpts, tt.newOpts) && tt.oldOpts.Enums == tt.newOpts.Enums {
				ev, err = diff(oldT.Schema, oldT, nw, tt.newOpts)
			}
			var inc *IncompatibleError
			if gotBreaking := errors.As(err, &inc); gotBreaking != tt.breaking {
				t.Fatalf("breaking = %v (%v), want %v; changes:\n%s", gotBreaking, err, tt.breaking, changeLines(ev.Changes))
			}
			if err != nil && inc == nil {
				t.Fatal(err)
			}
			got := changeLines(ev.Changes)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("changes:\n%s\nlack %q", got, w)
				}
			}
			if tt.want == nil && got != "" {
				t.Errorf("unexpected changes:\n%s", got)
			}
			if !tt.breaking && ev.Merged == nil {
				t.Error("compatible without a merged schema")
			}
		})
	}
}

func samePartitioning(a, b Options) bool {
	return strings.Join(a.Partitions, ",") == strings.Join(b.Partitions, ",")
}

// A partitioning that differs between the options and the table is the
// configuration's problem, not an incompatible proto version.
func TestDiffPartitioning(t *testing.T) {
	v1 := msg(t, "evolution/v1/order.binpb", "shop.Order")
	v2 := msg(t, "evolution/v2/order.binpb", "shop.Order")
	tests := []struct {
		name            string
		table, configed []string
		want            string
	}{
		{"partition dropped", []string{"day(created_at)"}, nil,
			"configured partitioning [] differs from the table's [created_at_day=day(created_at)]: a table's partitioning cannot change; configure the table's partitioning (partition_by in the table config, --partition for schema), or write to a new table"},
		{"partition added", nil, []string{"day(_kafka.timestamp)"},
			"configured partitioning [kafka_day=day(_kafka.timestamp)] differs from the table's []: a table's partitioning cannot change; configure the table's partitioning (partition_by in the table config, --partition for schema), or write to a new table"},
		{"another transform", []string{"day(created_at)"}, []string{"created_at_day=hour(created_at)"},
			"configured partitioning [created_at_day=hour(created_at)] differs from the table's [created_at_day=day(created_at)]: a table's partitioning cannot change; configure the table's partitioning (partition_by in the table config, --partition for schema), or write to a new table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := derived(t, "evolution/v1/order.binpb", Options{Partitions: tt.table}).Schema
			for name, f := range map[string]func() (*Evolution, error){
				"DiffSchema": func() (*Evolution, error) { return DiffSchema(stored, v2, Options{Partitions: tt.configed}) },
				"DiffOlder":  func() (*Evolution, error) { return DiffOlder(stored, v2, v1, Options{Partitions: tt.configed}) },
			} {
				_, err := f()
				var pe *PartitioningError
				var ie *IncompatibleError
				if !errors.As(err, &pe) || errors.As(err, &ie) {
					t.Fatalf("%s: %v, want a *PartitioningError only", name, err)
				}
				if err.Error() != tt.want {
					t.Errorf("%s:\n%s\nwant\n%s", name, err, tt.want)
				}
			}
		})
	}
	stored := derived(t, "evolution/v1/order.binpb", Options{Partitions: []string{"day(created_at)"}}).Schema
	if _, err := DiffSchema(stored, v2, Options{Partitions: []string{"day(created_at)"}}); err != nil {
		t.Errorf("same partitioning: %v", err)
	}
}

// The issue's example: a version that drops v2's `reserved 8; reserved
// "coupon";` and reuses the number with another type was "field added".
func TestDiffReservedReuse(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(protoDir, "evolution/v2/shop/order.proto"))
	if err != nil {
		t.Fatal(err)
	}
	v4src := strings.Replace(string(src), "reserved 8; // coupon was removed\n  reserved \"coupon\";", "int64 coupon = 8;", 1)
	if v4src == string(src) {
		t.Fatal("v2 source changed; update the test")
	}
	v2 := msg(t, "evolution/v2/order.binpb", "shop.Order")
	v4 := inlineMessage(t, v4src, "shop.Order")
	_, err = Diff(v2, v4, Options{})
	var ie *IncompatibleError
	if !errors.As(err, &ie) {
		t.Fatalf("Diff(v2, v4) = %v, want breaking", err)
	}
	want := strings.Join([]string{
		"BREAKING: coupon (field 8): reserved number reused: 8 is reserved in shop.Order (a removed field's number: old data and old producers use it with its old meaning); give the field a new number",
		`BREAKING: coupon (field 8): reserved name reused: "coupon" is reserved in shop.Order (a removed field's name); give the field another name`,
	}, "\n")
	if got := changeLines(ie.Changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	// Against the table v1 then v2 wrote (it still holds coupon as a string
	// column), the type change is what the stored schema shows.
	v1 := msg(t, "evolution/v1/order.binpb", "shop.Order")
	ev, err := Diff(v1, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = DiffSchema(ev.Merged.Schema, v4, Options{})
	if !errors.As(err, &ie) || changeLines(ie.Changes) != "BREAKING: coupon (field 8): type changed: string → int64" {
		t.Errorf("DiffSchema(v1+v2 table, v4) = %v", err)
	}
}

// An older version may write to a table a newer compatible version evolved:
// the columns it does not know are reported and read null.
func TestDiffOlder(t *testing.T) {
	v1 := msg(t, "evolution/v1/order.binpb", "shop.Order")
	v2 := msg(t, "evolution/v2/order.binpb", "shop.Order")
	v3 := msg(t, "evolution/v3/order.binpb", "shop.Order")
	ev, err := Diff(v1, v2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored := ev.Merged.Schema
	// What a start on v1 refused before DiffOlder existed.
	_, err = DiffSchema(stored, v1, Options{})
	var ie *IncompatibleError
	if !errors.As(err, &ie) {
		t.Fatalf("DiffSchema(v2 table, v1) = %v, want breaking", err)
	}
	old, err := DiffOlder(stored, v2, v1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"compatible: lines[].currency (field 4): column not written by this version: this older version does not know the field; its rows read null",
		"compatible: shipping (field 9): column not written by this version: this older version does not know the field; its rows read null",
		"compatible: notes (field 10): column not written by this version: this older version does not know the field; its rows read null",
	}, "\n")
	if got := changeLines(old.Changes); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	// Every column of the table is in the merged schema; the data files
	// hold only v1's, under the table's names.
	for _, c := range []string{"customer_id", "coupon", "shipping", "notes", "_kafka"} {
		if old.Merged.Schema.Field(c) == nil {
			t.Errorf("merged schema lacks %s", c)
		}
	}
	for c, in := range map[string]bool{"customer_id": true, "coupon": true, "shipping": false, "notes": false} {
		if _, ok := old.Merged.Parquet.Lookup(c); ok != in {
			t.Errorf("column %s in the data files = %v, want %v", c, ok, in)
		}
	}
	// v3 is not an older version of v2: the table's version is no
	// compatible evolution of it.
	if _, err := DiffOlder(stored, v2, v3, Options{}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "is not a compatible evolution of this one") {
		t.Errorf("DiffOlder(v3) = %v", err)
	}
	// A table v2 created never had v1's coupon: v1 would lose its values.
	if _, err := DiffOlder(derived(t, "evolution/v2/order.binpb", Options{}).Schema, v2, v1, Options{}); !errors.As(err, &ie) ||
		changeLines(ie.Changes) != "BREAKING: coupon (field 8): field added: the table has no column for this field of the older version (a newer version removed it before the table held it), so its values would be lost" {
		t.Errorf("DiffOlder(v2 table, v1) = %v", err)
	}
	// A version that conflicts with a column the table holds is refused
	// even when the pinned version is a compatible evolution of it.
	v1b := inlineMessage(t, `syntax = "proto3"; package shop; message Order { string order_id = 1; reserved 7; }`, "shop.Order")
	v1c := inlineMessage(t, `syntax = "proto3"; package shop; message Order { string order_id = 1; int32 total_cents = 7; }`, "shop.Order")
	if _, err := DiffOlder(derived(t, "evolution/v1/order.binpb", Options{}).Schema, v1b, v1c, Options{}); !errors.As(err, &ie) ||
		!strings.Contains(err.Error(), "total_cents (field 7) type changed (int64 → int32)") {
		t.Errorf("DiffOlder(conflicting) = %v", err)
	}
}
