package compact

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Config; a zero field takes its default.
const (
	DefaultTargetSize    = 128 << 20
	DefaultMinFiles      = 5
	DefaultMaxConcurrent = 1
	DefaultMaxAttempts   = 3
	DefaultRowGroupBytes = 64 << 20
)

// Config configures a compaction. The zero value is valid: every zero field
// takes the default documented on it.
type Config struct {
	// TargetSize is the size new files aim for; files at or above it are
	// never rewritten. Default 128 MiB.
	TargetSize int64
	// MinFiles is how many small files a partition needs before it is
	// compacted. Default 5.
	MinFiles int
	// MaxConcurrent is how many partitions are rewritten at the same time.
	// Default 1.
	MaxConcurrent int
	// Where restricts the partitions compacted, in the grammar of
	// ParsePredicate (e.g. `dt >= "2026-11-01" AND country IN ("DE","FR")`).
	// Empty: every partition.
	Where string
	// SortBy, when set, is a top-level column the rows of each new file are
	// sorted by (ascending, nulls first).
	SortBy string
	// DryRun plans without writing anything.
	DryRun bool
	// MaxAttempts bounds how many times one partition is planned and
	// rewritten after a concurrent compaction removed one of its files.
	// Default 3.
	MaxAttempts int
	// RowGroupBytes is how much input (compressed bytes) goes into one
	// output row group; the inputs of a row group are held in memory until
	// it is written. Default 64 MiB.
	RowGroupBytes int64
	// Logger receives one line per partition and retries. Default: discard.
	Logger *slog.Logger
	// Progress, when set, is called after every input file is rewritten and
	// after every partition commit, from the goroutine that did it (calls
	// are serialized).
	Progress func(Progress)
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Progress is how far a compaction has come. Files rewritten again after a
// conflict count again, so FilesDone and BytesDone may exceed the totals.
type Progress struct {
	FilesDone, FilesTotal           int
	BytesDone, BytesTotal           int64
	PartitionsDone, PartitionsTotal int
	// Elapsed is the time since Run started.
	Elapsed time.Duration
}

// Validate reports every invalid field (joined), including a --where
// predicate that does not parse.
func (c Config) Validate() error {
	var errs []error
	if c.TargetSize < 0 {
		errs = append(errs, fmt.Errorf("target size %d: must be positive", c.TargetSize))
	}
	if c.TargetSize > 0 && c.TargetSize < 1<<10 {
		errs = append(errs, fmt.Errorf("target size %d: must be at least 1KiB", c.TargetSize))
	}
	if c.MinFiles < 0 {
		errs = append(errs, fmt.Errorf("min files %d: must be >= 0", c.MinFiles))
	}
	if c.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("max concurrent %d: must be >= 0", c.MaxConcurrent))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d: must be >= 0", c.MaxAttempts))
	}
	if c.RowGroupBytes < 0 {
		errs = append(errs, fmt.Errorf("row group bytes %d: must be >= 0", c.RowGroupBytes))
	}
	if c.Where != "" {
		if _, err := ParsePredicate(c.Where); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.TargetSize == 0 {
		c.TargetSize = DefaultTargetSize
	}
	if c.MinFiles == 0 {
		c.MinFiles = DefaultMinFiles
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RowGroupBytes == 0 {
		c.RowGroupBytes = DefaultRowGroupBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
