package commitlog

import (
	"errors"
	"regexp"
	"testing"
)

// TestHasURIScheme checks the scan against the RFC 3986 scheme pattern it
// replaced, and checkFilePath's verdicts on typical paths.
func TestHasURIScheme(t *testing.T) {
	scheme := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	for _, p := range []string{
		"", ":", "a", "a:", "file:/etc/passwd", "s3a://bucket/x.parquet", "hdfs://nn:8020/x",
		"C:/x", "c+x.y-z:rest", "1a:x", "+a:x", "-:x", ".a:x", "a1+.-:", "a b:x", "a/b:c",
		"day=2026-01-01/part-0.parquet", "day%3A1/part.parquet", "part-0.parquet", "é:x", "aé:x",
	} {
		if got, want := hasURIScheme(p), scheme.MatchString(p); got != want {
			t.Errorf("hasURIScheme(%q) = %v, want %v", p, got, want)
		}
	}
	for p, outside := range map[string]bool{
		"day=2026-01-01/part-0.parquet": false,
		"day%3A1/part.parquet":          false,
		"file:/etc/passwd":              true,
		"s3a://bucket/x.parquet":        true,
		"../x.parquet":                  true,
		"/abs/x.parquet":                true,
	} {
		if err := checkFilePath(p); errors.Is(err, ErrPathOutsideTable) != outside {
			t.Errorf("checkFilePath(%q) = %v, want outside=%v", p, err, outside)
		}
	}
}
