package commitlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/parquet-go/parquet-go"
)

// checkpointColumns are the top-level checkpoint columns that carry table
// state. commitInfo (old delta-rs layouts) and cdc are commit-scoped and are
// skipped; unknown columns are kept as RawAction.
var skipCheckpointColumns = map[string]bool{"commitInfo": true, "cdc": true}

// checkpointOnlyFields are derived columns some writers add next to the
// string forms (writeStatsAsStruct); they are tolerated and dropped because
// the string forms carry the same facts.
var checkpointOnlyFields = map[string]bool{"stats_parsed": true, "partitionValues_parsed": true}

// ParseCheckpoint decodes a Parquet checkpoint file (any layout Spark or
// delta-rs writes: single-file or one part of a multi-part checkpoint) into
// the actions it holds. Corrupt input is an error, never a panic.
func ParseCheckpoint(data []byte) (actions []Action, err error) {
	defer func() {
		if r := recover(); r != nil {
			actions, err = nil, fmt.Errorf("corrupt checkpoint: parquet decoder failed: %v", r)
		}
	}()
	if err := checkParquetBounds(data); err != nil {
		return nil, fmt.Errorf("corrupt checkpoint: %w", err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("corrupt checkpoint: %w", err)
	}
	if pf.Schema() == nil || len(pf.Schema().Fields()) == 0 {
		return nil, errors.New("corrupt checkpoint: empty schema")
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	for row := int64(0); ; row++ {
		m := map[string]any{}
		if err := r.Read(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("corrupt checkpoint: row %d: %w", row, err)
		}
		for name, v := range m {
			if v == nil || skipCheckpointColumns[name] {
				continue
			}
			obj, ok := normalizeParquetValue(v).(map[string]any)
			if !ok {
				return nil, fmt.Errorf("corrupt checkpoint: row %d: column %q is not a struct", row, name)
			}
			for k, fv := range obj {
				if fv == nil || checkpointOnlyFields[k] {
					delete(obj, k)
				}
			}
			if a, ok := fastFileAction(name, obj); ok {
				actions = append(actions, a)
				continue
			}
			raw, err := json.Marshal(obj)
			if err != nil {
				return nil, fmt.Errorf("corrupt checkpoint: row %d column %q: %w", row, name, err)
			}
			a, err := decodeAction(name, raw)
			if err != nil {
				return nil, fmt.Errorf("checkpoint row %d: %w", row, err)
			}
			actions = append(actions, a)
		}
	}
	return actions, nil
}

// normalizeParquetValue turns the generic values parquet-go reconstructs
// into JSON-friendly ones: byte slices (map values of STRING columns) become
// strings.
func normalizeParquetValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return string(x)
	case string, bool, int32, int64, float32, float64, int, uint32, uint64:
		return v
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeParquetValue(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeParquetValue(e)
		}
		return x
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return normalizeParquetValue(rv.Elem().Interface())
	case reflect.Map:
		if rv.IsNil() {
			return nil
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := normalizeParquetValue(it.Key().Interface())
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			out[ks] = normalizeParquetValue(it.Value().Interface())
		}
		return out
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return string(b)
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalizeParquetValue(rv.Index(i).Interface())
		}
		return out
	}
	return v
}

// fastFileAction converts the add and remove rows that make up almost all of
// a checkpoint straight from the reconstructed values, skipping a JSON
// round trip. Anything unexpected (an unknown field to preserve, another
// type) returns false and takes the general path.
func fastFileAction(name string, obj map[string]any) (Action, bool) {
	switch name {
	case "add":
		a := &Add{}
		for k, v := range obj {
			ok := true
			switch k {
			case "path":
				a.Path, ok = v.(string)
			case "partitionValues":
				a.PartitionValues, ok = partitionMap(v)
			case "size":
				a.Size, ok = v.(int64)
			case "modificationTime":
				a.ModificationTime, ok = v.(int64)
			case "dataChange":
				a.DataChange, ok = v.(bool)
			case "stats":
				a.Stats, ok = v.(string)
			case "tags":
				a.Tags, ok = stringMap(v)
			default:
				ok = false
			}
			if !ok {
				return Action{}, false
			}
		}
		return Action{Add: a}, a.Path != ""
	case "remove":
		r := &Remove{}
		for k, v := range obj {
			ok := true
			switch k {
			case "path":
				r.Path, ok = v.(string)
			case "deletionTimestamp":
				var n int64
				n, ok = v.(int64)
				r.DeletionTimestamp = &n
			case "dataChange":
				r.DataChange, ok = v.(bool)
			case "extendedFileMetadata":
				var b bool
				b, ok = v.(bool)
				r.ExtendedFileMetadata = &b
			case "partitionValues":
				r.PartitionValues, ok = partitionMap(v)
			case "size":
				var n int64
				n, ok = v.(int64)
				r.Size = &n
			case "tags":
				r.Tags, ok = stringMap(v)
			default:
				ok = false
			}
			if !ok {
				return Action{}, false
			}
		}
		return Action{Remove: r}, r.Path != ""
	}
	return Action{}, false
}

func partitionMap(v any) (map[string]*string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make(map[string]*string, len(m))
	for k, e := range m {
		switch x := e.(type) {
		case nil:
			out[k] = nil
		case string:
			out[k] = &x
		default:
			return nil, false
		}
	}
	return out, true
}

func stringMap(v any) (map[string]string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		switch x := e.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = x
		default:
			return nil, false
		}
	}
	return out, true
}
