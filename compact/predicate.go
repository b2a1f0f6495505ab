package compact

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode"
)

// ErrPredicate is wrapped by every error ParsePredicate and Predicate.Check
// return.
var ErrPredicate = errors.New("invalid --where predicate")

// Predicate selects partitions by their partition values. Its grammar is
// deliberately small:
//
//	predicate  = term { "AND" term }
//	term       = column op literal | column "IN" "(" literal { "," literal } ")"
//	op         = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//	literal    = "double-quoted" | 'single-quoted' | number | bare-word
//
// Keywords are case-insensitive; column names match partition columns
// case-insensitively, as Delta does. A column of a numeric type (byte,
// short, integer, long, float, double, decimal) compares as a number;
// every other type (string, date, timestamp, boolean) compares as a string,
// which orders ISO dates and Delta's timestamp partition values correctly.
// A null partition value never matches, as in SQL.
type Predicate struct {
	terms []term
}

type term struct {
	col    string
	op     string // = != < <= > >= in
	values []string
}

// ParsePredicate parses a --where predicate.
func ParsePredicate(s string) (*Predicate, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrPredicate, s, err)
	}
	p := &Predicate{}
	i := 0
	next := func() (tok, bool) {
		if i >= len(toks) {
			return tok{}, false
		}
		i++
		return toks[i-1], true
	}
	fail := func(msg string, args ...any) (*Predicate, error) {
		return nil, fmt.Errorf("%w %q: %s (grammar: col op literal [AND ...], op one of = != < <= > >= IN (...))", ErrPredicate, s, fmt.Sprintf(msg, args...))
	}
	for {
		c, ok := next()
		if !ok || c.kind != tIdent {
			return fail("want a partition column name at term %d", len(p.terms)+1)
		}
		op, ok := next()
		if !ok {
			return fail("want an operator after %s", c.text)
		}
		t := term{col: c.text}
		switch {
		case op.kind == tOp:
			t.op = op.text
			if t.op == "<>" {
				t.op = "!="
			}
			if t.op == "==" {
				t.op = "="
			}
			v, ok := next()
			if !ok || !v.literal() {
				return fail("want a literal after %s %s", c.text, op.text)
			}
			t.values = []string{v.text}
		case op.kind == tIdent && strings.EqualFold(op.text, "IN"):
			t.op = "in"
			if l, ok := next(); !ok || l.kind != tLParen {
				return fail("want ( after IN")
			}
			for {
				v, ok := next()
				if !ok || !v.literal() {
					return fail("want a literal in the IN list of %s", c.text)
				}
				t.values = append(t.values, v.text)
				sep, ok := next()
				if !ok {
					return fail("unterminated IN list")
				}
				if sep.kind == tRParen {
					break
				}
				if sep.kind != tComma {
					return fail("want , or ) in the IN list of %s", c.text)
				}
			}
		default:
			return fail("want an operator after %s, got %q", c.text, op.text)
		}
		p.terms = append(p.terms, t)
		a, ok := next()
		if !ok {
			return p, nil
		}
		if a.kind != tIdent || !strings.EqualFold(a.text, "AND") {
			return fail("want AND between terms, got %q (OR is not supported: run compact once per alternative)", a.text)
		}
	}
}

// Check verifies that every column the predicate names is a partition
// column (given with its Delta type) and returns an error naming the others.
func (p *Predicate) Check(partitionTypes map[string]string) error {
	for _, t := range p.terms {
		if _, ok := lookupFold(partitionTypes, t.col); !ok {
			names := make([]string, 0, len(partitionTypes))
			for k := range partitionTypes {
				names = append(names, k)
			}
			return fmt.Errorf("%w: %q is not a partition column (partition columns: %s); compaction selects whole partitions only", ErrPredicate, t.col, strings.Join(names, ", "))
		}
	}
	return nil
}

// Match reports whether a partition with these values (nil = null) matches.
// types gives each partition column's Delta type.
func (p *Predicate) Match(values map[string]*string, types map[string]string) bool {
	if p == nil {
		return true
	}
	for _, t := range p.terms {
		v, _ := lookupFold(values, t.col)
		if v == nil {
			return false
		}
		typ, _ := lookupFold(types, t.col)
		ok := false
		if t.op == "in" {
			for _, lit := range t.values {
				if compareValues(*v, lit, typ) == 0 {
					ok = true
					break
				}
			}
		} else {
			c := compareValues(*v, t.values[0], typ)
			switch t.op {
			case "=":
				ok = c == 0
			case "!=":
				ok = c != 0
			case "<":
				ok = c < 0
			case "<=":
				ok = c <= 0
			case ">":
				ok = c > 0
			case ">=":
				ok = c >= 0
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// String renders the predicate in canonical form (for commitInfo).
func (p *Predicate) String() string {
	if p == nil {
		return ""
	}
	parts := make([]string, len(p.terms))
	for i, t := range p.terms {
		if t.op == "in" {
			q := make([]string, len(t.values))
			for j, v := range t.values {
				q[j] = quote(v)
			}
			parts[i] = fmt.Sprintf("%s IN (%s)", ident(t.col), strings.Join(q, ", "))
		} else {
			parts[i] = fmt.Sprintf("%s %s %s", ident(t.col), t.op, quote(t.values[0]))
		}
	}
	return strings.Join(parts, " AND ")
}

// ident renders a column name, backquoted unless it lexes as a bare name.
func ident(s string) string {
	if toks, err := lex(s); err == nil && len(toks) == 1 && toks[0].kind == tIdent && toks[0].text == s && !strings.EqualFold(s, "AND") && !strings.EqualFold(s, "IN") {
		return s
	}
	return "`" + s + "`"
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func lookupFold[V any](m map[string]V, key string) (V, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func isNumericType(typ string) bool {
	switch typ {
	case "byte", "short", "integer", "long", "float", "double":
		return true
	}
	return strings.HasPrefix(typ, "decimal")
}

// compareValues compares a partition value with a literal: as numbers for
// numeric types (falling back to strings when either is not a number), as
// strings otherwise.
func compareValues(v, lit, typ string) int {
	if isNumericType(typ) {
		a, okA := new(big.Float).SetString(strings.TrimSpace(v))
		b, okB := new(big.Float).SetString(strings.TrimSpace(lit))
		if okA && okB {
			return a.Cmp(b)
		}
	}
	return strings.Compare(v, lit)
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tOp
	tLParen
	tRParen
	tComma
)

type tok struct {
	kind tokKind
	text string
}

func (t tok) literal() bool { return t.kind == tString || t.kind == tNumber || t.kind == tIdent }

func lex(s string) ([]tok, error) {
	var out []tok
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(':
			out = append(out, tok{tLParen, "("})
			i++
		case r == ')':
			out = append(out, tok{tRParen, ")"})
			i++
		case r == ',':
			out = append(out, tok{tComma, ","})
			i++
		case r == '"' || r == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(rs); j++ {
				if rs[j] == r {
					if j+1 < len(rs) && rs[j+1] == r { // doubled quote
						b.WriteRune(r)
						j++
						continue
					}
					break
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated quote at offset %d", i)
			}
			out = append(out, tok{tString, b.String()})
			i = j + 1
		case strings.ContainsRune("=!<>", r):
			j := i + 1
			if j < len(rs) && strings.ContainsRune("=>", rs[j]) {
				j++
			}
			op := string(rs[i:j])
			switch op {
			case "=", "==", "!=", "<>", "<", "<=", ">", ">=":
			default:
				return nil, fmt.Errorf("unknown operator %q at offset %d", op, i)
			}
			out = append(out, tok{tOp, op})
			i = j
		case r == '-' || r == '+' || r == '.' || unicode.IsDigit(r):
			j := i + 1
			for j < len(rs) && (unicode.IsDigit(rs[j]) || strings.ContainsRune(".eE+-:", rs[j])) {
				j++
			}
			out = append(out, tok{tNumber, string(rs[i:j])})
			i = j
		case r == '_' || r == '`' || unicode.IsLetter(r):
			if r == '`' {
				j := i + 1
				for j < len(rs) && rs[j] != '`' {
					j++
				}
				if j >= len(rs) {
					return nil, fmt.Errorf("unterminated backquote at offset %d", i)
				}
				if j == i+1 {
					return nil, fmt.Errorf("empty column name at offset %d", i)
				}
				out = append(out, tok{tIdent, string(rs[i+1 : j])})
				i = j + 1
				continue
			}
			j := i + 1
			for j < len(rs) && (rs[j] == '_' || rs[j] == '.' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
				j++
			}
			out = append(out, tok{tIdent, string(rs[i:j])})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", r, i)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}
