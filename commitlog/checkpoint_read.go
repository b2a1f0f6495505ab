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
	err = parseCheckpointAt(bytes.NewReader(data), int64(len(data)), func(a Action) { actions = append(actions, a) })
	if err != nil {
		return nil, err
	}
	return actions, nil
}

// parseCheckpointAt is ParseCheckpoint reading the size-byte file through
// ra (a checkpoint on local disk is not read into memory) and handing each
// action to f as it is decoded (loading a snapshot never holds all of a
// checkpoint's actions). After an error f may have seen some of the
// actions.
func parseCheckpointAt(ra io.ReaderAt, size int64, f func(Action)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt checkpoint: parquet decoder failed: %v", r)
		}
	}()
	if err := checkParquetBoundsAt(ra, size); err != nil {
		return fmt.Errorf("corrupt checkpoint: %w", err)
	}
	pf, err := parquet.OpenFile(ra, size,
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("corrupt checkpoint: %w", err)
	}
	if pf.Schema() == nil || len(pf.Schema().Fields()) == 0 {
		return errors.New("corrupt checkpoint: empty schema")
	}
	if pf.Schema().String() == typedSchema {
		// A row the typed decoder cannot take is found before any action
		// is handed on (typedCheck), so f never sees an action twice.
		if err := typedCheck(pf); err == nil {
			if err := parseColumns(pf, f); err != nil {
				return fmt.Errorf("corrupt checkpoint: %w", err)
			}
			return nil
		} else if !errors.Is(err, errNotTyped) {
			return fmt.Errorf("corrupt checkpoint: %w", err)
		}
	}
	actions, err := parseGeneric(pf)
	if err != nil {
		return err
	}
	for _, a := range actions {
		f(a)
	}
	return nil
}

// typedSchema is the schema parseTyped reads.
var typedSchema = CheckpointSchema().String()

// parseGeneric decodes any checkpoint layout through generic values.
func parseGeneric(pf *parquet.File) (actions []Action, err error) {
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

// errNotTyped means a checkpoint holds something the typed decoder does not
// model (deletion vectors, row tracking): the generic decoder reads it.
var errNotTyped = errors.New("checkpoint needs the generic decoder")

// typedCheck returns errNotTyped when some row of pf uses a column the
// typed decoder does not model (deletion vectors, row tracking), judged
// from the column chunks' null counts without decoding the rows.
func typedCheck(pf *parquet.File) error {
	unmodeled := map[string]bool{}
	for _, top := range []string{"add", "remove"} {
		for _, c := range []string{"deletionVector", "baseRowId", "defaultRowCommitVersion"} {
			unmodeled[top+"."+c] = true
		}
	}
	leaves := pf.Schema().Columns()
	for _, rg := range pf.Metadata().RowGroups {
		for i, cc := range rg.Columns {
			if i >= len(leaves) || len(leaves[i]) < 2 || !unmodeled[leaves[i][0]+"."+leaves[i][1]] {
				continue
			}
			st := cc.MetaData.Statistics
			if st.NullCount < 0 || st.NullCount != cc.MetaData.NumValues {
				return errNotTyped
			}
		}
	}
	return nil
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func derefMap(m map[string]*string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = deref(v)
	}
	return out
}

func derefList(l []*string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = deref(v)
	}
	return out
}

// typedAction converts one checkpoint row; ok is false for an empty row.
func typedAction(row *cpRow) (a Action, ok bool, err error) {
	switch {
	case row.Add != nil:
		c := row.Add
		if c.DeletionVector != nil || c.BaseRowID != nil || c.DefaultRowCommitVersion != nil || c.Path == nil {
			return Action{}, false, errNotTyped
		}
		pv := c.PartitionValues
		if pv == nil {
			pv = map[string]*string{}
		}
		return Action{Add: &Add{Path: *c.Path, PartitionValues: pv, Size: deref(c.Size), ModificationTime: deref(c.ModificationTime),
			DataChange: deref(c.DataChange), Stats: deref(c.Stats), Tags: derefMap(c.Tags)}}, true, nil
	case row.Remove != nil:
		c := row.Remove
		if c.DeletionVector != nil || c.BaseRowID != nil || c.DefaultRowCommitVersion != nil || c.Path == nil {
			return Action{}, false, errNotTyped
		}
		return Action{Remove: &Remove{Path: *c.Path, DeletionTimestamp: c.DeletionTimestamp, DataChange: deref(c.DataChange),
			ExtendedFileMetadata: c.ExtendedFileMetadata, PartitionValues: c.PartitionValues, Size: c.Size}}, true, nil
	case row.Txn != nil:
		c := row.Txn
		return Action{Txn: &Txn{AppID: deref(c.AppID), Version: deref(c.Version), LastUpdated: c.LastUpdated}}, true, nil
	case row.Protocol != nil:
		c := row.Protocol
		return Action{Protocol: &Protocol{MinReaderVersion: int(deref(c.MinReaderVersion)), MinWriterVersion: int(deref(c.MinWriterVersion)),
			ReaderFeatures: derefList(c.ReaderFeatures), WriterFeatures: derefList(c.WriterFeatures)}}, true, nil
	case row.MetaData != nil:
		c := row.MetaData
		md := &Metadata{ID: deref(c.ID), Name: deref(c.Name), Description: deref(c.Description), SchemaString: deref(c.SchemaString),
			PartitionColumns: derefList(c.PartitionColumns), Configuration: derefMap(c.Configuration), CreatedTime: c.CreatedTime}
		if c.Format != nil {
			md.Format = Format{Provider: deref(c.Format.Provider), Options: derefMap(c.Format.Options)}
		}
		return Action{Metadata: md}, true, nil
	case row.DomainMetadata != nil:
		c := row.DomainMetadata
		m := map[string]any{}
		if c.Domain != nil {
			m["domain"] = *c.Domain
		}
		if c.Configuration != nil {
			m["configuration"] = *c.Configuration
		}
		if c.Removed != nil {
			m["removed"] = *c.Removed
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return Action{}, false, err
		}
		return Action{Other: &RawAction{Name: "domainMetadata", JSON: raw}}, true, nil
	}
	return Action{}, false, nil
}
