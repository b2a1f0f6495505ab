package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/storage/open"
)

// Operations of the commits vacuum records, as Spark writes them.
const (
	opVacuumStart = "VACUUM START"
	opVacuumEnd   = "VACUUM END"
)

const vacuumUsage = `usage: protolake vacuum TABLE_URI [--retain 168h] [--dry-run] [--allow-short-retention]

Deletes data files the latest version no longer references (removed by
compaction, or orphaned by crashed writers) once they are older than the
retention, so time travel to versions younger than the retention keeps
working. Never touches _delta_log, _protolake or any other path whose first
component starts with "_" or ".". Records a VACUUM START and a VACUUM END
commit, as Spark does; --dry-run lists the files and commits nothing.

--retain defaults to the table's delta.deletedFileRetentionDuration (7 days);
a shorter one needs --allow-short-retention (it can break readers of older
versions and writers whose files are not committed yet). --retain 0h with
--allow-short-retention deletes every unreferenced file, as Spark's
VACUUM RETAIN 0 HOURS.

TABLE_URI is a path or a file://, s3://, hdfs:// URL (see README, Storage).

flags:
`

func runVacuum(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vacuum", flag.ContinueOnError)
	fs.SetOutput(stderr)
	retain := fs.String("retain", "", "retention: files unreferenced for less than this are kept (168h, \"interval 7 days\"); default: the table's delta.deletedFileRetentionDuration")
	dryRun := fs.Bool("dry-run", false, "list the files that would be deleted and delete nothing")
	allowShort := fs.Bool("allow-short-retention", false, "allow a retention below the table's delta.deletedFileRetentionDuration")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, vacuumUsage)
		fs.PrintDefaults()
	}
	uri, err := parseWithURI(fs, args, "vacuum")
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkLogFormat("vacuum", *logFormat); err != nil {
		return err
	}
	var retention time.Duration
	retainNothing := false
	if *retain != "" {
		if retention, err = commitlog.ParseInterval(*retain); err != nil || retention < 0 {
			return usageError{fmt.Errorf("vacuum: --retain %q: want a duration >= 0 such as 168h, 0h or \"interval 7 days\"", *retain)}
		}
		retainNothing = retention == 0
	}
	logger := newLogger(ingest.LogConfig{Level: "info", Format: *logFormat}, stderr)
	tbl, closeStore, err := openTable(ctx, uri, logger)
	if err != nil {
		return fmt.Errorf("vacuum %s: %w", open.Redact(uri), err)
	}
	defer closeStore()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return noTable("vacuum", open.Redact(uri), err)
	}
	tableRetention := commitlog.DefaultDeletedFileRetention
	if v, ok := snap.Metadata().Configuration[commitlog.PropDeletedFileRetentionDuration]; ok {
		if d, err := commitlog.ParseInterval(v); err == nil {
			tableRetention = d
		}
	}
	cands, err := tbl.VacuumCandidates(ctx, commitlog.VacuumOptions{Retention: retention, RetainNothing: retainNothing, AllowShortRetention: *allowShort})
	if err != nil {
		if errors.Is(err, commitlog.ErrRetentionTooShort) {
			return usageError{fmt.Errorf("vacuum %s: --retain %s is shorter than the table's %s (%s): pass --allow-short-retention to vacuum anyway (it can break readers of older versions and writers whose files are not committed yet)",
				uri, *retain, commitlog.PropDeletedFileRetentionDuration, tableRetention)}
		}
		return fmt.Errorf("vacuum %s: %w", open.Redact(uri), err)
	}
	// Belt and braces: whatever the listing says, never the log or an
	// underscore/dot directory.
	kept := cands[:0]
	for _, c := range cands {
		first, _, _ := strings.Cut(c.Key, "/")
		if strings.HasPrefix(first, "_") || strings.HasPrefix(first, ".") {
			continue
		}
		kept = append(kept, c)
	}
	cands = kept
	var size int64
	for _, c := range cands {
		size += c.Size
	}
	if *dryRun {
		if len(cands) == 0 {
			fmt.Fprintf(stdout, "dry run: nothing to delete at version %d (no unreferenced file older than %s)\n", snap.Version(), effectiveRetention(retention, retainNothing, tableRetention))
			return nil
		}
		fmt.Fprintf(stdout, "dry run: would delete %d files (%s) at version %d:\n", len(cands), humanBytes(size), snap.Version())
		for _, c := range cands {
			fmt.Fprintf(stdout, "  %s\t%d\t%s\n", c.Key, c.Size, c.ModTime.UTC().Format(time.RFC3339))
		}
		return nil
	}
	effective := effectiveRetention(retention, retainNothing, tableRetention)
	startParams := map[string]any{
		"retentionCheckEnabled":    strconv.FormatBool(!*allowShort),
		"specifiedRetentionMillis": strconv.FormatInt(effective.Milliseconds(), 10),
		"defaultRetentionMillis":   strconv.FormatInt(commitlog.DefaultDeletedFileRetention.Milliseconds(), 10),
	}
	if err := vacuumCommit(ctx, tbl, opVacuumStart, startParams, map[string]string{
		"numFilesToDelete":   strconv.Itoa(len(cands)),
		"sizeOfDataToDelete": strconv.FormatInt(size, 10),
	}); err != nil {
		return fmt.Errorf("vacuum %s: record VACUUM START: %w", open.Redact(uri), err)
	}
	n, delErr := tbl.DeleteFiles(ctx, cands)
	status := "COMPLETED"
	if delErr != nil {
		status = "FAILED"
	}
	endErr := vacuumCommit(context.WithoutCancel(ctx), tbl, opVacuumEnd, map[string]any{"status": status}, map[string]string{
		"numDeletedFiles":        strconv.Itoa(n),
		"numVacuumedDirectories": "0",
	})
	if delErr != nil {
		return fmt.Errorf("vacuum %s: deleted %d of %d files: %w", open.Redact(uri), n, len(cands), delErr)
	}
	if endErr != nil {
		return fmt.Errorf("vacuum %s: deleted %d files but could not record VACUUM END: %w", open.Redact(uri), n, endErr)
	}
	fmt.Fprintf(stdout, "deleted %d files (%s) no longer referenced for %s\n", n, humanBytes(size), effective)
	return nil
}

// effectiveRetention is the retention vacuum applies: --retain, 0 for
// --retain 0h, else the table's.
func effectiveRetention(retain time.Duration, retainNothing bool, table time.Duration) time.Duration {
	if retainNothing || retain > 0 {
		return retain
	}
	return table
}

// vacuumCommit records a commit holding only commitInfo.
func vacuumCommit(ctx context.Context, tbl *commitlog.Table, op string, params map[string]any, metrics map[string]string) error {
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return err
	}
	tx := tbl.NewTransaction(snap)
	tx.SetOperation(op, params)
	tx.SetMetrics(metrics)
	_, err = tx.Commit(ctx)
	return err
}
