// Package bigtest holds the helpers of the opt-in test tiers: for the
// large-scale tests (a table of a million files, compaction memory) a
// positive integer from the environment, the process's peak resident set
// size, and the "report: " line a child test process prints for its parent;
// for the interop tier the servers' addresses `make interop` exports.
package bigtest

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// EnvInt is the positive integer in the environment variable name, or def
// when it is unset; anything else fails the test.
func EnvInt(t testing.TB, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// InteropEnv is the value of the interop tier's environment variable name
// (exported by `make interop`); the test fails when it is unset.
func InteropEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run through `make interop` (or source $PLTEST_INTEROP_RUN/env)", name)
	}
	return v
}

// PeakRSSMiB is the process's peak resident set size (VmHWM). Not
// getrusage's maxrss: Linux carries that across fork and exec, so a child
// of a big parent reports the parent's size.
func PeakRSSMiB(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// ReportLine is what follows "report: " on the first line of out that has
// it; without one the test fails.
func ReportLine(t testing.TB, out string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "report: "); ok {
			return rest
		}
	}
	t.Fatalf("no report line in:\n%s", out)
	return ""
}
