package schema

import (
	"fmt"
	"strings"
)

// EnumMode says how enum fields are stored.
type EnumMode string

// Enum modes.
const (
	// EnumString stores the value's name (an unknown number as its decimal
	// string) in a string column. The default.
	EnumString EnumMode = "string"
	// EnumInt stores the number in an integer column.
	EnumInt EnumMode = "int"
)

// Uint64Mode says how uint64 and fixed64 fields are stored.
type Uint64Mode string

// Uint64 modes.
const (
	// Uint64Decimal stores the exact value as decimal(20,0). The default.
	Uint64Decimal Uint64Mode = "decimal"
	// Uint64Long stores the 64 bits as a long: values ≥ 2^63 read as
	// negative numbers. Smaller and faster to query, exact for values
	// below 2^63 (hashes and ids usually are compared, not ordered).
	Uint64Long Uint64Mode = "long"
)

// Options configures how a message becomes a table. The zero value is the
// default configuration; each field maps one-to-one onto the YAML key in its
// tag and onto the `protolake schema` flag of the same name.
type Options struct {
	// Enums is "string" (default when empty) or "int".
	Enums EnumMode `yaml:"enums"`

	// Uint64 is "decimal" (default when empty) or "long".
	Uint64 Uint64Mode `yaml:"uint64"`

	// MaxRecursionDepth is how many times a recursive message is unrolled
	// below its first occurrence on a path; the field that would go deeper
	// is stored as the serialized message bytes (binary). 0 (default)
	// makes a recursive message an error that names the cycle.
	MaxRecursionDepth int `yaml:"max_recursion_depth"`

	// NoKafkaMeta leaves out the `_kafka` metadata column
	// (struct<topic, partition, offset, timestamp>). Default false: present.
	NoKafkaMeta bool `yaml:"no_kafka_meta"`

	// NoUnknown leaves out the `_unknown` column (wire bytes of top-level
	// fields the descriptor does not know). Default false: present.
	NoUnknown bool `yaml:"no_unknown"`

	// Partitions are the partition columns, in order. Each is one of:
	//   FIELD                 identity of a top-level primitive field
	//   day(FIELD)            UTC date of a top-level Timestamp field
	//   hour(FIELD)           the Timestamp truncated to the UTC hour
	//   day(_kafka.timestamp) / hour(_kafka.timestamp)  of the record time
	// optionally prefixed with "NAME=" to name the column (default: FIELD
	// for identity, FIELD_day / FIELD_hour, kafka_day / kafka_hour).
	Partitions []string `yaml:"partitions"`
}

// MaxRecursionDepthLimit bounds Options.MaxRecursionDepth: every level
// multiplies the columns of a recursive message.
const MaxRecursionDepthLimit = 32

// MaxTypeDepth is the deepest nesting of a column's Delta type a table may
// have: the column's own type is at level 0 and each struct, array or map
// adds a level. Derive refuses a schema deeper than this (a
// *TypeDepthError), and every reader of a schemaString in protolake
// (schema.ParseSchemaString, commitlog's schema parser) accepts exactly this
// much, so a table protolake writes is always one it can inspect and
// compact. A recursive message unrolled with MaxRecursionDepth can reach it:
// a repeated self-reference costs two levels per unrolled level.
const MaxTypeDepth = 64

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch o.Enums {
	case "", EnumString, EnumInt:
	default:
		return fmt.Errorf("option enums: %q is not one of string, int", o.Enums)
	}
	switch o.Uint64 {
	case "", Uint64Decimal, Uint64Long:
	default:
		return fmt.Errorf("option uint64: %q is not one of decimal, long", o.Uint64)
	}
	if o.MaxRecursionDepth < 0 || o.MaxRecursionDepth > MaxRecursionDepthLimit {
		return fmt.Errorf("option max_recursion_depth: %d is outside 0..%d", o.MaxRecursionDepth, MaxRecursionDepthLimit)
	}
	seen := map[string]bool{}
	for _, p := range o.Partitions {
		spec, err := parsePartition(p)
		if err != nil {
			return err
		}
		if seen[strings.ToLower(spec.name)] {
			return fmt.Errorf("option partitions: column %q is listed twice", spec.name)
		}
		seen[strings.ToLower(spec.name)] = true
	}
	return nil
}

func (o Options) enums() EnumMode {
	if o.Enums == "" {
		return EnumString
	}
	return o.Enums
}

func (o Options) uint64() Uint64Mode {
	if o.Uint64 == "" {
		return Uint64Decimal
	}
	return o.Uint64
}

// kafkaTimestampSource is how a partition spec names the Kafka timestamp.
const kafkaTimestampSource = "_kafka.timestamp"

type partitionSpec struct {
	raw       string
	name      string
	transform Transform
	source    string // field name or kafkaTimestampSource
}

// parsePartition parses one Options.Partitions entry.
func parsePartition(s string) (partitionSpec, error) {
	spec := partitionSpec{raw: s}
	expr := strings.TrimSpace(s)
	if name, rest, ok := strings.Cut(expr, "="); ok {
		spec.name = strings.TrimSpace(name)
		expr = strings.TrimSpace(rest)
		if spec.name == "" {
			return spec, fmt.Errorf("option partitions: %q has an empty column name before '='", s)
		}
	}
	spec.source = expr
	for _, t := range []Transform{Day, Hour} {
		prefix := t.String() + "("
		if strings.HasPrefix(expr, prefix) {
			if !strings.HasSuffix(expr, ")") {
				return spec, fmt.Errorf("option partitions: %q: missing ')'", s)
			}
			spec.transform = t
			spec.source = strings.TrimSpace(expr[len(prefix) : len(expr)-1])
		}
	}
	if spec.source == "" {
		return spec, fmt.Errorf("option partitions: %q names no source field; use FIELD, day(FIELD), hour(FIELD) or day(_kafka.timestamp)", s)
	}
	if strings.ContainsAny(spec.source, "() ") {
		return spec, fmt.Errorf("option partitions: %q: unknown transform; use FIELD, day(FIELD), hour(FIELD), day(_kafka.timestamp) or hour(_kafka.timestamp), optionally as NAME=…", s)
	}
	if spec.source == kafkaTimestampSource && spec.transform == Identity {
		return spec, fmt.Errorf("option partitions: %q: the Kafka timestamp needs a transform: day(_kafka.timestamp) or hour(_kafka.timestamp)", s)
	}
	if spec.name == "" {
		base := spec.source
		if base == kafkaTimestampSource {
			base = "kafka"
		}
		switch spec.transform {
		case Identity:
			spec.name = base
		default:
			spec.name = base + "_" + spec.transform.String()
		}
	}
	return spec, nil
}
