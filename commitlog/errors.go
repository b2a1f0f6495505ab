package commitlog

import "errors"

// ErrNoTable is returned when the location has no Delta log.
var ErrNoTable = errors.New("no Delta table (no _delta_log entries)")

// ErrVersionNotFound is returned (wrapped) for a version that does not exist
// or cannot be reconstructed from the retained log.
var ErrVersionNotFound = errors.New("table version not found")

// ErrCorrupt is returned (wrapped) for a log entry that cannot be parsed.
var ErrCorrupt = errors.New("corrupt Delta log")
