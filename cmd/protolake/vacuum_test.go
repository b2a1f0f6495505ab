package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVacuumCommand: after a compaction, vacuum deletes exactly the
// compacted-away files and an old orphan, never the log, _protolake or a
// young orphan; dry run deletes and commits nothing; the latest version
// reads the same rows; history shows VACUUM START / END.
func TestVacuumCommand(t *testing.T) {
	dir := copyTable(t, "deltars-simple_table_with_checkpoint")
	old := latestSnapshot(t, dir)
	if _, stderr, code := runCLI(t, "compact", dir, "--min-files", "2"); code != 0 {
		t.Fatalf("compact: %s", stderr)
	}
	snap := latestSnapshot(t, dir)
	want := duckRows(t, dir, snap)

	long := time.Now().Add(-30 * 24 * time.Hour)
	write := func(rel string, mtime time.Time) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("part-orphan-old.snappy.parquet", long)      // crashed writer, long ago
	write("_protolake/descriptors/abc.binpb", long)    // descriptor archive
	write("_delta_log/00000000000000000000.crc", long) // log side file
	write(".hidden/part-x.parquet", long)              // hidden directory
	// A writer about to commit: younger than any retention, even 0h (the
	// retention arithmetic on a clock is commitlog's TestVacuumClock).
	write("part-orphan-young.snappy.parquet", time.Now().Add(time.Minute))
	removed := old.Files() // compacted away
	keep := []string{"part-orphan-young.snappy.parquet", "_protolake/descriptors/abc.binpb", "_delta_log/00000000000000000000.crc", ".hidden/part-x.parquet"}

	// Default retention (7 days): the tombstones are too young; only the
	// old orphan goes. Dry run first.
	stdout, stderr, code := runCLI(t, "vacuum", dir, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "would delete 1 files") || !strings.Contains(stdout, "part-orphan-old.snappy.parquet") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "part-orphan-old.snappy.parquet")); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	if v := latestSnapshot(t, dir).Version(); v != snap.Version() {
		t.Fatalf("dry run committed version %d", v)
	}

	// A short retention is refused without the override.
	if _, _, code := runCLI(t, "vacuum", dir, "--retain", "1s"); code != 2 {
		t.Errorf("--retain 1s without --allow-short-retention: exit %d, want 2", code)
	}
	stdout, stderr, code = runCLI(t, "vacuum", dir, "--retain", "0h", "--allow-short-retention")
	if code != 0 || !strings.Contains(stdout, "deleted 12 files") {
		t.Fatalf("vacuum: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range removed {
		if _, err := os.Stat(filepath.Join(dir, f.Path)); !os.IsNotExist(err) {
			t.Errorf("compacted-away file %s not deleted (%v)", f.Path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "part-orphan-old.snappy.parquet")); !os.IsNotExist(err) {
		t.Errorf("old orphan not deleted")
	}
	for _, k := range keep {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s deleted: %v", k, err)
		}
	}
	after := latestSnapshot(t, dir)
	if after.Version() != snap.Version()+2 {
		t.Errorf("vacuum moved the table to version %d, want %d (START and END)", after.Version(), snap.Version()+2)
	}
	if got := duckRows(t, dir, after); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("latest version reads different rows after vacuum")
	}
	stdout, _, _ = runCLI(t, "history", dir, "--limit", "2")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "VACUUM END") || !strings.Contains(lines[2], "VACUUM START") {
		t.Errorf("history after vacuum:\n%s", stdout)
	}
	stdout, _, _ = runCLI(t, "history", dir, "--limit", "2", "--json")
	if !strings.Contains(stdout, `"numDeletedFiles": "12"`) || !strings.Contains(stdout, `"numFilesToDelete": "12"`) || !strings.Contains(stdout, `"status": "COMPLETED"`) {
		t.Errorf("VACUUM commits lack Spark's metrics:\n%s", stdout)
	}
}

func TestCheckpointCommand(t *testing.T) {
	dir := copyTable(t, "spark-basic-with-inserts-deletes-checkpoint")
	files := latestSnapshot(t, dir).NumFiles()
	stdout, stderr, code := runCLI(t, "checkpoint", dir)
	if code != 0 || !strings.Contains(stdout, "checkpoint at version 13") {
		t.Fatalf("checkpoint: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", "00000000000000000013.checkpoint.parquet")); err != nil {
		t.Fatal(err)
	}
	snap := latestSnapshot(t, dir)
	if snap.CheckpointVersion() != 13 || snap.NumFiles() != files {
		t.Errorf("snapshot after checkpoint: checkpoint %d, %d files, want 13 and %d", snap.CheckpointVersion(), snap.NumFiles(), files)
	}
	stdout, _, code = runCLI(t, "checkpoint", dir)
	if code != 0 || !strings.Contains(stdout, "version 13 is already checkpointed") {
		t.Errorf("second checkpoint: exit %d, %q", code, stdout)
	}
}
