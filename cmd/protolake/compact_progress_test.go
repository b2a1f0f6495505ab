package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/compact"
)

// TestProgressPrinter: on a terminal the line is redrawn in place with
// files, bytes and an ETA; otherwise progress is logged.
func TestProgressPrinter(t *testing.T) {
	var term bytes.Buffer
	p := &progressPrinter{w: &term, logger: slog.New(slog.DiscardHandler), terminal: true}
	p.update(compact.Progress{FilesDone: 5, FilesTotal: 20, BytesDone: 25 << 20, BytesTotal: 100 << 20, PartitionsTotal: 4, Elapsed: 10 * time.Second})
	p.finish()
	got := term.String()
	for _, want := range []string{"\r\x1b[K", "5/20 files", "25.0MiB/100.0MiB (25%)", "0/4 partitions", "ETA 30s", "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal progress %q lacks %q", got, want)
		}
	}

	var logs bytes.Buffer
	p = &progressPrinter{w: &bytes.Buffer{}, logger: slog.New(slog.NewTextHandler(&logs, nil))}
	p.update(compact.Progress{FilesDone: 1, FilesTotal: 2, BytesDone: 10, BytesTotal: 20, PartitionsTotal: 1, Elapsed: time.Second})
	p.update(compact.Progress{FilesDone: 2, FilesTotal: 2, BytesDone: 15, BytesTotal: 20, PartitionsTotal: 1, Elapsed: time.Second}) // within 10s: not logged
	p.update(compact.Progress{FilesDone: 2, FilesTotal: 2, BytesDone: 20, BytesTotal: 20, PartitionsDone: 1, PartitionsTotal: 1, Elapsed: 2 * time.Second})
	if n := strings.Count(logs.String(), "compaction progress"); n != 2 {
		t.Errorf("%d progress log lines, want 2 (first and final):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "files_done=2") || !strings.Contains(logs.String(), "eta=0s") {
		t.Errorf("final progress line: %s", logs.String())
	}
}
