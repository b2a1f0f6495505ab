package ingest

import (
	"errors"
	"time"

	"github.com/protolake/protolake/internal/config"
	"github.com/protolake/protolake/internal/confpath"
	"github.com/protolake/protolake/registry"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/open"
	"github.com/protolake/protolake/writer"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Config is the whole configuration of `protolake run`: one YAML file, with
// every field also settable by a flag (--kafka.group_id=…) or an environment
// variable (PROTOLAKE_KAFKA_GROUP_ID=…); see internal/confpath. Zero values
// take the defaults documented on each field (ApplyDefaults).
type Config struct {
	// Kafka is the consumer group and its connection.
	Kafka KafkaConfig `yaml:"kafka"`
	// Tables are the Delta tables this deployment keeps up to date.
	Tables []TableConfig `yaml:"tables"`
	// MemoryLimit bounds the memory the runner takes: buffers of every
	// table and files waiting for upload may hold half of it (above that
	// the largest buffers are flushed to files and, if that is not enough,
	// fetching pauses until the next commit); the other half is for the
	// Kafka client's fetches, the record being decoded (at most a quarter)
	// and garbage. protolake run keeps its RSS within its baseline plus
	// MemoryLimit (docs/operations.md "Memory and backpressure"). Default
	// 1GiB.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// DecodeWorkers is how many goroutines decode records into Parquet
	// buffers at once, and into how many shards each table's buffers are
	// split: each poll's records of a table are split into that many runs
	// of equal bytes, in poll order, decoded in parallel (docs/operations.md,
	// "Throughput: cores and instances"); a shard gets at least 256 KiB of
	// a poll, so a smaller one takes fewer shards. Each shard writes its
	// own files, so a commit adds up to that many files per table
	// partition.
	// 1 decodes every record on the poll loop, one after the other.
	// Tables fed through a schema registry always decode sequentially.
	// Default: GOMAXPROCS (the cores the process may use).
	DecodeWorkers int `yaml:"decode_workers"`
	// Storage bounds every request to the tables' stores.
	Storage StorageConfig `yaml:"storage"`
	// HTTP serves /healthz, /readyz and /metrics.
	HTTP HTTPConfig `yaml:"http"`
	// Log configures structured logging.
	Log LogConfig `yaml:"log"`
	// ShutdownTimeout is how long SIGTERM/SIGINT may take to flush, commit
	// and leave the group before the process gives up. Default 30s; a
	// Kubernetes terminationGracePeriodSeconds must be longer.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// KafkaConfig is the consumer group and how to reach the brokers.
type KafkaConfig struct {
	// Brokers are the seed brokers (host:port). Required.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group; every instance of one deployment uses
	// the same one. Part of each table's txn appId. Required.
	GroupID string `yaml:"group_id"`
	// ClientID identifies this instance to the brokers. Default "protolake".
	ClientID string `yaml:"client_id"`
	// StartOffset is where a partition without a watermark in its table
	// starts: "earliest" (default), "latest", or an RFC 3339 timestamp.
	StartOffset string `yaml:"start_offset"`
	// TLS enables TLS to the brokers.
	TLS TLSConfig `yaml:"tls"`
	// SASL authenticates to the brokers.
	SASL SASLConfig `yaml:"sasl"`
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (a killed instance) before it hands its partitions to
	// the others. Default 45s; the broker bounds it by its
	// group.min/max.session.timeout.ms (6s–30min by default).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout is how long members may take to give up revoked
	// partitions and rejoin during a rebalance (protolake commits them
	// first, within it). Default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// HeartbeatInterval is how often the member heartbeats; at most a third
	// of SessionTimeout. Default 3s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// InstanceID enables static membership (KIP-345): an instance that
	// restarts with the same id within SessionTimeout gets its partitions
	// back without a rebalance. It must be unique and stable per instance,
	// e.g. the pod name of a StatefulSet. Default "" (dynamic membership).
	InstanceID string `yaml:"instance_id"`
	// FatalAfter is how long errors that retrying cannot fix
	// (authentication, authorization, TLS certificate, unknown topic) may
	// persist, with no successful request in between, before Run stops
	// with the error (exit status 2). Default 1m.
	FatalAfter time.Duration `yaml:"fatal_after"`
}

// StorageConfig bounds storage requests.
type StorageConfig struct {
	// RequestTimeout is the deadline of every storage request (a data-file
	// upload, a commit, a list, a read including its body). A commit that
	// times out is ambiguous and resolved by reading the log back. Default
	// 60s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// SlowRequest: a request running longer than this makes /readyz fail
	// until it finishes, and is counted in
	// protolake_ingest_storage_slow_requests_total. Default 10s.
	SlowRequest time.Duration `yaml:"slow_request"`
	// MaxUploads is how many data files are uploaded at once, across all
	// tables. Files waiting for an upload slot count against memory_limit.
	// Default 4.
	MaxUploads int `yaml:"max_uploads"`
}

// TLSConfig enables TLS; all file paths are PEM.
type TLSConfig struct {
	// Enabled turns TLS to the brokers on (default off: plaintext).
	Enabled bool `yaml:"enabled"`
	// CAFile holds the CAs the brokers' certificates are verified with.
	// Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (mutual TLS); set both
	// or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in the brokers' certificates.
	// Default: the host of each broker address.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate the brokers present,
	// without verifying it against a CA or the server name (default false).
	// Anyone on the network path can then impersonate the brokers: read the
	// records, the SASL credentials, and feed the tables. For tests only;
	// use CAFile for a private CA. The Runner logs a WARN when it is on.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig selects a SASL mechanism: "" (none), "PLAIN", "SCRAM-SHA-256"
// or "SCRAM-SHA-512".
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// TableConfig is one Delta table fed from one or more topics.
type TableConfig struct {
	// Name identifies the table in logs and metrics. Default: the last
	// path element of URI.
	Name string `yaml:"name"`
	// Topics feed the table. Required.
	Topics []string `yaml:"topics"`
	// Message is the full name of the protobuf message, e.g.
	// adtrack.v1.AdImpression. Required, except with SchemaRegistry, where
	// it defaults to the table's message or else the first message of the
	// subject's latest schema (records whose message-index path names
	// another message are dead-lettered).
	Message string `yaml:"message"`
	// SchemaRegistry, when its url is set, replaces descriptor_set and
	// proto_files: each record (Confluent-framed) is decoded with the
	// schema its schema id names, and the table evolves with the subject's
	// compatible versions. See docs/operations.md.
	SchemaRegistry registry.Config `yaml:"schema_registry"`
	// Subject is the registry subject the table follows. Default: the
	// TopicNameStrategy subject "<topic>-value" of its single topic.
	Subject string `yaml:"subject"`
	// DescriptorSet is a binary FileDescriptorSet (protoc
	// --include_imports -o, or buf build -o). Either it or ProtoFiles.
	DescriptorSet string `yaml:"descriptor_set"`
	// Descriptor, when set by a program embedding the Runner (the demo,
	// with compiled-in generated code), is the message itself; it replaces
	// DescriptorSet and ProtoFiles. Not settable from YAML.
	Descriptor protoreflect.MessageDescriptor `yaml:"-" json:"-"`
	// ProtoFiles are .proto sources compiled at start, resolved against
	// ProtoPaths (well-known types need no files).
	ProtoFiles []string `yaml:"proto_files"`
	// ProtoPaths are the import paths for ProtoFiles.
	ProtoPaths []string `yaml:"proto_paths"`
	// ProtoVersion is a label recorded with the table's proto pin (e.g. a
	// git tag or schema-registry version). Optional.
	ProtoVersion string `yaml:"proto_version"`
	// URI is the table location: file:///path, a bare path,
	// s3://bucket/prefix, or hdfs://namenode:port/path. Required.
	URI string `yaml:"uri"`
	// PartitionBy are the partition columns: a top-level field name
	// ("country"), or a transform of a timestamp field or of the Kafka
	// timestamp ("day(event_time)", "hour(_kafka.timestamp)").
	PartitionBy []string `yaml:"partition_by"`
	// Flush bounds each partition buffer and sets the commit cadence.
	Flush FlushConfig `yaml:"flush"`
	// Schema are the type-mapping options, exactly schema.Options (enums,
	// uint64, max_recursion_depth, no_kafka_meta, no_unknown). Its
	// partitions key is filled from PartitionBy; set one of the two.
	Schema schema.Options `yaml:"schema"`
	// Compression of data files: zstd (default), snappy, gzip, lz4, none.
	Compression string `yaml:"compression"`
	// CompressionLevel is the zstd level, 1 (fastest, default) to 22;
	// writer.Config.ZstdLevel. 0 takes the default; other codecs take no
	// level. docs/operations.md lists what each level costs.
	CompressionLevel int `yaml:"compression_level"`
	// Framing of record values: "raw" (default: the value is the message)
	// or "confluent" (a 5-byte schema-registry header and message indexes
	// precede it and are stripped).
	Framing string `yaml:"framing"`
	// DeadLetter is where undecodable records go.
	DeadLetter DeadLetterConfig `yaml:"dead_letter"`
	// S3 holds S3 options for s3:// URIs (credentials come from the
	// standard AWS chain).
	S3 S3Options `yaml:"s3"`
}

// WriterConfig is the writer.Config of the table's data files.
func (t *TableConfig) WriterConfig() writer.Config {
	return writer.Config{
		MaxRows:     int64(t.Flush.MaxRows),
		MaxBytes:    int64(t.Flush.MaxBytes),
		MaxAge:      t.Flush.MaxAge,
		Compression: writer.Compression(t.Compression),
		ZstdLevel:   t.CompressionLevel,
	}
}

// registryFed reports whether the table's schemas come from a registry.
func (t *TableConfig) registryFed() bool { return t.SchemaRegistry.URL != "" }

// subject is the registry subject of the table.
func (t *TableConfig) subject() string {
	if t.Subject != "" || len(t.Topics) == 0 {
		return t.Subject
	}
	return t.Topics[0] + "-value"
}

// Source is where the table's descriptors come from.
func (t *TableConfig) Source() schema.Source {
	return schema.Source{DescriptorSet: t.DescriptorSet, Files: t.ProtoFiles, ImportPaths: t.ProtoPaths}
}

// FlushConfig sets when buffers become files and files become commits. The
// first three map onto writer.Config (TableConfig.WriterConfig).
type FlushConfig struct {
	// MaxRows per partition buffer before it becomes a file. Default 1,000,000.
	MaxRows int `yaml:"max_rows"`
	// MaxBytes (estimated encoded size) per partition buffer. Default 128MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxAge of the oldest buffered row before its buffer becomes a file.
	// Default: CommitInterval.
	MaxAge time.Duration `yaml:"max_age"`
	// CommitInterval is how often files and watermarks are committed.
	// Default 60s.
	CommitInterval time.Duration `yaml:"commit_interval"`
}

// DeadLetterConfig is the dead-letter table of a table.
type DeadLetterConfig struct {
	// URI of the dead-letter table. Default: the table URI with "_dlq"
	// appended to its path (before any ?query, so S3 options carry over).
	URI string `yaml:"uri"`
	// Disabled makes an undecodable record stop the deployment instead.
	Disabled bool `yaml:"disabled"`
}

// S3Options configure s3:// table URIs on top of the URL's query options;
// storage/open applies them (open.S3Options).
type S3Options = open.S3Options

// HTTPConfig is the operational HTTP server.
type HTTPConfig struct {
	// Listen is the address of /healthz, /readyz and /metrics. Default
	// ":8080"; "off" disables the server.
	Listen string `yaml:"listen"`
}

// LogConfig configures log/slog output on stderr: Format "json" (default)
// or "text", Level "debug", "info" (default), "warn" or "error". It is
// config.LogConfig, shared with the maintenance commands.
type LogConfig = config.LogConfig

// Defaults.
const (
	DefaultMemoryLimit     = ByteSize(1 << 30)
	DefaultMaxRows         = 1_000_000
	DefaultMaxBytes        = ByteSize(128 << 20)
	DefaultCommitInterval  = 60 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultHTTPListen      = ":8080"

	DefaultSessionTimeout    = 45 * time.Second
	DefaultRebalanceTimeout  = 60 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultFatalAfter        = time.Minute
	DefaultRequestTimeout    = 60 * time.Second
	DefaultSlowRequest       = 10 * time.Second
	DefaultMaxUploads        = 4
)

// ParseConfig decodes a YAML configuration strictly, with the names and
// messages of the flags and environment variables (internal/confpath): an
// unknown key is an error naming its line and the known keys there, and
// every bad value is reported at once. What could be decoded is returned
// with the error, so a caller can validate the rest too; a YAML syntax
// error wraps ErrConfigSyntax and decodes nothing. It neither applies
// defaults nor validates.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := confpath.DecodeYAML(data, &c); err != nil {
		if errors.Is(err, ErrConfigSyntax) {
			return Config{}, err
		}
		return c, err
	}
	return c, nil
}

// ErrConfigSyntax is wrapped by ParseConfig's error when the file is not
// valid YAML.
var ErrConfigSyntax = confpath.ErrSyntax

// ByteSize is a size in bytes written as an integer or with a unit: 512KiB,
// 128MiB, 1GiB, 64MB (SI units are powers of 1000). It is config.ByteSize,
// shared with the maintenance commands.
type ByteSize = config.ByteSize
