package writer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/format"
)

// codec compresses pages. zstd uses one encoder per writer (EncodeAll on a
// reused encoder allocates nothing); the other codecs come from parquet-go.
type codec struct {
	kind format.CompressionCodec
	zstd *zstd.Encoder
	pq   compress.Codec
}

func newCodec(c Compression, zstdLevel int) (codec, error) {
	switch c {
	case "", CompressionZstd:
		enc, err := zstd.NewWriter(nil,
			// Pages are compressed one at a time (EncodeAll): a window
			// beyond a page finds nothing more, and the default 8 MiB
			// window would make every writer hold 8 MiB of history.
			// Before the level: set after it, the window leaves the
			// fastest level's 64 KiB blocks, so that a page of 64 KiB and
			// a few rows took two blocks and the encoder's slower path
			// (history); a page of up to 128 KiB is one block.
			zstd.WithWindowSize(1<<20),
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(zstdLevel)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false),
			zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			return codec{}, fmt.Errorf("zstd encoder: %w", err)
		}
		return codec{kind: format.Zstd, zstd: enc}, nil
	case CompressionSnappy:
		return codec{kind: format.Snappy, pq: &snappy.Codec{}}, nil
	case CompressionGzip:
		return codec{kind: format.Gzip, pq: &gzip.Codec{}}, nil
	case CompressionLZ4:
		return codec{kind: format.Lz4Raw, pq: &lz4.Codec{}}, nil
	case CompressionNone:
		return codec{kind: format.Uncompressed}, nil
	}
	return codec{}, fmt.Errorf("unknown compression %q", c)
}

func (c *codec) encode(dst, src []byte) ([]byte, error) {
	switch {
	case c.zstd != nil:
		return c.zstd.EncodeAll(src, dst[:0]), nil
	case c.pq != nil:
		return c.pq.Encode(dst[:0], src)
	}
	return append(dst[:0], src...), nil
}

// compState is what a column has learned about its pages: whether they
// compress and whether DELTA_BINARY_PACKED beats PLAIN. Every probeEvery-th
// page (the first included) tries every choice; the pages between follow
// the last probe, except that a page that stops compressing turns
// compression off until the next probe.
type compState struct {
	pages int  // data pages flushed
	store bool // store pages uncompressed until the next probe
	delta bool // encode INT32/INT64 values DELTA_BINARY_PACKED
}

// probeEvery is how often a column re-decides its encoding and compression.
const probeEvery = 8

// compressPage compresses e.page (levels, then the values from byte
// levelsLen, PLAIN, or dictionary indexes when dict) into e.comp. For INT32 and
// INT64 columns it may replace e.page by the values DELTA_BINARY_PACKED
// (e.delta reports it): Spark's vectorized reader, DuckDB, arrow and
// parquet-go all read that encoding, and it shrinks timestamps, offsets and
// other clustered integers far below what zstd gets from PLAIN. Byte arrays
// are never DELTA_LENGTH_BYTE_ARRAY, smaller as that is for values of one
// length: Spark's vectorized reader before 3.5.7 takes a value's length
// from its place in the output batch instead of in the page (SPARK-52240),
// so a page that does not start a batch, or has nulls, fails to read
// (ArrayIndexOutOfBoundsException: Spark 3.5.6 on the benchmark corpus) or
// reads wrong values. A page that
// does not compress is stored: as a zstd frame of raw blocks (a reader
// decompresses it like any other, the writer spends nothing), or, for the
// other codecs, compressed anyway.
func (e *encoder) compressPage(c *column, levelsLen int, dict bool) error {
	st := &c.comp
	probe := st.pages%probeEvery == 0
	st.pages++
	e.delta = false
	// Without compression the choice is never made (pages are stored PLAIN
	// below), so DELTA is not encoded.
	deltaOK := !dict && c.nvals > 1 && e.codec.kind != format.Uncompressed &&
		(c.spec.kind == parquet.Int32 || c.spec.kind == parquet.Int64)
	if probe {
		st.store, st.delta = false, false
	}
	if deltaOK && (probe || st.delta) {
		e.encodeDelta(c, levelsLen)
		if !probe {
			e.page, e.alt = e.alt, e.page
			e.delta = true
		}
	}
	if e.codec.kind == format.Uncompressed || st.store && e.codec.zstd != nil {
		e.comp = e.stored(e.comp[:0], e.page)
		return nil
	}
	var err error
	if e.comp, err = e.codec.encode(e.comp[:0], e.page); err != nil {
		return err
	}
	if probe && deltaOK {
		if e.compAlt, err = e.codec.encode(e.compAlt[:0], e.alt); err != nil {
			return err
		}
		if len(e.compAlt) < len(e.comp) {
			e.page, e.alt = e.alt, e.page
			e.comp, e.compAlt = e.compAlt, e.comp
			e.delta, st.delta = true, true
		}
	}
	if n := len(e.page); e.codec.zstd != nil && n >= 1024 && len(e.comp) > n-n/16 {
		// Not worth what a reader spends decompressing it.
		st.store = true
		e.comp = e.stored(e.comp[:0], e.page)
	}
	return nil
}

// encodeDelta writes into e.alt the page's levels followed by its INT32 or
// INT64 values DELTA_BINARY_PACKED.
func (e *encoder) encodeDelta(c *column, levelsLen int) {
	e.alt = append(e.alt[:0], e.page[:levelsLen]...)
	var enc delta.BinaryPackedEncoding
	if c.spec.kind == parquet.Int32 {
		v := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(c.vals))), len(c.vals)/4)
		e.levels, _ = enc.EncodeInt32(e.levels[:0], v)
	} else {
		v := unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(c.vals))), len(c.vals)/8)
		e.levels, _ = enc.EncodeInt64(e.levels[:0], v)
	}
	e.alt = append(e.alt, e.levels...)
}

// stored returns src in the form of the codec that costs nothing to write:
// for zstd a frame of raw blocks, for none a copy.
func (e *encoder) stored(dst, src []byte) []byte {
	if e.codec.kind != format.Zstd {
		return append(dst, src...)
	}
	return appendStoredZstd(dst, src)
}

// appendStoredZstd appends src as one zstd frame of raw (stored) blocks:
// magic, a frame header with a 4-byte content size and the single-segment
// flag, then blocks of at most storedBlock bytes.
func appendStoredZstd(dst, src []byte) []byte {
	dst = appendStoredZstdHeader(dst, len(src))
	for {
		n := min(len(src), storedBlock)
		dst = appendRawBlockHeader(dst, n, n == len(src))
		dst = append(dst, src[:n]...)
		if src = src[n:]; len(src) == 0 {
			return dst
		}
	}
}

// storedBlock is the largest raw block of a stored zstd frame (the format's
// block size limit).
const storedBlock = 128 << 10

func appendStoredZstdHeader(dst []byte, n int) []byte {
	dst = append(dst, 0x28, 0xb5, 0x2f, 0xfd, 0xa0)
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

func appendRawBlockHeader(dst []byte, n int, last bool) []byte {
	h := uint32(n) << 3 // block type 0: raw
	if last {
		h |= 1
	}
	return append(dst, byte(h), byte(h>>8), byte(h>>16))
}

// sampleBytes is the size of each of the sampleWindows windows of a large
// page that leaveRaw compresses to decide.
const (
	sampleBytes   = 64 << 10
	sampleWindows = 3
)

// leaveRaw reports whether a large page (at least e.keep bytes, so at
// least 1 MiB) is written from its own buffer (own: flushPage built it
// in c.vals'), as stored bytes, instead of being compressed into a
// second buffer of about its size: always without compression, and with
// zstd unless each of three windows of sampleBytes (its start, middle
// and end) shrinks by a sixteenth (compressPage's threshold for storing
// a page). A large page it does not leave raw gets e.comp sized once,
// from the windows' ratio with slack, or for no compression at all, so
// that EncodeAll does not grow it in steps (five times the output
// allocated). Other codecs compress it anyway.
func (e *encoder) leaveRaw(page []byte, own bool) bool {
	switch {
	case e.codec.kind == format.Uncompressed:
		return own
	case e.codec.zstd == nil || len(page) < e.keep:
		return false
	}
	n := e.codec.zstd.MaxEncodedSize(len(page))
	if !own && cap(e.comp) >= n {
		return false
	}
	comp := 0
	for i := range sampleWindows {
		off := (len(page) - sampleBytes) * i / (sampleWindows - 1)
		e.comp = e.codec.zstd.EncodeAll(page[off:off+sampleBytes], e.comp[:0])
		if len(e.comp) > sampleBytes-sampleBytes/16 {
			if !own {
				e.comp = make([]byte, 0, n)
			}
			return own
		}
		comp += len(e.comp)
	}
	// Half as much again as the windows predict, and 64 KiB; never more
	// than a page that does not compress at all takes.
	est := len(page)*comp/(sampleWindows*sampleBytes)*3/2 + sampleBytes
	if est = min(est, n); cap(e.comp) < est {
		e.comp = make([]byte, 0, est)
	}
	return false
}

// rawSize is the size of page p in the file when leaveRaw chose to store
// it: for zstd that of appendStoredZstd(nil, p).
func (e *encoder) rawSize(p []byte) int {
	if e.codec.kind != format.Zstd {
		return len(p)
	}
	return 9 + len(p) + 3*max(1, (len(p)+storedBlock-1)/storedBlock)
}

// appendRaw appends to segs page header h and page p stored (rawSize(p)
// bytes) as segments that share p's memory: p is not copied, so it must
// not be written to afterwards.
func (e *encoder) appendRaw(segs [][]byte, h, p []byte) [][]byte {
	if e.codec.kind != format.Zstd {
		return append(segs, bytes.Clone(h), p)
	}
	// Page header, frame header and block headers in one allocation,
	// never grown: segments point into it.
	hdrs := append(make([]byte, 0, e.rawSize(p)-len(p)+len(h)), h...)
	hdrs = appendStoredZstdHeader(hdrs, len(p))
	from := 0
	for {
		n := min(len(p), storedBlock)
		hdrs = appendRawBlockHeader(hdrs, n, n == len(p))
		segs = append(segs, hdrs[from:len(hdrs):len(hdrs)], p[:n:n])
		from = len(hdrs)
		if p = p[n:]; len(p) == 0 {
			return segs
		}
	}
}
