package ingest

import (
	"runtime"
	"strings"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/open"
)

// ApplyDefaults fills zero values with their documented defaults.
func (c *Config) ApplyDefaults() {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.DecodeWorkers == 0 {
		c.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Kafka.ClientID == "" {
		c.Kafka.ClientID = "protolake"
	}
	if c.Kafka.StartOffset == "" {
		c.Kafka.StartOffset = "earliest"
	}
	if c.Kafka.SessionTimeout == 0 {
		c.Kafka.SessionTimeout = DefaultSessionTimeout
	}
	if c.Kafka.RebalanceTimeout == 0 {
		c.Kafka.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.Kafka.HeartbeatInterval == 0 {
		c.Kafka.HeartbeatInterval = min(DefaultHeartbeatInterval, c.Kafka.SessionTimeout/3)
	}
	if c.Kafka.FatalAfter == 0 {
		c.Kafka.FatalAfter = DefaultFatalAfter
	}
	if c.Storage.RequestTimeout == 0 {
		c.Storage.RequestTimeout = DefaultRequestTimeout
	}
	if c.Storage.SlowRequest == 0 {
		c.Storage.SlowRequest = min(DefaultSlowRequest, c.Storage.RequestTimeout)
	}
	if c.Storage.MaxUploads == 0 {
		c.Storage.MaxUploads = DefaultMaxUploads
	}
	for i := range c.Tables {
		t := &c.Tables[i]
		if t.Name == "" {
			t.Name = lastPathElem(open.Redact(t.URI))
		}
		if t.Flush.MaxRows == 0 {
			t.Flush.MaxRows = DefaultMaxRows
		}
		if t.Flush.MaxBytes == 0 {
			t.Flush.MaxBytes = DefaultMaxBytes
		}
		if t.Flush.CommitInterval == 0 {
			t.Flush.CommitInterval = DefaultCommitInterval
		}
		if t.Flush.MaxAge == 0 {
			t.Flush.MaxAge = t.Flush.CommitInterval
		}
		if t.Compression == "" {
			t.Compression = "zstd"
		}
		if t.Framing == "" {
			t.Framing = "raw"
			if t.registryFed() {
				t.Framing = FramingConfluent
			}
		}
		if t.registryFed() {
			t.SchemaRegistry.ApplyDefaults()
		}
		if t.Schema.Enums == "" {
			t.Schema.Enums = schema.EnumString
		}
		if t.Schema.Uint64 == "" {
			t.Schema.Uint64 = schema.Uint64Decimal
		}
		if len(t.Schema.Partitions) == 0 {
			t.Schema.Partitions = t.PartitionBy
		}
		if t.DeadLetter.URI == "" && !t.DeadLetter.Disabled {
			t.DeadLetter.URI = deadLetterURI(t.URI)
		}
	}
}

// deadLetterURI is the default dead-letter table of a table URI: "_dlq"
// appended to the path, the query (S3 endpoint, path style…) kept.
func deadLetterURI(uri string) string {
	path, query, hasQuery := strings.Cut(uri, "?")
	path = strings.TrimRight(path, "/") + "_dlq"
	if hasQuery {
		return path + "?" + query
	}
	return path
}

func lastPathElem(uri string) string {
	uri, _, _ = strings.Cut(uri, "?")
	uri = strings.TrimRight(uri, "/")
	if i := strings.LastIndexByte(uri, '/'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}
