package writer

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
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
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(zstdLevel)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false))
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
