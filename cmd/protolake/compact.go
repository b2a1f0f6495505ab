package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/config"
	"github.com/protolake/protolake/storage/open"
)

const compactUsage = `usage: protolake compact TABLE_URI [flags]

Rewrites the small files of each partition into files close to --target-size
(Delta OPTIMIZE, bin-packing), one commit per partition with dataChange=false,
while streaming writers keep appending. Rows and values are unchanged.

--where selects partitions: col op literal [AND ...], op one of
= != < <= > >= or IN (lit, ...), on partition columns only, e.g.
  --where 'event_time_day >= "2026-11-01" AND event_time_day < "2026-11-08"'

Exit status: 0 every planned partition compacted (or nothing to do),
1 some partitions failed (listed on stderr; the others are committed),
2 usage errors and failures of the whole run.

TABLE_URI is a path or a file://, s3://, hdfs:// URL (see README, Storage).

flags:
`

func runCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := newMaintenance("compact", compactUsage, stderr, true)
	fs := m.fs
	target := config.ByteSize(compact.DefaultTargetSize)
	fs.TextVar(&target, "target-size", target, "size new files aim for; files at or above it are left alone (512KiB, 128MiB, 1GiB…)")
	where := fs.String("where", "", "only partitions matching this predicate on partition columns")
	minFiles := fs.Int("min-files", compact.DefaultMinFiles, "leave partitions with fewer small files than this alone")
	maxConc := fs.Int("max-concurrent", compact.DefaultMaxConcurrent, "partitions rewritten in parallel")
	maxAttempts := fs.Int("max-attempts", compact.DefaultMaxAttempts, "plans per partition when a concurrent compaction removed its files")
	sortBy := fs.String("sort-by", "", "sort the rows of each new file by this top-level column")
	dryRun := fs.Bool("dry-run", false, "print the plan and write nothing")
	uri, err := m.parse(args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *minFiles < 1 {
		return usageError{fmt.Errorf("compact: --min-files %d: want >= 1", *minFiles)}
	}
	if target < 1<<10 {
		return usageError{fmt.Errorf("compact: --target-size %s: want at least 1KiB (default %s)", target, config.ByteSize(compact.DefaultTargetSize))}
	}
	if *maxConc < 1 || *maxAttempts < 1 {
		return usageError{errors.New("compact: --max-concurrent and --max-attempts must be >= 1")}
	}
	logger := m.logger()
	cfg := compact.Config{
		TargetSize:    int64(target),
		Where:         *where,
		MinFiles:      *minFiles,
		MaxConcurrent: *maxConc,
		MaxAttempts:   *maxAttempts,
		SortBy:        *sortBy,
		DryRun:        *dryRun,
		Logger:        logger,
	}
	if err := cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("compact: %w", err)}
	}
	var prog *progressPrinter
	if !*dryRun {
		prog = newProgressPrinter(stderr, logger)
		cfg.Progress = prog.update
	}
	tbl, closeStore, err := m.open(ctx, uri)
	if err != nil {
		return err
	}
	defer closeStore()
	start := time.Now()
	res, err := compact.Run(ctx, tbl, cfg)
	if prog != nil {
		prog.finish()
	}
	if err != nil {
		if errors.Is(err, compact.ErrPredicate) || errors.Is(err, compact.ErrSortBy) {
			return usageError{err}
		}
		return noTable("compact", open.Redact(uri), err)
	}
	printPlan(stdout, res.Plan, *dryRun)
	if *dryRun {
		return nil
	}
	var files, added int
	var before, after int64
	for _, p := range res.Partitions {
		if p.Err != nil {
			continue
		}
		files += p.RemovedFiles
		added += p.AddedFiles
		before += p.RemovedBytes
		after += p.AddedBytes
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "compacted %d files (%s) into %d (%s) in %s", files, humanBytes(before), added, humanBytes(after), el.Round(time.Millisecond))
	if s := el.Seconds(); s > 0 {
		fmt.Fprintf(stdout, ", %.1f MB/s", float64(before)/1e6/s)
	}
	fmt.Fprintln(stdout)
	for _, p := range res.Partitions {
		if p.Err == nil && p.Version >= 0 {
			fmt.Fprintf(stdout, "  %s: version %d, %d → %d files (%d attempt(s))\n", partName(p.Path), p.Version, p.RemovedFiles, p.AddedFiles, p.Attempts)
		} else if p.Err == nil {
			fmt.Fprintf(stdout, "  %s: nothing left to compact (a concurrent compaction did it)\n", partName(p.Path))
		}
	}
	if err := res.Err(); err != nil {
		if ctx.Err() != nil {
			// Interrupted: uncommitted files were deleted; what committed stays.
			return fmt.Errorf("compact %s: interrupted: %w", open.Redact(uri), ctx.Err())
		}
		var lines []string
		committed := 0
		for _, p := range res.Partitions {
			if p.Err != nil {
				lines = append(lines, fmt.Sprintf("  %s: %v", partName(p.Path), p.Err))
			} else if p.Version >= 0 {
				committed++
			}
		}
		outcome := "nothing was committed"
		switch {
		case committed > 0 && committed == len(res.Partitions)-len(lines):
			outcome = "the others are committed"
		case committed > 0:
			outcome = fmt.Sprintf("%d others are committed", committed)
		}
		return exitError{1, fmt.Errorf("compact %s: %d of %d partitions failed (%s):\n%s", open.Redact(uri), len(lines), len(res.Partitions), outcome, strings.Join(lines, "\n"))}
	}
	return nil
}

// humanBytes formats a size for people: 912.2KiB, 1.5GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func partName(p string) string {
	if p == "" {
		return "(unpartitioned)"
	}
	return p
}

// printPlan prints what a compaction plans (the whole output of --dry-run).
func printPlan(w io.Writer, p *compact.Plan, dry bool) {
	verb := "plan"
	if dry {
		verb = "dry run: plan"
	}
	fmt.Fprintf(w, "%s at version %d: %d partitions, %d files, %s", verb, p.Version, len(p.Partitions), p.NumFiles(), humanBytes(p.Bytes()))
	if p.Predicate != "" {
		fmt.Fprintf(w, " (where %s)", p.Predicate)
	}
	fmt.Fprintln(w)
	for _, pp := range p.Partitions {
		fmt.Fprintf(w, "  %s: %d files (%s) → %d files", partName(pp.Path), pp.NumFiles(), humanBytes(pp.Bytes()), len(pp.Bins))
		if pp.SkippedDV > 0 {
			fmt.Fprintf(w, " (%d files with deletion vectors left alone)", pp.SkippedDV)
		}
		fmt.Fprintln(w)
		if dry {
			for i, b := range pp.Bins {
				fmt.Fprintf(w, "    new file %d from %d files (%s):", i+1, len(b.Files), humanBytes(b.Bytes))
				for _, f := range b.Files {
					fmt.Fprintf(w, " %s", f.Path)
				}
				fmt.Fprintln(w)
			}
		}
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  %s: skipped, %s\n", partName(s.Path), s.Reason)
	}
}

// progressPrinter shows compaction progress: a line redrawn in place on a
// terminal, a log line every 10 seconds otherwise.
type progressPrinter struct {
	mu       sync.Mutex
	w        io.Writer
	logger   *slog.Logger
	terminal bool
	last     time.Time
	drawn    bool
}

func newProgressPrinter(w io.Writer, logger *slog.Logger) *progressPrinter {
	return &progressPrinter{w: w, logger: logger, terminal: isTerminal(w)}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progressPrinter) update(pr compact.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	interval := 10 * time.Second
	if p.terminal {
		interval = 200 * time.Millisecond
	}
	final := pr.PartitionsDone == pr.PartitionsTotal
	if !final && now.Sub(p.last) < interval {
		return
	}
	p.last = now
	done := min(pr.BytesDone, pr.BytesTotal)
	eta := "?"
	if done > 0 && pr.Elapsed > 0 {
		rest := time.Duration(float64(pr.Elapsed) * float64(pr.BytesTotal-done) / float64(done))
		eta = rest.Round(time.Second).String()
	}
	if p.terminal {
		pct := 0.0
		if pr.BytesTotal > 0 {
			pct = 100 * float64(done) / float64(pr.BytesTotal)
		}
		fmt.Fprintf(p.w, "\r\x1b[Kcompacting: %d/%d files, %s/%s (%.0f%%), %d/%d partitions, ETA %s",
			min(pr.FilesDone, pr.FilesTotal), pr.FilesTotal, humanBytes(done), humanBytes(pr.BytesTotal), pct, pr.PartitionsDone, pr.PartitionsTotal, eta)
		p.drawn = true
		return
	}
	p.logger.Info("compaction progress", "files_done", min(pr.FilesDone, pr.FilesTotal), "files_total", pr.FilesTotal,
		"bytes_done", done, "bytes_total", pr.BytesTotal, "partitions_done", pr.PartitionsDone, "partitions_total", pr.PartitionsTotal, "eta", eta)
}

func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
