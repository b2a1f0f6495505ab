package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// softLimit keeps the Go runtime's soft memory limit at what run may hold:
// the memory that is not buffers (the baseline, and the tables' snapshots,
// which memory_limit does not bound) plus ¾ of memory_limit. Set once at
// start, before any table is loaded, the limit would sit below the live
// heap of a table of many files, and the collector would run without
// pause trying to reach it.
//
// The memory that is not buffers is estimated after each collection as
// the live heap (/gc/heap/live:bytes) less the bytes the runner counts as
// buffered or uploading. That estimate also holds what the buffers do not
// count (Kafka's fetches, the record being decoded, buffers' spare
// capacity), which comes and goes; the limit therefore follows the
// smallest estimate of the last window samples, so a passing large record
// does not raise it, while a snapshot, which stays, does.
type softLimit struct {
	floor     int64 // the limit set at start: baseline + ¾ memory_limit
	liveStart int64 // the live heap at start, part of floor already
	window    []int64
	next      int
	filled    int
}

// softLimitWindow samples of softLimitEvery: the limit follows a snapshot
// that grew within about a minute.
const (
	softLimitWindow = 12
	softLimitEvery  = 5 * time.Second
)

// newSoftLimit measures the baseline (after a collection: the packages'
// data, no table yet) and returns the tracker with the start limit.
func newSoftLimit(memoryLimit int64) *softLimit {
	runtime.GC()
	return &softLimit{floor: goMemory() + memoryLimit*3/4, liveStart: liveHeap(), window: make([]int64, softLimitWindow)}
}

// observe adds a sample of the live heap and of the bytes held in buffers
// then, and returns the limit: floor plus the growth, since start, of the
// smallest non-buffer heap of the window, never below floor.
func (s *softLimit) observe(live, held int64) int64 {
	s.window[s.next] = live - held
	s.next = (s.next + 1) % len(s.window)
	s.filled = min(s.filled+1, len(s.window))
	low := s.window[0]
	for _, v := range s.window[1:s.filled] {
		low = min(low, v)
	}
	return s.floor + max(0, low-s.liveStart)
}

// track re-derives the limit every softLimitEvery until ctx ends; held
// reports the bytes buffered and uploading.
func (s *softLimit) track(ctx context.Context, held func() int64) {
	t := time.NewTicker(softLimitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			debug.SetMemoryLimit(s.observe(liveHeap(), held()))
		}
	}
}

// liveHeap is the heap the last collection found live.
func liveHeap() int64 {
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	return int64(m[0].Value.Uint64())
}
