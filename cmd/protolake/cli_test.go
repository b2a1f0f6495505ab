package main

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestVersion: `protolake version` and `protolake --version` print the same
// line, with the module path and version and the VCS revision when the
// toolchain stamped one.
func TestVersion(t *testing.T) {
	a, _, code := runCLI(t, "version")
	b, _, code2 := runCLI(t, "--version")
	if code != 0 || code2 != 0 || a != b {
		t.Fatalf("version: exit %d %q; --version: exit %d %q", code, a, code2, b)
	}
	if !regexp.MustCompile(`^protolake \S+ \(module github.com/protolake/protolake \S+, `).MatchString(a) {
		t.Errorf("version line %q lacks the module path and version", a)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/protolake/protolake", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "013b741c0ffee"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionInfo("dev", bi), "protolake v0.3.0 (module github.com/protolake/protolake v0.3.0, revision 013b741c0ffee 2026-12-01T10:00:00Z, modified, go1.26.0)"; got != want {
		t.Errorf("versionInfo =\n%s\nwant\n%s", got, want)
	}
	bi = &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/protolake/protolake", Version: "(devel)"}}
	if got, want := versionInfo("dev", bi), "protolake dev (module github.com/protolake/protolake (devel), revision unknown: built without VCS stamping (make build stamps it), go1.26.0)"; got != want {
		t.Errorf("versionInfo without VCS =\n%s\nwant\n%s", got, want)
	}
}

// TestHelpExitsZero: every subcommand's --help prints its usage and exits 0.
func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range order {
		stdout, stderr, code := runCLI(t, cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d, want 0\n%s%s", cmd, code, stdout, stderr)
		}
		if !strings.Contains(stdout+stderr, "protolake "+cmd) {
			t.Errorf("%s --help printed no usage:\n%s%s", cmd, stdout, stderr)
		}
		if strings.Contains(stderr, "flag: help requested") {
			t.Errorf("%s --help: %q", cmd, stderr)
		}
	}
}

// TestHistoryHelpMatchesOutput: the help says what the output shows for a
// commit without row counts ("?").
func TestHistoryHelpMatchesOutput(t *testing.T) {
	_, help, _ := runCLI(t, "history", "--help")
	if !strings.Contains(help, `"?" when the writer recorded none`) || strings.Contains(help, `"-" when`) {
		t.Errorf("history --help:\n%s", help)
	}
	out, _, code := runCLI(t, "history", copyTable(t, "deltars-delta-0.2.0"))
	if code != 0 || !strings.Contains(out, "+?/-?") {
		t.Errorf("history of a table without operationMetrics: exit %d\n%s", code, out)
	}
}

// TestUsageMessages: mistakes on the command line are exit 2 with a message
// that says what to do.
func TestUsageMessages(t *testing.T) {
	simple := copyTable(t, "deltars-simple_table_with_checkpoint")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", simple, "--json", "--files"}, "protolake: inspect: --json and --files exclude each other (--files prints only the data files' locations, one per line)\n"},
		{[]string{"compact", simple, "--target-size", "0"}, "protolake: compact: --target-size 0B: want at least 1KiB (default 128MiB)\n"},
		{[]string{"compact", simple, "--sort-by", "nope"}, `protolake: compact: invalid sort column "nope": no such column; sortable columns: version` + "\n"},
		{[]string{"vacuum", simple, "--retain", "1h"}, "protolake: vacuum " + simple + ": --retain 1h is shorter than the table's delta.deletedFileRetentionDuration (168h0m0s): pass --allow-short-retention to vacuum anyway (it can break readers of older versions and writers whose files are not committed yet)\n"},
		{[]string{"vacuum", simple, "--retain", "-1h"}, `protolake: vacuum: --retain "-1h": want a duration >= 0 such as 168h, 0h or "interval 7 days"` + "\n"},
		{[]string{"inspect", "file://relative/path"}, `protolake: inspect file://relative/path: open file://relative/path: a file:// URL takes an absolute path (file:///abs/path), and "relative" would be read as a host; for a path relative to the working directory write it without file:// (relative/path)` + "\n"},
	}
	for _, tt := range tests {
		_, stderr, code := runCLI(t, tt.args...)
		if code != 2 || !strings.HasSuffix(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr\n%s\nwant exit 2 and\n%s", tt.args, code, stderr, tt.want)
		}
	}
	if v := latestSnapshot(t, simple).Version(); v != 10 {
		t.Errorf("a refused command committed: version %d, want 10", v)
	}
}

// TestCompactSortByRefusedUpFront: an unknown --sort-by column fails before
// any file is read, also in a dry run, and names the sortable columns
// (a partition column is not one).
func TestCompactSortByRefusedUpFront(t *testing.T) {
	dir := copyTable(t, "spark-data-reader-partition-values")
	for _, args := range [][]string{{"--sort-by", "as_int"}, {"--sort-by", "as_int", "--dry-run"}} {
		_, stderr, code := runCLI(t, append([]string{"compact", dir, "--min-files", "1"}, args...)...)
		want := `protolake: compact: invalid sort column "as_int": a partition column (one value per partition, nothing to sort); sortable columns: value` + "\n"
		if code != 2 || stderr != want {
			t.Errorf("compact %q: exit %d, stderr\n%s\nwant exit 2 and\n%s", args, code, stderr, want)
		}
	}
}

// TestVacuumRetainZero: --retain 0h with --allow-short-retention is
// accepted (Spark's RETAIN 0 HOURS) and deletes every unreferenced file;
// a dry run with nothing to delete says so.
func TestVacuumRetainZero(t *testing.T) {
	dir := copyTable(t, "deltars-simple_table_with_checkpoint")
	stdout, stderr, code := runCLI(t, "vacuum", dir, "--dry-run")
	if want := "dry run: nothing to delete at version 10 (no unreferenced file older than 168h0m0s)\n"; code != 0 || stdout != want {
		t.Errorf("dry run with nothing to delete: exit %d, stdout %q, want %q\n%s", code, stdout, want, stderr)
	}
	orphan := filepath.Join(dir, "part-orphan.parquet")
	if err := os.WriteFile(orphan, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Second)
	if err := os.Chtimes(orphan, past, past); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, "vacuum", dir, "--retain", "0h", "--allow-short-retention")
	if code != 0 || !strings.HasPrefix(stdout, "deleted 1 files (1B) no longer referenced for 0s") {
		t.Fatalf("vacuum --retain 0h --allow-short-retention: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan not deleted: %v", err)
	}
	if snap := latestSnapshot(t, dir); snap.NumFiles() != 11 {
		t.Errorf("vacuum changed the table: %d files, want 11", snap.NumFiles())
	}
}

// TestCheckpointAlreadyCheckpointed: checkpointing a version that has a
// checkpoint says so and writes nothing.
func TestCheckpointAlreadyCheckpointed(t *testing.T) {
	dir := copyTable(t, "deltars-simple_table_with_checkpoint")
	key := filepath.Join(dir, "_delta_log", "00000000000000000010.checkpoint.parquet")
	before, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "checkpoint", dir)
	if want := "version 10 is already checkpointed (_delta_log/00000000000000000010.checkpoint.parquet); nothing written\n"; code != 0 || stdout != want {
		t.Errorf("checkpoint: exit %d, stdout %q, want %q\n%s", code, stdout, want, stderr)
	}
	if after, err := os.Stat(key); err != nil || !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Errorf("the checkpoint was rewritten: %v", err)
	}
}
