package writer

import "unsafe"

// unsafeString views a string's bytes without copying; the bytes must not
// be modified (column appends only read them).
func unsafeString(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// unsafeStr views bytes as a string without copying, for a call that does
// not retain it.
func unsafeStr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
