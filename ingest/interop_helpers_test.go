//go:build interop

package ingest_test

import (
	"os"
	"testing"
)

// interopEnv is the value of the interop tier's environment variable name
// (set by `make interop`); the test fails when it is unset.
func interopEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run through `make interop` (or source $PLTEST_INTEROP_RUN/env)", name)
	}
	return v
}
