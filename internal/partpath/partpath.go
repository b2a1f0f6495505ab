// Package partpath owns the Hive-style partition paths of Delta tables:
// "col=value/…" with Hive/Spark escaping, the null value's name, and the
// shortening of segments too long for a store. The writer (new files) and
// compaction (rewritten files) both build paths here, so a partition's
// files share one directory whoever wrote them.
//
// Readers take partition values from the Delta log, never from the path:
// a path only has to be unique per partition and valid in every store.
package partpath

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// Null is the path segment value of a null partition value, as Hive and
// Spark write it.
const Null = "__HIVE_DEFAULT_PARTITION__"

// AppendEscaped appends s, a partition column name or value, escaped the
// way Hive and Spark escape it in paths (ExternalCatalogUtils.escapePathName):
// control characters and "#%'*/:=?\\{[]^ as %XX.
func AppendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func needsEscape(c byte) bool {
	if c < 0x20 || c == 0x7f {
		return true
	}
	switch c {
	case '"', '#', '%', '\'', '*', '/', ':', '=', '?', '\\', '{', '[', ']', '^':
		return true
	}
	return false
}

// Escape returns s escaped for a partition path segment.
func Escape(s string) string { return string(AppendEscaped(nil, s)) }

// Segment returns the path segment "name=value" of a partition column, with
// Null for a nil value.
func Segment(name string, value *string) string {
	if value == nil {
		return Escape(name) + "=" + Null
	}
	return Escape(name) + "=" + Escape(*value)
}

// MaxSegment is the longest partition directory name, in bytes,
// the writer and compaction create. Local filesystems allow 255 bytes per
// name and S3 1,024 per key; 128 keeps a table with several partition
// columns under both.
const MaxSegment = 128

// Dir returns the directory of a partition given its Hive-style
// path ("col=value/…", escaped): each name=value segment longer than
// MaxSegment is cut at a character boundary and ends with "~" and
// 16 hex digits of the SHA-256 of the whole segment, so different values
// stay in different directories. Readers take partition values from the
// Delta log, never from the path, so the shortened name loses nothing.
func Dir(path string) string {
	if len(path) <= MaxSegment {
		return path
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if len(seg) <= MaxSegment {
			continue
		}
		sum := sha256.Sum256([]byte(seg))
		cut := MaxSegment - 17
		for cut > 0 && !utf8.RuneStart(seg[cut]) {
			cut--
		}
		// Do not split a %XX escape.
		if j := strings.LastIndexByte(seg[:cut], '%'); j >= 0 && j > cut-3 {
			cut = j
		}
		segs[i] = seg[:cut] + "~" + hex.EncodeToString(sum[:8])
	}
	return strings.Join(segs, "/")
}
