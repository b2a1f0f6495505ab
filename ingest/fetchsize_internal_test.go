package ingest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fetched is a batch of n records of size bytes each, compressed by ratio
// (snappy when ratio > 1, else uncompressed).
func fetched(n, size int, ratio float64) kgo.FetchBatchMetrics {
	m := kgo.FetchBatchMetrics{NumRecords: n, UncompressedBytes: n * size, CompressedBytes: n * size}
	if ratio > 1 {
		m.CompressionType = 2
		m.CompressedBytes = int(float64(m.UncompressedBytes) / ratio)
	}
	return m
}

// feed reads batches of m until they add up to bytes fetched.
func feed(f *fetchSizer, m kgo.FetchBatchMetrics, bytes int) {
	for n := 0; n < bytes; n += m.CompressedBytes {
		f.read(m)
	}
}

// TestFetchSizer checks the fetch sizes the sizer asks for a learnt ratio
// of held to fetched bytes: the budget (memory_limit/32) over that ratio,
// within [1 MiB, the budget], and how fast it moves.
func TestFetchSizer(t *testing.T) {
	const mib = 1 << 20
	var got [][2]int32
	f := newFetchSizer(256 * mib)
	f.setApply(func(a, b int32) { got = append(got, [2]int32{a, b}) })
	if len(got) != 1 || got[0] != [2]int32{8 * mib, mib} {
		t.Fatalf("before any batch: applied %v, want [[8 MiB 1 MiB]]", got)
	}

	// The mid-size benchmark's records: 65 of 960 B a batch, snappy 1.74x.
	mid := fetched(65, 960, 1.74)
	want := int32(float64(8*mib) * float64(mid.CompressedBytes) / float64(mid.CompressedBytes+mid.UncompressedBytes+65*recordHeld))
	feed(f, mid, 8*mib) // about 3 fetches of them
	maxB, part := f.sizes()
	t.Logf("1 KB snappy records: %.2f held per fetched byte (%d B a kgo.Record), FetchMaxBytes %d", f.ratio, recordHeld, maxB)
	if maxB < want*99/100 || maxB > want*101/100 || part != mib {
		t.Errorf("1 KB snappy records: sizes %d, %d; want %d (8 MiB / %.2f held per fetched byte) ±1%%, 1 MiB",
			maxB, part, want, float64(8*mib)/float64(want))
	}
	if last := got[len(got)-1][0]; last != maxB && (last-maxB > last/16 || maxB-last > last/16) {
		t.Errorf("applied %d last, the sizer asks %d: more than 1/16 apart", last, maxB)
	}
	applied := len(got)

	// A transaction's control batch: one small uncompressed record that
	// holds far more than its bytes. It must not move the size much.
	f.read(fetched(1, 60, 1))
	if m, _ := f.sizes(); m < maxB*99/100 {
		t.Errorf("after one control batch the size fell from %d to %d", maxB, m)
	}
	if len(got) != applied {
		t.Errorf("a control batch applied a new size: %v", got[applied:])
	}

	// Batches that hold less (large uncompressed records) raise it back
	// slowly: not after one fetch's worth, but after many, to the budget.
	big := fetched(1, 4*mib, 1)
	f.read(big)
	if m, _ := f.sizes(); m >= 4*mib {
		t.Errorf("one 4 MiB uncompressed batch after the snappy ones raised the size to %d at once", m)
	}
	feed(f, big, 200*mib)
	if m, _ := f.sizes(); m < 8*mib*98/100 || m > 8*mib {
		t.Errorf("after 200 MiB of uncompressed 4 MiB records: size %d, want about the budget, 8 MiB", m)
	}

	// Records that decompress 10x: the floor, 1 MiB.
	feed(f, fetched(100, 1000, 10), 8*mib)
	if m, p := f.sizes(); m != mib || p != mib {
		t.Errorf("10x compressed records: sizes %d, %d; want the floor, 1 MiB, 1 MiB", m, p)
	}

	// The default limit and the end-to-end benchmark's 480-B records
	// (snappy 1.76x): a fetch still takes 8 partitions' 1 MiB each.
	f = newFetchSizer(1 << 30)
	feed(f, fetched(130, 480, 1.76), 64*mib)
	m, _ := f.sizes()
	t.Logf("1 GiB, 480-B snappy records: %.2f held per fetched byte, FetchMaxBytes %d", f.ratio, m)
	if m < 8*mib || m > 32*mib {
		t.Errorf("1 GiB, 480-B snappy records: FetchMaxBytes %d, want 8 MiB to 32 MiB", m)
	}
}
