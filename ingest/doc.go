// Package ingest runs `protolake run`: a Kafka consumer group member that
// keeps Delta tables up to date from topics of protobuf messages, exactly
// once, through restarts, crashes, rebalances and several instances at once.
//
// Config is the deployment configuration (one YAML document whose every field
// can also be set by a flag or a PROTOLAKE_* environment variable, validated
// with errors that name the field). NewRunner opens the tables; Runner.Run
// consumes.
//
// Guarantees:
//
//   - Exactly once. Every Delta commit of a table carries, for each Kafka
//     partition whose records it includes, a txn action with appId
//     protolake:<group>:<topic>:<partition> and version = the last offset
//     included, in the same commit as the files. A newly assigned partition
//     resumes at that version + 1 (or kafka.start_offset when the table has
//     no watermark), whatever the group's committed offsets say: those are
//     committed after each table commit for lag monitoring only.
//   - Fencing. When another instance committed one of our partitions
//     (commitlog.ErrFenced), or a data file could not be encoded, the table's
//     buffers are dropped and its partitions re-read from the watermarks:
//     records are read twice, never committed twice.
//   - Off the poll loop. Data files are uploaded by background goroutines
//     (Config.Storage.MaxUploads at once, retried until they land) and each
//     table's commits are made by its own committer goroutine; the poll loop
//     only decodes. A commit's txns cover only offsets whose rows are in its
//     files or earlier ones: a table is cut (every buffer flushed, the
//     consumed offsets set aside with the files) before it is committed.
//   - Parallel decoding. A poll's records decode at once on
//     Config.DecodeWorkers goroutines (default GOMAXPROCS), each table's
//     buffers split into as many shards and its records of the poll into
//     runs of equal bytes, in poll order (at least 256 KiB a shard: a
//     smaller poll takes fewer shards; with every shard taking part, 8
//     runs a shard, which the workers take in turn as they become free,
//     each writing its own shard); the outcomes (dead letters, resets,
//     fatal errors, the consumed offsets) are applied on the poll loop in
//     the order the records were polled, exactly as the sequential path
//     (DecodeWorkers 1) applies them. A cut flushes every shard and a reset drops every
//     shard, so the rules above hold unchanged. Registry-fed tables decode
//     sequentially.
//   - Deadlines. Every storage request has Config.Storage.RequestTimeout
//     (storage/deadline); a commit that times out is ambiguous and resolved
//     by txnId.
//   - Dead letters. A record the decoder rejects (or whose framing is
//     invalid) goes to the dead-letter table <table>_dlq with its raw bytes,
//     key, error, field path, byte offset, Kafka coordinates and the
//     descriptor fingerprint. The dead-letter table has its own txn
//     watermarks and is committed before the main table, so it is never
//     behind it; on restart a record at or below its watermark is not
//     written again. Nothing stalls a partition and nothing is dropped
//     silently.
//   - Failures. A commit that fails for another reason keeps the buffers and
//     is retried with backoff; the watermarks (and the group offsets) never
//     move past data that is not committed. A retry of rows that did land
//     (an unknown outcome) is refused by the txn watermark, and a commit
//     whose outcome stays unknown drops the buffers and re-reads instead.
//     When the memory limit is reached while a table cannot commit, fetching
//     for its topics pauses.
//   - Rebalances. Revoked partitions' tables are committed before the
//     partitions are released, within ¾ of kafka.rebalance_timeout
//     (rebalances wait for a poll's records to be decoded, not for uploads);
//     if that commit fails or takes longer, the buffers are dropped instead.
//     Lost partitions' buffers are dropped.
//   - Health. Runner.NotReady (/readyz) is "" only while the Runner is a
//     group member, its commits and storage requests succeed, none has been
//     running for longer than Config.Storage.SlowRequest, and Kafka answers
//     its probes. Errors retrying cannot fix (SASL authentication, ACLs, TLS
//     certificates, unknown topics) make Run return them once they have
//     lasted Config.Kafka.FatalAfter.
//   - Evolution. A table is pinned to its protobuf message: a new descriptor
//     that only adds is compatible and the first commit written with it
//     carries the merged schema; a breaking one makes NewRunner fail with an
//     error wrapping *schema.IncompatibleError.
package ingest
