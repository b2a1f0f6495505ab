package ingest

// SetMinShardBytes sets the least payload of a poll a decode shard of r is
// given (minShardBytes by default), before r runs: with 1, every poll of
// more than one record of a table decoded in parallel is split over its
// shards, which the tests' small polls would otherwise never be.
func SetMinShardBytes(r *Runner, n int64) { r.dec.minShard = n }

// LargestPoll is the most records one poll of r returned.
func LargestPoll(r *Runner) int { return r.dec.largestPoll }
