package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage/open"
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
	m := newMaintenance("vacuum", vacuumUsage, stderr, true)
	fs := m.fs
	retain := fs.String("retain", "", "retention: files unreferenced for less than this are kept (168h, \"interval 7 days\"); default: the table's delta.deletedFileRetentionDuration")
	dryRun := fs.Bool("dry-run", false, "list the files that would be deleted and delete nothing")
	allowShort := fs.Bool("allow-short-retention", false, "allow a retention below the table's delta.deletedFileRetentionDuration")
	uri, err := m.parse(args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
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
	tbl, closeStore, err := m.open(ctx, uri)
	if err != nil {
		return err
	}
	defer closeStore()
	opts := commitlog.VacuumOptions{Retention: retention, RetainNothing: retainNothing, AllowShortRetention: *allowShort, DryRun: *dryRun}
	res, err := tbl.Vacuum(ctx, opts)
	switch {
	case errors.Is(err, commitlog.ErrNoTable):
		return noTable("vacuum", open.Redact(uri), err)
	case errors.Is(err, commitlog.ErrRetentionTooShort):
		snap, serr := tbl.Snapshot(ctx)
		if serr != nil {
			return noTable("vacuum", open.Redact(uri), serr)
		}
		return usageError{fmt.Errorf("vacuum %s: --retain %s is shorter than the table's %s (%s): pass --allow-short-retention to vacuum anyway (it can break readers of older versions and writers whose files are not committed yet)",
			open.Redact(uri), *retain, commitlog.PropDeletedFileRetentionDuration, snap.DeletedFileRetention())}
	case err != nil:
		return fmt.Errorf("vacuum %s: %w", open.Redact(uri), err)
	}
	if *dryRun {
		if len(res.Files) == 0 {
			fmt.Fprintf(stdout, "dry run: nothing to delete at version %d (no unreferenced file older than %s)\n", res.Version, res.Retention)
			return nil
		}
		fmt.Fprintf(stdout, "dry run: would delete %d files (%s) at version %d:\n", len(res.Files), humanBytes(res.Bytes), res.Version)
		for _, c := range res.Files {
			fmt.Fprintf(stdout, "  %s\t%d\t%s\n", c.Key, c.Size, c.ModTime.UTC().Format(time.RFC3339))
		}
		return nil
	}
	fmt.Fprintf(stdout, "deleted %d files (%s) no longer referenced for %s\n", res.Deleted, humanBytes(res.Bytes), res.Retention)
	return nil
}
