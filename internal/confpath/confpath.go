// Package confpath sets fields of a configuration struct by their YAML path,
// so that one YAML file, command-line flags and environment variables map
// onto the same Config one-to-one:
//
//	kafka.brokers=a:9092,b:9092       (flag --kafka.brokers=...)
//	tables.0.flush.max_rows=100000    (flag --tables.0.flush.max_rows=...)
//	PROTOLAKE_TABLES_0_FLUSH_MAX_ROWS (environment, same path)
//
// Path segments are the fields' `yaml` tag names; a numeric segment indexes a
// slice (an index equal to the length appends an element). Values are parsed
// by the field's type: encoding.TextUnmarshaler first, then string, bool,
// integers, floats, time.Duration, and []string (comma-separated).
package confpath

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Set assigns value to the field of the struct pointed to by dst at path.
func Set(dst any, path, value string) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("confpath: destination must be a pointer to a struct, got %T", dst)
	}
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			return fmt.Errorf("%s: empty path segment", path)
		}
	}
	return set(v.Elem(), segs, path, value)
}

func set(v reflect.Value, segs []string, path, value string) error {
	if len(segs) == 0 {
		return parseInto(v, path, value)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		// A pointer to a scalar (an optional setting) is parsed through.
		return set(v.Elem(), segs, path, value)
	case reflect.Struct:
		f, ok := fieldByTag(v, segs[0])
		if !ok {
			return fmt.Errorf("%s: unknown setting %q (known here: %s)", path, segs[0], strings.Join(tags(v.Type()), ", "))
		}
		return set(f, segs[1:], path, value)
	case reflect.Slice:
		i, err := strconv.Atoi(segs[0])
		if err != nil || i < 0 {
			return fmt.Errorf("%s: %q is not a list index", path, segs[0])
		}
		if i > v.Len() {
			return fmt.Errorf("%s: index %d skips entries (the list has %d)", path, i, v.Len())
		}
		if i == v.Len() {
			v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
		}
		return set(v.Index(i), segs[1:], path, value)
	default:
		return fmt.Errorf("%s: %q has no setting %q", path, strings.Join(segs, "."), segs[0])
	}
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

func parseInto(v reflect.Value, path, value string) error {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return parseInto(v.Elem(), path, value)
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(value)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration (e.g. 30s, 5m): %w", path, value, err)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", path, value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(value, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", path, value)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(value, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: %q is not a non-negative integer", path, value)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(value, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", path, value)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("%s: a list of %s is set one element at a time (%s.0.<field>=...)", path, v.Type().Elem(), path)
		}
		var items []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		sv := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, s := range items {
			sv.Index(i).SetString(s)
		}
		v.Set(sv)
	case reflect.Struct:
		return fmt.Errorf("%s: is a group of settings; set one of: %s", path, strings.Join(tags(v.Type()), ", "))
	default:
		return fmt.Errorf("%s: settings of type %s cannot be set from text", path, v.Type())
	}
	return nil
}

// Keys returns the top-level setting names of the struct v (or of the
// struct it points to), sorted.
func Keys(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	return tags(t)
}

// tagName returns the YAML name of a struct field ("" when it has none).
func tagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	return name
}

func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tagName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func fieldTypeByTag(t reflect.Type, name string) (reflect.Type, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); tagName(f) == name {
			return f.Type, true
		}
	}
	return nil, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); n != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// FromEnv applies every environment variable that starts with prefix (for
// example "PROTOLAKE_") to dst. The rest of the name is the path in upper
// case with "_" for both "." and the underscores inside names; it is resolved
// against dst's fields, so PROTOLAKE_TABLES_0_FLUSH_MAX_ROWS sets
// tables.0.flush.max_rows. Variables in skip (full names) are ignored.
func FromEnv(dst any, environ []string, prefix string, skip ...string) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("confpath: destination must be a pointer to a struct, got %T", dst)
	}
	// Apply in sorted order so list indexes grow 0, 1, 2 ...
	sorted := append([]string(nil), environ...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, prefix) || contains(skip, name) {
			continue
		}
		words := strings.Split(strings.ToLower(strings.TrimPrefix(name, prefix)), "_")
		path, err := resolve(v.Elem().Type(), words)
		if err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
		if err := Set(dst, path, value); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return nil
}

// resolve turns underscore-separated words into a dotted path by matching the
// longest YAML name at each level.
func resolve(t reflect.Type, words []string) (string, error) {
	var segs []string
	for len(words) > 0 {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice:
			if _, err := strconv.Atoi(words[0]); err != nil {
				return "", fmt.Errorf("expected a list index at %q", words[0])
			}
			segs = append(segs, words[0])
			words = words[1:]
			t = t.Elem()
			continue
		case reflect.Struct:
		default:
			return "", fmt.Errorf("no setting %q", strings.Join(words, "_"))
		}
		matched := false
		for n := len(words); n > 0; n-- {
			cand := strings.Join(words[:n], "_")
			if ft, ok := fieldTypeByTag(t, cand); ok {
				segs = append(segs, cand)
				words = words[n:]
				t = ft
				matched = true
				break
			}
		}
		if !matched {
			return "", fmt.Errorf("unknown setting %q (known here: %s)", strings.Join(words, "_"), strings.Join(tags(t), ", "))
		}
	}
	return strings.Join(segs, "."), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
