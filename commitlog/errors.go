package commitlog

import "errors"

// ErrNoTable is returned when the location has no Delta log.
var ErrNoTable = errors.New("no Delta table (no _delta_log entries)")

// ErrVersionNotFound is returned (wrapped) for a version that does not exist
// or cannot be reconstructed from the retained log.
var ErrVersionNotFound = errors.New("table version not found")

// ErrCorrupt is returned (wrapped) for a log entry that cannot be parsed.
var ErrCorrupt = errors.New("corrupt Delta log")

// ErrUnsupportedProtocol is returned (wrapped, as *UnsupportedProtocolError)
// when a table's protocol needs something protolake does not implement.
var ErrUnsupportedProtocol = errors.New("unsupported table protocol")

// ErrNoSchema is returned (wrapped) when protolake is asked to write to a
// table whose metaData has no schemaString (Spark tolerates one, and reads
// it as an empty schema; so does protolake when reading). Set the table's
// schema with a Delta writer that can, or write to a new table.
var ErrNoSchema = errors.New("table metaData has no schemaString")

// ErrPathOutsideTable is returned (wrapped, as a CorruptError of the log
// entry) for an add or remove whose path could resolve outside the table
// root: an absolute path or URI (file:, s3:, …) or one with "." or ".."
// segments. Every file protolake reads, lists for readers, rewrites or
// deletes comes from a snapshot, so no such path is ever followed.
var ErrPathOutsideTable = errors.New("file path leaves the table root")

// ErrConflict is returned (wrapped) when a commit cannot be made because a
// concurrent commit invalidated it (it removed a file this commit removes,
// changed the metadata, …) or because the retries ran out. Start again from
// a fresh snapshot.
var ErrConflict = errors.New("commit conflicts with a concurrent commit")

// ErrFenced is returned (wrapped, as *FencedError) when another writer
// committed a txn for one of this commit's appIds: another instance owns
// that Kafka partition now. Drop the buffered data and do not retry.
var ErrFenced = errors.New("fenced by another writer of the same txn appId")

// ErrTableExists is returned by Create when the table already has a log.
var ErrTableExists = errors.New("table already exists")

// ErrAmbiguousCommit is returned (wrapped, as *AmbiguousCommitError) when a
// commit's outcome could not be determined; resolve it later with
// Table.FindCommit and the transaction's TxnID.
var ErrAmbiguousCommit = errors.New("commit outcome unknown")
