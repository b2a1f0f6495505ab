//go:build race

package ingest_test

// raceEnabled is true under the race detector, whose slowdown changes the
// timing some tests depend on.
const raceEnabled = true
