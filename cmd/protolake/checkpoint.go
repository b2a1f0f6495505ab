package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/protolake/protolake/commitlog"
)

const checkpointUsage = `usage: protolake checkpoint TABLE_URI

Writes a classic Parquet checkpoint of the latest version now (as Spark lays
it out) and points _delta_log/_last_checkpoint at it, so readers replay fewer
JSON commits. An existing checkpoint of that version is left alone.

TABLE_URI is a path or a file://, s3://, hdfs:// URL (see README, Storage).
`

func runCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, checkpointUsage)
		fs.PrintDefaults()
	}
	uri, err := parseWithURI(fs, args, "checkpoint")
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	tbl, closeStore, err := openTable(ctx, uri, nil)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", uri, err)
	}
	defer closeStore()
	info, err := tbl.Checkpoint(ctx, commitlog.Latest)
	if err != nil {
		return noTable("checkpoint", uri, err)
	}
	fmt.Fprintf(stdout, "checkpoint at version %d: %d actions, %d files, %s (%s)\n", info.Version, info.Size, info.NumOfAddFiles, humanBytes(info.SizeInBytes), commitlog.CheckpointKey(info.Version))
	return nil
}
