package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage/open"
)

const checkpointUsage = `usage: protolake checkpoint TABLE_URI

Writes a classic Parquet checkpoint of the latest version now (as Spark lays
it out) and points _delta_log/_last_checkpoint at it, so readers replay fewer
JSON commits. An existing checkpoint of that version is left alone.

TABLE_URI is a path or a file://, s3://, hdfs:// URL (see README, Storage).
`

func runCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := newMaintenance("checkpoint", checkpointUsage, stderr, false)
	uri, err := m.parse(args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	tbl, closeStore, err := m.open(ctx, uri)
	if err != nil {
		return err
	}
	defer closeStore()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return noTable("checkpoint", open.Redact(uri), err)
	}
	if done, err := tbl.HasCheckpoint(ctx, snap.Version()); err != nil {
		return fmt.Errorf("checkpoint %s: %w", open.Redact(uri), err)
	} else if done {
		fmt.Fprintf(stdout, "version %d is already checkpointed (%s); nothing written\n", snap.Version(), commitlog.CheckpointKey(snap.Version()))
		return nil
	}
	info, err := tbl.Checkpoint(ctx, snap.Version())
	if err != nil {
		return noTable("checkpoint", open.Redact(uri), err)
	}
	fmt.Fprintf(stdout, "checkpoint at version %d: %d actions, %d files, %s (%s)\n", info.Version, info.Size, info.NumOfAddFiles, humanBytes(info.SizeInBytes), commitlog.CheckpointKey(info.Version))
	return nil
}
