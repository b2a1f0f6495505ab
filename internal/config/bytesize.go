package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ByteSize is a size in bytes written as an integer or with a unit: 512KiB,
// 128MiB, 1GiB, 64MB (SI units are powers of 1000).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// UnmarshalText parses a size such as "128MiB".
func (s *ByteSize) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, mult = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.mult
			break
		}
	}
	if text == "" || strings.IndexFunc(text, func(r rune) bool { return !unicode.IsDigit(r) }) >= 0 {
		return fmt.Errorf("%q is not a size (e.g. 134217728, 128MiB, 1GiB)", string(b))
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size (e.g. 134217728, 128MiB, 1GiB)", string(b))
	}
	*s = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size in the largest binary unit that divides it.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String formats the size like "128MiB".
func (s ByteSize) String() string {
	for i := 3; i >= 0; i-- {
		u := byteUnits[i]
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}
