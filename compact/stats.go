package compact

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
)

// leafTypes maps a dotted column path to its Delta type name for the
// primitive leaves of a schemaString (struct fields nested as "a.b"). An
// empty schemaString has none; one that does not parse is an error.
func leafTypes(schemaString string) (map[string]string, error) {
	out := map[string]string{}
	if schemaString == "" {
		return out, nil
	}
	st, err := schema.ParseSchemaString(schemaString)
	if err != nil {
		return nil, fmt.Errorf("table schema: %w", err)
	}
	var walk func(prefix string, t *schema.StructType)
	walk = func(prefix string, t *schema.StructType) {
		for _, f := range t.Fields {
			switch ft := f.Type.(type) {
			case schema.PrimitiveType:
				out[prefix+f.Name] = string(ft)
			case *schema.StructType:
				walk(prefix+f.Name+".", ft)
			}
		}
	}
	walk("", st)
	return out, nil
}

// mergeStats merges the statistics of the inputs of one new file. rows is
// the new file's row count (from the Parquet footers). It returns "" only
// when encoding fails.
func mergeStats(inputs []commitlog.Add, rows int64, types map[string]string) string {
	parsed := make([]*commitlog.FileStats, 0, len(inputs))
	all := true
	for _, in := range inputs {
		fs, err := commitlog.ParseStats(in.Stats)
		if err != nil {
			all = false
			break
		}
		parsed = append(parsed, fs)
	}
	out := commitlog.FileStats{NumRecords: &rows}
	if all && len(parsed) > 0 {
		mins := make([]boundsInput, len(parsed))
		maxs := make([]boundsInput, len(parsed))
		nulls := make([]map[string]any, len(parsed))
		tight := true
		tightSet := false
		for i, p := range parsed {
			var n int64 = -1
			if p.NumRecords != nil {
				n = *p.NumRecords
			}
			mins[i] = boundsInput{p.MinValues, p.NullCount, n}
			maxs[i] = boundsInput{p.MaxValues, p.NullCount, n}
			nulls[i] = p.NullCount
			if p.TightBounds != nil {
				tightSet = true
				tight = tight && *p.TightBounds
			}
		}
		out.MinValues = mergeBounds(mins, "", types, -1)
		out.MaxValues = mergeBounds(maxs, "", types, +1)
		out.NullCount = mergeCounts(nulls)
		if tightSet {
			out.TightBounds = &tight
		}
	}
	b, err := out.JSON()
	if err != nil {
		return ""
	}
	return b
}

// boundsInput is one input's bounds with what is needed to tell "no bound
// because every value is null" (safe to skip) from "no bound recorded".
type boundsInput struct {
	bounds map[string]any
	nulls  map[string]any
	rows   int64
}

// mergeBounds keeps, for each key, the smallest (dir -1) or largest (dir
// +1) value over the inputs, recursing into nested structs. An input without
// a bound for a key is skipped when its null count says the column is all
// null there; otherwise the key is dropped: a missing bound is always safe,
// a wrong one is not. Values that cannot be compared drop the key too.
func mergeBounds(in []boundsInput, prefix string, types map[string]string, dir int) map[string]any {
	keys := map[string]bool{}
	for _, b := range in {
		for k := range b.bounds {
			keys[k] = true
		}
	}
	out := map[string]any{}
	for k := range keys {
		path := prefix + k
		nested := false
		for _, b := range in {
			if _, ok := b.bounds[k].(map[string]any); ok {
				nested = true
			}
		}
		if nested {
			subs := make([]boundsInput, 0, len(in))
			for _, b := range in {
				sb, _ := b.bounds[k].(map[string]any)
				sn, _ := b.nulls[k].(map[string]any)
				subs = append(subs, boundsInput{bounds: sb, nulls: sn, rows: b.rows})
			}
			if merged := mergeBounds(subs, path+".", types, dir); len(merged) > 0 {
				out[k] = merged
			}
			continue
		}
		var best any
		ok := true
		for _, b := range in {
			v, present := b.bounds[k]
			if !present || v == nil {
				if n, isNum := b.nulls[k].(json.Number); isNum && n.String() == strconv.FormatInt(b.rows, 10) {
					continue // all null in this input: no bound to merge
				}
				ok = false
				break
			}
			if best == nil {
				best = v
				continue
			}
			c, comparable := compareStat(v, best, types[path])
			if !comparable {
				ok = false
				break
			}
			if c*dir > 0 {
				best = v
			}
		}
		if ok && best != nil {
			out[k] = best
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// compareStat compares two statistics values of a column of Delta type typ.
func compareStat(a, b any, typ string) (int, bool) {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return 0, false
		}
		fa, okA := new(big.Float).SetString(x.String())
		fb, okB := new(big.Float).SetString(y.String())
		if !okA || !okB {
			return 0, false
		}
		return fa.Cmp(fb), true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		if strings.HasPrefix(typ, "timestamp") {
			ta, errA := time.Parse(time.RFC3339Nano, x)
			tb, errB := time.Parse(time.RFC3339Nano, y)
			if errA != nil || errB != nil {
				return 0, false
			}
			return ta.Compare(tb), true
		}
		if typ != "" && typ != "string" && typ != "date" {
			return 0, false // unknown representation (e.g. decimal as string)
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

// mergeCounts sums null counts present in every input.
func mergeCounts(in []map[string]any) map[string]any {
	if len(in) == 0 || in[0] == nil {
		return nil
	}
	out := map[string]any{}
	for k, v0 := range in[0] {
		if sub, ok := v0.(map[string]any); ok {
			subs := []map[string]any{sub}
			for _, m := range in[1:] {
				s, ok := m[k].(map[string]any)
				if !ok {
					subs = nil
					break
				}
				subs = append(subs, s)
			}
			if subs != nil {
				if merged := mergeCounts(subs); len(merged) > 0 {
					out[k] = merged
				}
			}
			continue
		}
		sum := new(big.Int)
		ok := true
		for _, m := range in {
			n, isNum := m[k].(json.Number)
			if !isNum {
				ok = false
				break
			}
			v, good := new(big.Int).SetString(n.String(), 10)
			if !good {
				ok = false
				break
			}
			sum.Add(sum, v)
		}
		if ok {
			out[k] = json.Number(sum.String())
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
