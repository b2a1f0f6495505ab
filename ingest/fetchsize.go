package ingest

import (
	"sync"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxConcurrentFetches bounds the fetches the Kafka client buffers at once.
const maxConcurrentFetches = 4

// fetchMaxBytes is the per-fetch budget for a memory limit: 1/32 of it,
// between 1 MiB and franz-go's default of 50 MiB. It is what a fetch may
// hold once read (see fetchSizer), and the largest FetchMaxBytes asked.
func fetchMaxBytes(limit ByteSize) int32 {
	return int32(min(max(int64(limit)/32, 1<<20), 50<<20))
}

const (
	// minFetchBytes is the smallest FetchMaxBytes the sizer asks: the
	// floor fetchMaxBytes always had. A batch larger than a fetch is still
	// returned, alone (KIP-74), so the floor is about round trips, not
	// about the largest record.
	minFetchBytes = 1 << 20
	// partFetchBytes is franz-go's FetchMaxPartitionBytes default, which
	// protolake never raised: the sizer keeps it, or FetchMaxBytes if that
	// is smaller.
	partFetchBytes = 1 << 20
	// recordHeld is what a fetched record holds beside its bytes: its
	// kgo.Record and the pointer to it.
	recordHeld = int(unsafe.Sizeof(kgo.Record{})) + 8
)

// fetchSizer sizes the Kafka client's fetches by the bytes they hold once
// read, not by the bytes the broker sends. FetchMaxBytes counts batches
// as stored, compressed; a fetch is held as the response, its decompressed
// batches and a kgo.Record per record: about 3 times its size for
// snappy-compressed records of 1 KB. The sizer is a franz-go hook
// (HookFetchBatchRead): from every batch read it learns held bytes per
// fetched byte (a smoothed maximum: it rises within about a fetch's bytes
// of batches that hold more, and falls over about 4 fetch budgets of
// batches that hold less, so a small control batch moves it little), and
// asks FetchMaxBytes = budget / that ratio, between minFetchBytes and the
// budget (Client.UpdateFetchMaxBytes).
type fetchSizer struct {
	budget int64 // held bytes a fetch may take: fetchMaxBytes(memory_limit)

	mu      sync.Mutex
	ratio   float64 // held bytes per fetched byte, at least 1
	maxB    int32   // FetchMaxBytes for ratio
	applied int32   // the FetchMaxBytes last given to apply
	apply   func(maxBytes, maxPartBytes int32)
}

// newFetchSizer is a sizer for a budget of fetchMaxBytes(limit) held bytes
// per fetch; until it has read a batch it asks the whole budget.
func newFetchSizer(limit ByteSize) *fetchSizer {
	b := fetchMaxBytes(limit)
	return &fetchSizer{budget: int64(b), ratio: 1, maxB: b}
}

// OnFetchBatchRead implements kgo.HookFetchBatchRead.
func (f *fetchSizer) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	f.read(m)
}

// read learns from one batch and applies the new size if it moved by
// 1/16 or more since the last one applied.
func (f *fetchSizer) read(m kgo.FetchBatchMetrics) {
	if m.CompressedBytes <= 0 || m.NumRecords <= 0 {
		return
	}
	held := m.CompressedBytes + m.NumRecords*recordHeld
	if m.CompressionType != 0 {
		held += m.UncompressedBytes
	}
	r := max(float64(held)/float64(m.CompressedBytes), 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	span := float64(f.budget) / 8 // rising
	if r < f.ratio {
		span = 4 * float64(f.budget)
	}
	f.ratio += (r - f.ratio) * min(float64(m.CompressedBytes)/span, 1)
	f.maxB = int32(min(max(float64(f.budget)/f.ratio, minFetchBytes), float64(f.budget)))
	if d := f.maxB - f.applied; f.apply != nil && (d > f.applied/16 || -d > f.applied/16) {
		f.applied = f.maxB
		f.apply(f.maxB, min(partFetchBytes, f.maxB))
	}
}

// setApply makes apply (the client's UpdateFetchMaxBytes) take the sizes
// from now on, starting with the current ones.
func (f *fetchSizer) setApply(apply func(maxBytes, maxPartBytes int32)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apply, f.applied = apply, f.maxB
	apply(f.maxB, min(partFetchBytes, f.maxB))
}

// sizes are the FetchMaxBytes and FetchMaxPartitionBytes the sizer asks now.
func (f *fetchSizer) sizes() (maxBytes, maxPartBytes int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxB, min(partFetchBytes, f.maxB)
}
