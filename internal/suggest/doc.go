// Package suggest finds the names nearest to a mistyped one, for error
// messages that say "did you mean …?" (message names in schema, flags of
// protolake run). It guarantees a deterministic order (distance, then
// name) and has no state and no I/O.
package suggest
