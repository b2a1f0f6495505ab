// Package config holds the configuration types that more than one
// component uses — `run`'s ingest configuration and the maintenance
// commands (compact, vacuum) — so none of them borrows another's: sizes
// written with units (ByteSize) and the log output (LogConfig).
//
// Parsing is strict: a value that is not exactly understood is an error
// naming it, never a silent default.
package config
