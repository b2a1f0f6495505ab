// Package writer turns protobuf messages (wire bytes plus their Kafka
// coordinates) into partitioned Parquet data files of a Delta table, and
// returns for each file what the Delta commit needs: path, size, partition
// values and statistics.
//
// # Decoding
//
// A Writer runs the schema.Plan of its table, compiled into a compact
// program. Each message is decoded in one pass over its bytes straight into
// column buffers, each field written as it is read (fields may arrive in
// any order, as each column is its own buffer): no dynamic messages, no
// per-message allocations in steady state. A record in which a singular
// field or a oneof comes twice (last one wins, messages merge), or one that
// fails, is rolled back and decoded again in two passes per message level
// (a field table fills slots, then the fields are emitted in column order);
// so are the table's message in a table partitioned by a field's value (the
// row's file is known only after the first pass; its message fields still
// decode in one pass each) and messages of more than 64 fields. All ways
// write the same bytes. Protobuf semantics are those of
// protobuf-go: fields in any order; the last of repeated singular scalars
// wins; repeated occurrences of a singular message merge; packed and
// unpacked repeated scalars mix; a map entry missing its key or value takes
// the default; the last of duplicate map keys wins; proto2 groups; unknown
// fields and extensions of the top-level message are kept, in wire order,
// in the `_unknown` column; a oneof keeps its last member.
//
// # Guarantees
//
//   - A message either becomes exactly one row or none: a message that fails
//     (truncated data, varint overflow, a field number out of range, invalid
//     UTF-8 in a string, a Timestamp or Duration out of range, a missing
//     proto2 required field, nesting deeper than MaxDepth) returns a
//     *DecodeError naming the field path and the byte offset, and is rolled
//     back from every column and from the statistics. Write never panics on
//     input.
//   - Rows of one partition keep their arrival order in the file.
//   - Files are Parquet with data page v1, zstd by default (snappy, gzip,
//     lz4 raw, none), dictionary encoding for byte-array columns where it
//     pays and for INT32, INT64, FLOAT and DOUBLE columns whose first page
//     with values has at most one distinct value in eight (as Spark
//     dictionary-encodes them), DELTA_BINARY_PACKED for INT32/INT64 pages
//     where it compresses smaller than PLAIN, and PLAIN otherwise (never
//     BYTE_STREAM_SPLIT, which Spark 3.5's vectorized reader lacks, nor
//     DELTA_LENGTH_BYTE_ARRAY, which it misreads before 3.5.7), page
//     statistics, column and offset indexes consistent with the pages, and
//     one row group. A page never splits a row. Compression is decided per
//     page: a zstd page that does not shrink by 1/16 is stored as a zstd
//     frame of raw blocks (still a valid zstd page). A page of large byte
//     arrays (at least max(1 MiB, 4 pages)) of which any of three 64 KiB
//     windows (start, middle, end) does not shrink by 1/16 is stored so
//     without being compressed, and written from its own buffer, not
//     copied.
//   - A file is written with one storage.Store.Put under a new name
//     ("<hive partition path>/part-<uuid>.c000.<codec>.parquet") and never
//     overwritten; a file whose Put failed is not reported. A store that
//     is a SegmentStore (ingest's uploader) gets the file's segments
//     instead (PutSegments) and keeps them: the Writer never touches them
//     again, so the file is not copied for its upload, and the spare its
//     buffers leave keeps no buffer of compressed pages (the next file
//     grows its own).
//   - Memory is bounded: each open file holds its compressed pages, one raw
//     page per column (Config.PageBytes; a PLAIN byte-array page about twice
//     that, the first page of one that gave its dictionary up early at most
//     1 MiB of values) and its dictionaries (at most 1 MiB
//     of values per column). BufferedBytes reports the total by length,
//     HeldBytes the memory taken (the buffers' capacity and the spares'
//     below); FlushLargest writes the largest buffers when a process-wide
//     limit is reached, until HeldBytes is within its target. The
//     buffers of finished files are kept for the next ones (spares),
//     largest first, as many as fit in Config.MaxBytes of capacity, and
//     at least the largest (after FlushLargest only that one, and
//     only if it fits in the target), so steady-state writing allocates
//     almost nothing, also when a commit finishes many partitions' files.
//
// Files are finished when a partition's buffer reaches Config.MaxRows or
// Config.MaxBytes (estimated encoded size), when its first row is older than
// Config.MaxAge, or on demand with Flush. A Writer is not safe for concurrent
// use.
package writer
