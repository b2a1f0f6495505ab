// Package storage defines the contract between protolake and the places it
// keeps tables: a local filesystem, an S3-compatible object store, HDFS, or
// memory. It is the only layer that touches a filesystem or object store.
//
// Guarantees every backend gives:
//
//   - Get returns ErrNotExist (wrapped) when the key is absent.
//   - Put writes a whole object or nothing visible under its key; readers
//     never observe a partial object. It may overwrite (data files have unique
//     names, so protolake never relies on that).
//   - PutIfAbsent is atomic and all-or-nothing: of many concurrent callers on
//     one key exactly one succeeds and every other gets ErrExist. An outcome
//     that cannot be known (a timeout, an S3 409) is reported as ErrAmbiguous,
//     and the caller must find out by reading (the commit log looks for its
//     txnId).
//   - List returns every object whose key starts with the prefix, in
//     lexicographic key order, with its size and modification time.
//   - Delete of an absent key is not an error.
//
// Keys are slash-separated paths relative to the store's root, never starting
// with a slash.
//
// Backends live in sub-packages (storage/local, storage/mem, storage/s3,
// storage/hdfs); storage/open picks one from a URL in one place. Each
// backend's package documentation says how it keeps these guarantees.
//
// For tests: storage/storagetest is the acceptance suite every backend passes,
// storage/faulty wraps a Store to inject failures (before or after a write
// lands) and latency, and storage/s3/s3test starts gofakes3 and MinIO
// servers on 127.0.0.1.
package storage
