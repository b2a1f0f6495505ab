package compact

import (
	"errors"
	"testing"

	"github.com/protolake/protolake/commitlog"
)

func TestPredicate(t *testing.T) {
	s := func(v string) *string { return &v }
	types := map[string]string{"dt": "date", "n": "long", "country": "string"}
	row := map[string]*string{"dt": s("2026-11-05"), "n": s("10"), "country": s("DE")}
	nullRow := map[string]*string{"dt": nil, "n": s("10"), "country": s("DE")}
	tests := []struct {
		where     string
		match     bool
		matchNull bool
	}{
		{`dt >= "2026-11-01"`, true, false},
		{`dt < '2026-11-05'`, false, false},
		{`dt <= '2026-11-05'`, true, false},
		{`dt = "2026-11-05" AND country = DE`, true, false},
		{`dt != "2026-11-05"`, false, false},
		{`dt <> "2026-11-04"`, true, false},
		{`n > 9`, true, true},
		{`n > 9.5 and n < 10.5`, true, true},
		{`n > 100`, false, false},
		{`n >= 10`, true, true}, // numeric, not "10" >= "9" as strings
		{`n < 9`, false, false}, // as strings "10" < "9" would match
		{`country IN ("FR", 'DE')`, true, true},
		{`country in ('FR')`, false, false},
		{`COUNTRY = 'DE'`, true, true},
		{"`country` = 'DE'", true, true},
	}
	for _, tc := range tests {
		p, err := ParsePredicate(tc.where)
		if err != nil {
			t.Errorf("ParsePredicate(%q): %v", tc.where, err)
			continue
		}
		if err := p.Check(types); err != nil {
			t.Errorf("Check(%q): %v", tc.where, err)
		}
		if got := p.Match(row, types); got != tc.match {
			t.Errorf("%q on %v: %v, want %v", tc.where, "row", got, tc.match)
		}
		if got := p.Match(nullRow, types); got != tc.matchNull {
			t.Errorf("%q on the null-dt row: %v, want %v", tc.where, got, tc.matchNull)
		}
		// The canonical form parses to the same predicate.
		p2, err := ParsePredicate(p.String())
		if err != nil || p2.String() != p.String() {
			t.Errorf("String() %q does not round-trip: %v", p.String(), err)
		}
	}
	for _, bad := range []string{"", "dt", "dt >=", `dt >= "x`, "dt = 1 OR n = 2", "dt IN (1, 2", "dt ~ 3", "= 3", "dt = 1 AND"} {
		if _, err := ParsePredicate(bad); !errors.Is(err, ErrPredicate) {
			t.Errorf("ParsePredicate(%q) = %v, want ErrPredicate", bad, err)
		}
	}
	p, _ := ParsePredicate("other = 1")
	if err := p.Check(types); !errors.Is(err, ErrPredicate) {
		t.Errorf("Check of a non-partition column: %v", err)
	}
}

func FuzzParsePredicate(f *testing.F) {
	for _, s := range []string{`dt >= "2026-11-01"`, `a IN (1,2) AND b != 'x'`, "`x` = ''''"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePredicate(s)
		if err != nil {
			return
		}
		p.Match(map[string]*string{}, nil)
		if _, err := ParsePredicate(p.String()); err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", p.String(), s, err)
		}
	})
}

func TestBinPack(t *testing.T) {
	files := func(sizes ...int64) []commitlogAdd {
		var out []commitlogAdd
		for i, s := range sizes {
			out = append(out, commitlogAdd{Path: string(rune('a' + i)), Size: s, ModificationTime: int64(i)})
		}
		return out
	}
	tests := []struct {
		sizes []int64
		want  []int // files per bin
	}{
		{[]int64{10, 10, 10, 10}, []int{4}},
		{[]int64{60, 60, 60, 60}, []int{}}, // no two fit: nothing gains
		{[]int64{40, 40, 40, 40, 40}, []int{2, 2}},
		{[]int64{90, 5, 5, 90}, []int{3}},
	}
	for _, tc := range tests {
		bins := binPack(files(tc.sizes...), 100)
		var got []int
		for _, b := range bins {
			got = append(got, len(b.Files))
			if b.Bytes > 100 {
				t.Errorf("%v: bin of %d bytes > target", tc.sizes, b.Bytes)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%v: bins %v, want %v", tc.sizes, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: bins %v, want %v", tc.sizes, got, tc.want)
			}
		}
	}
}

type commitlogAdd = commitlog.Add

// TestLeafTypes: the primitive leaves of a schemaString by dotted path; an
// unparsable schemaString is an error (it used to be an empty map, so
// --sort-by reported "no such column" and merged stats lost their types).
func TestLeafTypes(t *testing.T) {
	got, err := leafTypes(`{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},` +
		`{"name":"s","type":{"type":"struct","fields":[{"name":"b","type":"string","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},` +
		`{"name":"l","type":{"type":"array","elementType":"long","containsNull":false},"nullable":true,"metadata":{}}]}`)
	if err != nil || len(got) != 2 || got["a"] != "long" || got["s.b"] != "string" {
		t.Errorf("leafTypes = %v, %v; want a:long, s.b:string", got, err)
	}
	if got, err := leafTypes(""); err != nil || len(got) != 0 {
		t.Errorf("empty schemaString: %v, %v", got, err)
	}
	if _, err := leafTypes(`{"type":"struct","fields":[{"name":"a"`); err == nil {
		t.Error("truncated schemaString accepted")
	}
	if err := checkSortBy(commitlog.Metadata{SchemaString: `{"fields":7}`}, "a"); err == nil || errors.Is(err, ErrSortBy) {
		t.Errorf("--sort-by on an unparsable schema: %v, want the schema's error", err)
	}
}
