// Package commitlog owns a table's Delta transaction log: snapshot replay,
// optimistic commits with conflict checks and retries, exactly-once txn
// watermarks, checkpoints, log cleanup, vacuum, and the pin of the table to
// its protobuf message.
//
// A table lives at the root of a store (any storage.Store: local, S3, HDFS,
// memory); its log is the objects under _delta_log/. The package declares
// the storage methods it uses (Reader, Store) and imports no backend.
//
// Guarantees:
//
//   - Reading. LoadSnapshot (Table.Snapshot, Table.SnapshotAt) reconstructs
//     any version from the newest complete checkpoint at or below it
//     (classic single-file or multi-part; incomplete multi-part sets are
//     ignored; an unreadable checkpoint falls back to an older one or to a
//     replay from commit 0) and the JSON commits after it. _last_checkpoint
//     only says where to start listing (so a long log is not listed whole);
//     a corrupt one, or one naming a missing checkpoint, falls back to
//     listing all of _delta_log, so it cannot mislead. Files are reconciled on their URI-decoded path and
//     reported as written. A version that does not exist or cannot be
//     reconstructed (below the first checkpoint of a log without commit 0,
//     a missing commit) is ErrVersionNotFound, never an empty snapshot.
//     Actions and fields this package does not model (cdc, domainMetadata,
//     deletionVector, stats_parsed…) are tolerated; unknown fields of known
//     actions and unknown actions are kept verbatim.
//   - Paths. Every add and remove path, in commits and checkpoints, must
//     be a relative path below the table root: an absolute path or URI
//     (file:, s3a:, …) or one whose decoded form has "." or ".." segments
//     makes the log entry corrupt (ErrPathOutsideTable), so no snapshot —
//     and nothing that inspect lists, compact rewrites or vacuum deletes —
//     names a file outside the table. Commits are checked the same way.
//   - Schema. A metaData without schemaString reads as an empty schema (as
//     in Spark); writing to such a table is refused (ErrNoSchema).
//   - Cost. Snapshots share their file maps copy-on-write: a commit's
//     CommitResult.Snapshot and Table.Update cost O(new actions), not
//     O(files), and neither lists the log. A writer that keeps its snapshot
//     commits with one log write per commit at any table size.
//   - Committing. A commit is one put-if-absent of _delta_log/<v>.json: it
//     is atomic, and never overwrites another writer's commit. On losing a
//     race the winning commits are read and judged (see Transaction.Commit):
//     blind appends are retried at the next version, a commit that removes
//     files conflicts only with winners that removed the same files
//     (ErrConflict), a winner's txn for one of the commit's appIds fences it
//     (ErrFenced), protocol and metadata changes are re-validated. Retries
//     are bounded with jittered exponential backoff.
//   - Exactly once. Each commit carries a random commitInfo.txnId. An
//     ambiguous write (storage.ErrAmbiguous) is resolved by reading the
//     version back and looking for it; a commit therefore lands at most
//     once, and a caller told it failed (other than *AmbiguousCommitError)
//     can retry without duplicating and delete the files it staged: once
//     an attempt was ambiguous, every later failure is an
//     *AmbiguousCommitError until that version is read back. Txn watermarks only move forward: a
//     commit whose offsets are at or below the table's watermark for its
//     appId is refused with ErrFenced.
//   - Protocol. protolake writes protocol 1/2 and refuses (ErrUnsupportedProtocol,
//     naming what is missing) to commit to a table whose protocol needs
//     versions or features it does not implement, re-checking every
//     protocol change it meets while retrying.
//   - Checkpoints and cleanup. After a commit at a multiple of
//     delta.checkpointInterval (default 10) a classic checkpoint in Spark's
//     Parquet layout and _last_checkpoint are written (best effort: a failure
//     is reported in CommitResult, the commit stands; with
//     Config.BackgroundCheckpoints after Commit returns, failures logged).
//     The checkpoint is streamed into the store's Put as it is encoded
//     (memory: one row group, CheckpointRowGroupRows actions or
//     CheckpointRowGroupBytes, plus what the store buffers), not its
//     PutIfAbsent: checkpoints of a version are equivalent and a Put is
//     all-or-nothing. At most every Config.LogCleanupInterval (1h), log entries older
//     than delta.logRetentionDuration (default 30 days) are then deleted, but
//     only below a checkpoint that stays and that this process has parsed,
//     so every retained version remains reconstructable. Cleanup reads
//     only the expired head of the log: pages of the numbered entries in
//     key order on a store that offers storage.PageLister (S3, HDFS), names
//     probed with storage.Statter on one that does not (local disk), the
//     whole listing only on a store with neither. Checkpoint row groups hold
//     at most CheckpointRowGroupRows actions.
//   - Vacuum. VacuumCandidates only lists; it never offers a file the latest
//     snapshot references, one a tombstone younger than the retention
//     references, anything under _delta_log or a path whose first component
//     starts with "_" or ".", and refuses a retention shorter than
//     delta.deletedFileRetentionDuration unless told otherwise. DeleteFiles
//     refuses any such protected path whatever list it is given. Vacuum
//     lists, records VACUUM START, deletes and records VACUUM END (also
//     after a failure or cancellation), as Spark does.
//
// Not found: a location without a log is ErrNoTable; Create on an existing
// table is ErrTableExists (creation is never "open existing": the caller
// decides, comparing PinOf(snapshot.Metadata())).
//
// The log format protolake writes is described for users in
// docs/log-format.md.
package commitlog
