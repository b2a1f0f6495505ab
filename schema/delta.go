package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// DataType is a Delta (Spark SQL) data type: a PrimitiveType, *ArrayType,
// *MapType or *StructType.
type DataType interface {
	// String returns the Spark SQL type name, e.g. "array<string>".
	String() string
	isDataType()
}

// PrimitiveType is a Delta primitive type name as it appears in the
// schemaString: "integer", "long", "float", "double", "boolean", "string",
// "binary", "date", "timestamp", "decimal(20,0)".
type PrimitiveType string

// Delta primitive types used by protolake.
const (
	TypeInteger   PrimitiveType = "integer"
	TypeLong      PrimitiveType = "long"
	TypeFloat     PrimitiveType = "float"
	TypeDouble    PrimitiveType = "double"
	TypeBoolean   PrimitiveType = "boolean"
	TypeString    PrimitiveType = "string"
	TypeBinary    PrimitiveType = "binary"
	TypeDate      PrimitiveType = "date"
	TypeTimestamp PrimitiveType = "timestamp"
	TypeDecimal20 PrimitiveType = "decimal(20,0)"
)

// String returns the type name.
func (t PrimitiveType) String() string { return string(t) }
func (PrimitiveType) isDataType()      {}

// ArrayType is a Delta array.
type ArrayType struct {
	ElementType  DataType
	ContainsNull bool
}

// String returns "array<T>".
func (t *ArrayType) String() string { return "array<" + t.ElementType.String() + ">" }
func (*ArrayType) isDataType()      {}

// MapType is a Delta map.
type MapType struct {
	KeyType           DataType
	ValueType         DataType
	ValueContainsNull bool
}

// String returns "map<K,V>".
func (t *MapType) String() string {
	return "map<" + t.KeyType.String() + "," + t.ValueType.String() + ">"
}
func (*MapType) isDataType() {}

// StructType is a Delta struct, and the type of a whole table schema.
type StructType struct {
	Fields []*StructField
}

// String returns "struct<name:type,…>".
func (t *StructType) String() string {
	parts := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		parts[i] = f.Name + ":" + f.Type.String()
	}
	return "struct<" + strings.Join(parts, ",") + ">"
}
func (*StructType) isDataType() {}

// Field returns the field named name (exactly), or nil.
func (t *StructType) Field(name string) *StructField {
	for _, f := range t.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// StructField is one field of a Delta struct.
type StructField struct {
	Name     string
	Type     DataType
	Nullable bool
	// Metadata is the field's metadata; values are string, int64, float64,
	// bool, nil, []any or map[string]any as JSON decodes them (integers as
	// int64).
	Metadata map[string]any
}

// Field metadata keys protolake writes on every proto-derived column.
const (
	// MetaFieldNumber is the proto field number (long).
	MetaFieldNumber = "protolake.field_number"
	// MetaType is the proto type as declared: "int32", "enum pkg.E",
	// "message pkg.M", "group pkg.M.G", prefixed "repeated " for lists, or
	// "map<K, V>".
	MetaType = "protolake.type"
	// MetaUnit is the unit of a Duration column ("microseconds").
	MetaUnit = "protolake.unit"
	// MetaEncoding is how a non-native value is encoded in its column:
	// "protojson" (Struct, Value, ListValue), "protobuf" (recursion cut),
	// "enum number" (enums: int), "uint64 bits" (uint64: long).
	MetaEncoding = "protolake.encoding"
	// MetaPartition marks a partition column and gives its expression,
	// e.g. "identity(country)" or "day(event_time)".
	MetaPartition = "protolake.partition"
	// MetaColumn marks the metadata columns: "kafka", "unknown".
	MetaColumn = "protolake.column"
)

// FieldNumber returns the proto field number recorded in the field's
// metadata, or 0.
func (f *StructField) FieldNumber() int {
	switch v := f.Metadata[MetaFieldNumber].(type) {
	case int64:
		return int(v)
	case float64:
		return int(v)
	case int:
		return v
	}
	return 0
}

func (f *StructField) metaString(key string) string {
	s, _ := f.Metadata[key].(string)
	return s
}

// MarshalJSON writes the type exactly as Spark's DataType.json does
// (compact, keys in Spark's order, metadata keys sorted).
func (t *StructType) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := writeType(&b, t); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// UnmarshalJSON parses a Spark/Delta struct type.
func (t *StructType) UnmarshalJSON(data []byte) error {
	dt, err := parseType(data, -1) // the table's struct: its columns are at depth 0
	if err != nil {
		return err
	}
	st, ok := dt.(*StructType)
	if !ok {
		return fmt.Errorf("schema is a %s, not a struct", dt)
	}
	*t = *st
	return nil
}

// ParseSchemaString parses a Delta metaData.schemaString.
func ParseSchemaString(s string) (*StructType, error) {
	var st StructType
	if err := st.UnmarshalJSON([]byte(s)); err != nil {
		return nil, fmt.Errorf("parse Delta schemaString: %w", err)
	}
	return &st, nil
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Truncate(b.Len() - 1)
}

func writeType(b *bytes.Buffer, dt DataType) error {
	switch t := dt.(type) {
	case PrimitiveType:
		writeString(b, string(t))
	case *ArrayType:
		b.WriteString(`{"type":"array","elementType":`)
		if err := writeType(b, t.ElementType); err != nil {
			return err
		}
		fmt.Fprintf(b, `,"containsNull":%t}`, t.ContainsNull)
	case *MapType:
		b.WriteString(`{"type":"map","keyType":`)
		if err := writeType(b, t.KeyType); err != nil {
			return err
		}
		b.WriteString(`,"valueType":`)
		if err := writeType(b, t.ValueType); err != nil {
			return err
		}
		fmt.Fprintf(b, `,"valueContainsNull":%t}`, t.ValueContainsNull)
	case *StructType:
		b.WriteString(`{"type":"struct","fields":[`)
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":`)
			writeString(b, f.Name)
			b.WriteString(`,"type":`)
			if err := writeType(b, f.Type); err != nil {
				return err
			}
			fmt.Fprintf(b, `,"nullable":%t,"metadata":`, f.Nullable)
			if err := writeValue(b, f.Metadata); err != nil {
				return fmt.Errorf("metadata of %s: %w", f.Name, err)
			}
			b.WriteByte('}')
		}
		b.WriteString(`]}`)
	default:
		return fmt.Errorf("unknown data type %T", dt)
	}
	return nil
}

func writeValue(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, v)
	case bool:
		fmt.Fprintf(b, "%t", v)
	case int:
		fmt.Fprintf(b, "%d", v)
	case int64:
		fmt.Fprintf(b, "%d", v)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("metadata value %v is not JSON", v)
		}
		enc, _ := json.Marshal(v)
		b.Write(enc)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeValue(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeValue(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("metadata value of type %T", v)
	}
	return nil
}

func parseType(data []byte, depth int) (DataType, error) {
	if depth > MaxTypeDepth {
		return nil, fmt.Errorf("type nested deeper than %d levels", MaxTypeDepth)
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, err
		}
		return PrimitiveType(s), nil
	}
	var obj struct {
		Type              string            `json:"type"`
		ElementType       json.RawMessage   `json:"elementType"`
		ContainsNull      bool              `json:"containsNull"`
		KeyType           json.RawMessage   `json:"keyType"`
		ValueType         json.RawMessage   `json:"valueType"`
		ValueContainsNull bool              `json:"valueContainsNull"`
		Fields            []json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	switch obj.Type {
	case "array":
		if obj.ElementType == nil {
			return nil, fmt.Errorf("array without elementType")
		}
		et, err := parseType(obj.ElementType, depth+1)
		if err != nil {
			return nil, err
		}
		return &ArrayType{ElementType: et, ContainsNull: obj.ContainsNull}, nil
	case "map":
		if obj.KeyType == nil || obj.ValueType == nil {
			return nil, fmt.Errorf("map without keyType or valueType")
		}
		kt, err := parseType(obj.KeyType, depth+1)
		if err != nil {
			return nil, err
		}
		vt, err := parseType(obj.ValueType, depth+1)
		if err != nil {
			return nil, err
		}
		return &MapType{KeyType: kt, ValueType: vt, ValueContainsNull: obj.ValueContainsNull}, nil
	case "struct":
		st := &StructType{}
		for _, raw := range obj.Fields {
			var f struct {
				Name     string          `json:"name"`
				Type     json.RawMessage `json:"type"`
				Nullable bool            `json:"nullable"`
				Metadata json.RawMessage `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &f); err != nil {
				return nil, err
			}
			if f.Type == nil {
				return nil, fmt.Errorf("field %q has no type", f.Name)
			}
			ft, err := parseType(f.Type, depth+1)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			meta := map[string]any{}
			if len(f.Metadata) > 0 && string(f.Metadata) != "null" {
				dec := json.NewDecoder(bytes.NewReader(f.Metadata))
				dec.UseNumber()
				var m map[string]any
				if err := dec.Decode(&m); err != nil {
					return nil, fmt.Errorf("field %q metadata: %w", f.Name, err)
				}
				for k, v := range m {
					meta[k] = normalizeNumbers(v)
				}
			}
			st.Fields = append(st.Fields, &StructField{Name: f.Name, Type: ft, Nullable: f.Nullable, Metadata: meta})
		}
		return st, nil
	default:
		return nil, fmt.Errorf("unknown data type %q", obj.Type)
	}
}

func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = normalizeNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = normalizeNumbers(v[k])
		}
	}
	return v
}
