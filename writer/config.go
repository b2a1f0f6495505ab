package writer

import (
	"errors"
	"fmt"
	"time"
)

// Compression names a Parquet page compression codec.
type Compression string

// Supported compression codecs.
const (
	CompressionZstd   Compression = "zstd"
	CompressionSnappy Compression = "snappy"
	CompressionGzip   Compression = "gzip"
	CompressionLZ4    Compression = "lz4" // LZ4_RAW
	CompressionNone   Compression = "none"
)

// Defaults of Config; a zero field takes its default.
const (
	DefaultMaxBytes       = 128 << 20
	DefaultPageBytes      = 64 << 10
	DefaultPageRows       = 20_000
	DefaultZstdLevel      = 1
	DefaultMaxDictBytes   = 1 << 20
	DefaultStatsLeafLimit = 32
)

// maxDictBytes is the dictionary size beyond which a byte-array column
// stops dictionary encoding. A package constant: it is not worth an option.
const maxDictBytes = DefaultMaxDictBytes

// Config configures a Writer. The zero value is valid: every zero field takes
// the default documented on it.
type Config struct {
	// MaxRows finishes a partition's file when it holds this many rows.
	// 0 (default): no row limit.
	MaxRows int64 `yaml:"max_rows"`

	// MaxBytes finishes a partition's file when its estimated encoded size
	// (compressed pages plus the raw current pages) reaches this many
	// bytes. Default 128 MiB.
	MaxBytes int64 `yaml:"max_bytes"`

	// MaxAge finishes a partition's file when its first row is older than
	// this (checked on Write and by FlushExpired). 0 (default): no limit.
	MaxAge time.Duration `yaml:"max_age"`

	// Compression is the page codec: zstd (default), snappy, gzip, lz4
	// (LZ4_RAW) or none.
	Compression Compression `yaml:"compression"`

	// ZstdLevel is the zstd level (1 fastest … 22); default 1, which
	// klauspost/compress maps to its fastest encoder (with entropy coding
	// of literals, which matters for hex ids); 3–5 map to its default
	// encoder, 6–9 to "better", 10 and above to "best".
	ZstdLevel int `yaml:"zstd_level"`

	// PageBytes is the raw size at which a column's page is encoded and
	// compressed (PLAIN byte-array pages: twice that less a sixteenth,
	// which compresses ids and URLs better). Default 64 KiB: small pages
	// bound the memory of an open file (about PageBytes per column) and
	// sharpen the page index.
	PageBytes int `yaml:"page_bytes"`

	// PageRows caps the rows of one page. Default 20,000.
	PageRows int `yaml:"page_rows"`

	// NoDictionary disables dictionary encoding. By default byte-array
	// columns start dictionary-encoded and fall back to PLAIN when the
	// dictionary does not pay (more distinct values than half the values
	// of the first page, or a dictionary over 1 MiB).
	NoDictionary bool `yaml:"no_dictionary"`

	// MaxRecordBytes bounds the buffer memory decoding one record may take:
	// its column cells (values and levels, counted at RecordCellBytes
	// each) and the decoder's per-occurrence bookkeeping. Decoding
	// amplifies: a 20 MB record of 10 million one-byte packed elements
	// would take ~30× its size. A record over the bound is rejected with
	// ErrRecordTooLarge (a *DecodeError: nothing of it stays buffered), so
	// its caller can dead-letter it with the reason. 0 (default): no bound.
	MaxRecordBytes int64 `yaml:"-"`

	// StatsLeafLimit is how many leaf columns (Delta's
	// dataSkippingNumIndexedCols) get statistics. Default 32; -1 means
	// none.
	StatsLeafLimit int `yaml:"stats_leaf_limit"`
}

func (c Config) withDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Compression == "" {
		c.Compression = CompressionZstd
	}
	if c.ZstdLevel == 0 {
		c.ZstdLevel = DefaultZstdLevel
	}
	if c.PageBytes == 0 {
		c.PageBytes = DefaultPageBytes
	}
	if c.PageRows == 0 {
		c.PageRows = DefaultPageRows
	}
	if c.StatsLeafLimit == 0 {
		c.StatsLeafLimit = DefaultStatsLeafLimit
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.MaxRows < 0 {
		errs = append(errs, fmt.Errorf("max_rows: %d is negative", c.MaxRows))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max_bytes: %d is negative", c.MaxBytes))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: %s is negative", c.MaxAge))
	}
	switch c.Compression {
	case "", CompressionZstd, CompressionSnappy, CompressionGzip, CompressionLZ4, CompressionNone:
	default:
		errs = append(errs, fmt.Errorf("compression: %q is not one of zstd, snappy, gzip, lz4, none", c.Compression))
	}
	if c.ZstdLevel < 0 || c.ZstdLevel > 22 {
		errs = append(errs, fmt.Errorf("zstd_level: %d is outside 1..22", c.ZstdLevel))
	}
	if c.PageBytes < 0 || c.PageBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("page_bytes: %d is outside 1..1GiB", c.PageBytes))
	}
	if c.PageRows < 0 {
		errs = append(errs, fmt.Errorf("page_rows: %d is negative", c.PageRows))
	}
	if c.StatsLeafLimit < -1 {
		errs = append(errs, fmt.Errorf("stats_leaf_limit: %d is below -1", c.StatsLeafLimit))
	}
	return errors.Join(errs...)
}
