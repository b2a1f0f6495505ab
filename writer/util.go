package writer

import "unsafe"

// unsafeString views a string's bytes without copying; the bytes must not
// be modified (column appends only read them).
func unsafeString(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
