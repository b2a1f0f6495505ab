package s3test_test

import (
	"strings"
	"testing"

	"github.com/protolake/protolake/storage/s3/s3test"
)

func TestNewMinIOMissingBinary(t *testing.T) {
	_, err := s3test.NewMinIO("/nonexistent/minio")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/minio") {
		t.Fatalf("NewMinIO with a missing binary = %v, want an error naming the path", err)
	}
	if _, err := s3test.NewMinIO(""); err == nil || !strings.Contains(err.Error(), s3test.EnvMinIO) {
		t.Fatalf("NewMinIO(\"\") = %v, want an error naming %s", err, s3test.EnvMinIO)
	}
}

// A MinIO server's buckets are independent, and Close is idempotent.
func TestMinIOBuckets(t *testing.T) {
	cfg := s3test.StartMinIO(t)
	if cfg.Bucket == "" || !strings.HasPrefix(cfg.Endpoint, "http://127.0.0.1:") || !cfg.UsePathStyle {
		t.Fatalf("StartMinIO config = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
