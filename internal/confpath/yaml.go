package confpath

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrSyntax is wrapped by the error of DecodeYAML when the document is not
// valid YAML; nothing was decoded then.
var ErrSyntax = errors.New("not valid YAML")

// DecodeYAML decodes a YAML document into the struct pointed to by dst with
// the same names, parsing and messages as Set: an unknown key is
// "line N: PATH: unknown setting "KEY" (known here: ...)", a bad value
// "line N: PATH: ...". It reports every such problem at once (errors.Join,
// in document order) and decodes everything else, so a caller can go on
// validating. A syntax error wraps ErrSyntax and names the line the problem
// is on.
func DecodeYAML(data []byte, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("confpath: destination must be a pointer to a struct, got %T", dst)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return syntaxError(data, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty document
	}
	var errs []error
	decodeNode(v.Elem(), doc.Content[0], "", &errs)
	return errors.Join(errs...)
}

// yamlLine is how yaml.v3 starts its error messages.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError rewrites a yaml.v3 syntax error. yaml.v3 often reports the
// line before the problem (it prefers the 0-based line of the enclosing
// construct), so the line is found again: the shortest prefix of the
// document, in whole lines, that fails with the same message ends on the
// line the parser was reading.
func syntaxError(data []byte, err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%w: %s", ErrSyntax, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	msg := m[2]
	line, _ := strconv.Atoi(m[1])
	lines := bytes.SplitAfter(data, []byte("\n"))
	for k := 1; k <= len(lines); k++ {
		var n yaml.Node
		perr := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if pm := yamlLine.FindStringSubmatch(fmt.Sprint(perr)); pm != nil && pm[2] == msg {
			line = k
			break
		}
	}
	text := ""
	if line >= 1 && line <= len(lines) {
		text = fmt.Sprintf(" (%q)", strings.TrimRight(string(lines[line-1]), "\r\n"))
	}
	return fmt.Errorf("%w: line %d%s: %s", ErrSyntax, line, text, msg)
}

func lineErr(n *yaml.Node, path, format string, args ...any) error {
	return fmt.Errorf("line %d: %s: %s", n.Line, path, fmt.Sprintf(format, args...))
}

func join(path, seg string) string {
	if path == "" {
		return seg
	}
	return path + "." + seg
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// decodeNode decodes n into v, appending one error per problem.
func decodeNode(v reflect.Value, n *yaml.Node, path string, errs *[]error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" or "key: ~" leaves the default
	}
	if v.Kind() == reflect.Pointer && !(v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler)) {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decodeNode(v.Elem(), n, path, errs)
		return
	}
	scalar := v.Type() == durationType || (v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler))
	switch {
	case scalar || (v.Kind() != reflect.Struct && v.Kind() != reflect.Slice):
		if n.Kind != yaml.ScalarNode {
			*errs = append(*errs, lineErr(n, path, "want a single value, got %s", nodeKind(n)))
			return
		}
		if err := parseInto(v, path, n.Value); err != nil {
			*errs = append(*errs, fmt.Errorf("line %d: %w", n.Line, err))
		}
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, lineErr(n, path, "want a group of settings (%s), got %s", strings.Join(tags(v.Type()), ", "), nodeKind(n)))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				*errs = append(*errs, lineErr(k, p, "set twice (first on line %d)", first))
				continue
			}
			seen[k.Value] = k.Line
			f, ok := fieldByTag(v, k.Value)
			if !ok {
				*errs = append(*errs, lineErr(k, p, "unknown setting %q (known here: %s)", k.Value, strings.Join(tags(v.Type()), ", ")))
				continue
			}
			decodeNode(f, val, p, errs)
		}
	default: // slice
		if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
			if err := parseInto(v, path, n.Value); err != nil { // comma-separated, as a flag
				*errs = append(*errs, fmt.Errorf("line %d: %w", n.Line, err))
			}
			return
		}
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, lineErr(n, path, "want a list, got %s", nodeKind(n)))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, el := range n.Content {
			decodeNode(s.Index(i), el, join(path, strconv.Itoa(i)), errs)
		}
		v.Set(s)
	}
}
