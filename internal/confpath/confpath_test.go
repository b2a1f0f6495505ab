package confpath

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type size int64

func (s *size) UnmarshalText(b []byte) error {
	if strings.HasSuffix(string(b), "KiB") {
		var n int64
		for _, c := range strings.TrimSuffix(string(b), "KiB") {
			n = n*10 + int64(c-'0')
		}
		*s = size(n * 1024)
		return nil
	}
	return errBadSize
}

type sizeErr string

func (e sizeErr) Error() string { return string(e) }

const errBadSize = sizeErr("bad size")

type flush struct {
	MaxRows  int           `yaml:"max_rows"`
	MaxBytes size          `yaml:"max_bytes"`
	MaxAge   time.Duration `yaml:"max_age"`
}

type table struct {
	URI    string   `yaml:"uri"`
	Topics []string `yaml:"topics"`
	Flush  flush    `yaml:"flush"`
	Meta   *bool    `yaml:"kafka_metadata"`
}

type cfg struct {
	Brokers []string `yaml:"brokers"`
	GroupID string   `yaml:"group_id"`
	Debug   bool     `yaml:"debug"`
	Ratio   float64  `yaml:"ratio"`
	Tables  []table  `yaml:"tables"`
	hidden  string   //lint:ignore U1000 an unexported field must not be settable (TestSetErrors)
}

func TestSet(t *testing.T) {
	var c cfg
	sets := [][2]string{
		{"brokers", "a:1, b:2"},
		{"group_id", "g"},
		{"debug", "true"},
		{"ratio", "0.25"},
		{"tables.0.uri", "s3://b/t"},
		{"tables.0.topics", "x,y"},
		{"tables.0.flush.max_rows", "100"},
		{"tables.0.flush.max_bytes", "2KiB"},
		{"tables.0.flush.max_age", "90s"},
		{"tables.0.kafka_metadata", "false"},
		{"tables.1.uri", "file:///tmp/t2"},
	}
	for _, s := range sets {
		if err := Set(&c, s[0], s[1]); err != nil {
			t.Fatalf("Set(%s): %v", s[0], err)
		}
	}
	f := false
	want := cfg{
		Brokers: []string{"a:1", "b:2"}, GroupID: "g", Debug: true, Ratio: 0.25,
		Tables: []table{
			{URI: "s3://b/t", Topics: []string{"x", "y"}, Flush: flush{MaxRows: 100, MaxBytes: 2048, MaxAge: 90 * time.Second}, Meta: &f},
			{URI: "file:///tmp/t2"},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct{ path, value, wantSub string }{
		{"nope", "1", `unknown setting "nope"`},
		{"tables.x.uri", "1", "is not a list index"},
		{"tables.3.uri", "1", "skips entries"},
		{"debug", "yes please", "not true or false"},
		{"tables.0.flush.max_rows", "many", "not an integer"},
		{"tables.0.flush.max_age", "soon", "not a duration"},
		{"tables.0.flush.max_bytes", "9TB", "bad size"},
		{"tables.0.flush", "1", "group of settings"},
		{"group_id.x", "1", "has no setting"},
		{"a..b", "1", "empty path segment"},
		{"hidden", "1", "unknown setting"},
	}
	for _, tt := range tests {
		var c cfg
		err := Set(&c, tt.path, tt.value)
		if err == nil || !strings.Contains(err.Error(), tt.wantSub) {
			t.Errorf("Set(%q, %q) = %v, want error containing %q", tt.path, tt.value, err, tt.wantSub)
		}
		if err != nil && !strings.HasPrefix(err.Error(), tt.path) && tt.path != "a..b" {
			t.Errorf("error %q does not name the setting %q", err, tt.path)
		}
	}
}

func TestFromEnv(t *testing.T) {
	var c cfg
	env := []string{
		"PROTOLAKE_GROUP_ID=grp",
		"PROTOLAKE_TABLES_0_FLUSH_MAX_ROWS=7",
		"PROTOLAKE_TABLES_0_URI=file:///x",
		"PROTOLAKE_TABLES_1_KAFKA_METADATA=true",
		"PROTOLAKE_CONFIG=ignored.yaml",
		"OTHER_GROUP_ID=no",
	}
	if err := FromEnv(&c, env, "PROTOLAKE_", "PROTOLAKE_CONFIG"); err != nil {
		t.Fatal(err)
	}
	if c.GroupID != "grp" || len(c.Tables) != 2 || c.Tables[0].Flush.MaxRows != 7 || c.Tables[0].URI != "file:///x" || c.Tables[1].Meta == nil || !*c.Tables[1].Meta {
		t.Fatalf("got %+v", c)
	}
	err := FromEnv(&c, []string{"PROTOLAKE_TABLES_0_FLUSH_MAX_ROWZ=1"}, "PROTOLAKE_")
	if err == nil || !strings.Contains(err.Error(), "PROTOLAKE_TABLES_0_FLUSH_MAX_ROWZ") || !strings.Contains(err.Error(), "max_rows") {
		t.Fatalf("unknown env var error = %v, want it to name the variable and list known settings", err)
	}
}

// TestDecodeYAMLErrors: every unknown key and bad value at once, each with
// its line, in the words Set uses for flags.
func TestDecodeYAMLErrors(t *testing.T) {
	doc := `brokers: [a:1]
group_id: g
grup_id: g
ratio: lots
tables:
  - uri: s3://b/t
    flush:
      max_rows: many
      max_age: 30
      max_bytes: [1]
  - urii: x
group_id: h
`
	var c cfg
	err := DecodeYAML([]byte(doc), &c)
	want := `line 3: grup_id: unknown setting "grup_id" (known here: brokers, debug, group_id, ratio, tables)
line 4: ratio: "lots" is not a number
line 8: tables.0.flush.max_rows: "many" is not an integer
line 9: tables.0.flush.max_age: "30" is not a duration (e.g. 30s, 5m): time: missing unit in duration "30"
line 10: tables.0.flush.max_bytes: want a single value, got a list
line 11: tables.1.urii: unknown setting "urii" (known here: kafka_metadata, topics, uri, flush)
line 12: group_id: set twice (first on line 2)`
	want = strings.Replace(want, "kafka_metadata, topics, uri, flush", "flush, kafka_metadata, topics, uri", 1)
	if err == nil || err.Error() != want {
		t.Fatalf("DecodeYAML error:\n%v\nwant\n%s", err, want)
	}
	// What was valid is decoded.
	if c.GroupID != "g" || len(c.Brokers) != 1 || len(c.Tables) != 2 || c.Tables[0].URI != "s3://b/t" {
		t.Errorf("decoded %+v", c)
	}
}

// TestDecodeYAMLSyntaxLines: a syntax error names the line the problem is
// on (yaml.v3 itself reports the line before for these), and quotes it.
func TestDecodeYAMLSyntaxLines(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"brokers: [a:1\n", `not valid YAML: line 1 ("brokers: [a:1"): did not find expected ',' or ']'`},
		{"group_id: g\nbrokers: [a:1\n", `not valid YAML: line 2 ("brokers: [a:1"): did not find expected ',' or ']'`},
		{"tables:\n  - uri: x\n    topics: [a]\n   - b\n", `not valid YAML: line 4 ("   - b"): did not find expected '-' indicator`},
		{"tables:\n  - uri: x\n    topics: [a]\n  - b\n  uri: y\n", `not valid YAML: line 5 ("  uri: y"): did not find expected '-' indicator`},
		{"group_id: g\nratio: a: b\n", `not valid YAML: line 2 ("ratio: a: b"): mapping values are not allowed in this context`},
		{"group_id: g\n\tratio: 1\n", `not valid YAML: line 2 ("\tratio: 1"): found a tab character that violates indentation`},
	} {
		var c cfg
		err := DecodeYAML([]byte(tt.doc), &c)
		if !errors.Is(err, ErrSyntax) || err.Error() != tt.want {
			t.Errorf("DecodeYAML(%q) = %v\nwant %s", tt.doc, err, tt.want)
		}
	}
}
