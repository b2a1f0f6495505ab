package partpath

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"a b": "a b", "x=y/z": "x%3Dy%2Fz", "50%": "50%25", "\x01é": "%01é", "": ""} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	v := "a/b"
	if got := Segment("c:d", &v); got != "c%3Ad=a%2Fb" {
		t.Errorf("Segment = %q", got)
	}
	if got := Segment("c", nil); got != "c="+Null {
		t.Errorf("Segment(nil) = %q", got)
	}
}

// TestDir: long segments are cut to MaxSegment bytes at a
// character and escape boundary, deterministically, and different values
// keep different directories.
func TestDir(t *testing.T) {
	seen := map[string]string{}
	for _, v := range []string{"short", strings.Repeat("x", 200), strings.Repeat("x", 200) + "y", strings.Repeat("é", 100), strings.Repeat("a/", 100), strings.Repeat("a/", 100) + "b"} {
		path := "d=1/c=" + Escape(v)
		dir := Dir(path)
		if dir != Dir(path) {
			t.Fatalf("not deterministic: %s", path)
		}
		segs := strings.Split(dir, "/")
		if len(segs) != 2 || segs[0] != "d=1" {
			t.Fatalf("%s → %s", path, dir)
		}
		if len(segs[1]) > MaxSegment || !utf8.ValidString(segs[1]) {
			t.Errorf("%s → %q (%d bytes)", path, segs[1], len(segs[1]))
		}
		if i := strings.LastIndexByte(segs[1], '%'); i >= 0 && i > len(segs[1])-3 {
			t.Errorf("escape split: %q", segs[1])
		}
		if len(path) <= MaxSegment && dir != path {
			t.Errorf("short path changed: %s → %s", path, dir)
		}
		if prev, ok := seen[dir]; ok {
			t.Errorf("%q and %q share directory %s", prev, v, dir)
		}
		seen[dir] = v
	}
}
