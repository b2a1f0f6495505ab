// Package deadline wraps a storage.Store so that no request can hang: every
// call gets a deadline, and every call's outcome and duration are reported to
// an observer (metrics, health).
//
// Guarantees:
//
//   - A call returns at the latest Timeout after it started, whether or not
//     the wrapped store honours its context. A call that ran out of time
//     returns an error wrapping ErrTimeout (and context.DeadlineExceeded).
//   - A PutIfAbsent that ran out of time also wraps storage.ErrAmbiguous: the
//     wrapped store may still complete it, so the caller must find out by
//     reading (the commit log does, by txnId).
//   - After Put or PutIfAbsent returned, the wrapped store can no longer read
//     the caller's io.Reader (an abandoned call gets an error from it), so
//     the caller may reuse the memory behind it at once.
//   - Get's deadline covers reading the body too; closing the body releases
//     it.
//   - Errors the contract defines as answers (storage.ErrNotExist,
//     storage.ErrExist) and calls cancelled by the caller are not failures
//     for the observer.
//
// A Store is safe for concurrent use if the wrapped one is.
package deadline
