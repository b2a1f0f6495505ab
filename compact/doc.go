// Package compact rewrites the small data files of a Delta table's partitions
// into files close to a target size (Delta's OPTIMIZE, bin-packing), while
// streaming writers keep appending to the table.
//
// Run plans every partition matched by Config.Where from one snapshot: the
// files smaller than Config.TargetSize, grouped by their tags (so a file only
// joins files written with the same proto fingerprint), are packed in log
// order into bins of at most TargetSize bytes; a partition with fewer than
// Config.MinFiles small files is left alone. Each bin becomes one new file
// "<partition path>/part-<uuid>.c000.zstd.parquet" (a new file is started
// when an input's Parquet schema differs from the previous input's, so files
// of different schema versions are never mixed).
//
// Guarantees:
//
//   - Rows and values are unchanged: every input row group is copied with
//     the input file's own Parquet schema (names, order, field ids, logical
//     types, repetition); only encodings and compression change (zstd, PLAIN
//     or dictionary). With Config.SortBy
//     the rows of a bin are sorted by that column; otherwise their order is
//     the inputs' order.
//   - One commit per partition, operation OPTIMIZE, every add and remove with
//     dataChange false, so readers of a stream (and Delta's change feed) see
//     no new data; txn watermarks and the proto pin are untouched (the commit
//     holds only adds and removes). A partition that fails does not stop the
//     others; Result lists each partition's outcome.
//   - Concurrency: commitlog retries a compaction over concurrent appends
//     (and over compactions of other files); when a concurrent commit removed
//     one of the files being compacted, the commit is ErrConflict, the new
//     files are deleted (best effort; vacuum removes leftovers) and the
//     partition is planned again from a fresh snapshot, at most
//     Config.MaxAttempts times, after which it is reported as failed. Nothing
//     is lost or doubled: a file is removed only in the commit that adds its
//     rows back.
//   - Statistics of a new file are the merge of its inputs' statistics
//     (numRecords summed, minValues/maxValues the min/max, nullCount summed),
//     which is exact for min/max of untruncated values and keeps truncated
//     string bounds valid bounds; a column is left out when an input lacks
//     its statistic, and numRecords is taken from the Parquet footers when
//     an input has no stats.
//   - Memory is bounded by the target size, not the partition size: inputs
//     (each smaller than the target) are held in memory only until
//     Config.RowGroupBytes of them are pending, then written as one output
//     row group, column by column; the output file is buffered until its
//     Put. A partition thus needs about RowGroupBytes + TargetSize + one
//     encoded row group; with Config.SortBy a whole bin (at most TargetSize
//     of compressed input) is decoded in memory to be sorted.
//   - Files the package cannot rewrite faithfully are refused, never
//     rewritten: files with deletion vectors are skipped (reported in the
//     plan), and tables whose protocol protolake cannot write are refused
//     before anything is written.
package compact
