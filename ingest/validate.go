package ingest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/open"
)

// maxDecodeWorkers bounds Config.DecodeWorkers: each shard of each table
// holds its own buffers and writes its own files.
const maxDecodeWorkers = 256

// Validate reports every invalid field, each named by its YAML path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker (host:port) is required")
	}
	for i, b := range c.Kafka.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			bad(fmt.Sprintf("kafka.brokers.%d", i), "%q is not host:port", b)
		} else if _, err := net.LookupPort("tcp", port); err != nil {
			bad(fmt.Sprintf("kafka.brokers.%d", i), "%q: port %q is not a port number (0-65535)", b, port)
		}
	}
	if c.Kafka.GroupID == "" {
		bad("kafka.group_id", "is required (instances of one deployment share it)")
	} else if strings.ContainsRune(c.Kafka.GroupID, ':') {
		bad("kafka.group_id", "%q must not contain ':' (it is part of the txn appId protolake:<group>:<topic>:<partition>)", c.Kafka.GroupID)
	}
	switch so := c.Kafka.StartOffset; so {
	case "earliest", "latest":
	default:
		if _, err := time.Parse(time.RFC3339, so); err != nil {
			bad("kafka.start_offset", "%q is not earliest, latest or an RFC 3339 timestamp", so)
		}
	}
	if c.Kafka.TLS.Enabled {
		if (c.Kafka.TLS.CertFile == "") != (c.Kafka.TLS.KeyFile == "") {
			bad("kafka.tls", "cert_file and key_file go together")
		}
		for path, f := range map[string]string{"kafka.tls.ca_file": c.Kafka.TLS.CAFile, "kafka.tls.cert_file": c.Kafka.TLS.CertFile, "kafka.tls.key_file": c.Kafka.TLS.KeyFile} {
			if f != "" {
				if _, err := os.Stat(f); err != nil {
					bad(path, "%v", err)
				}
			}
		}
	}
	switch c.Kafka.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Kafka.SASL.Username == "" {
			bad("kafka.sasl.username", "is required for %s", c.Kafka.SASL.Mechanism)
		}
	default:
		bad("kafka.sasl.mechanism", "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Kafka.SASL.Mechanism)
	}
	if c.Kafka.SessionTimeout < 0 || c.Kafka.RebalanceTimeout < 0 || c.Kafka.HeartbeatInterval < 0 || c.Kafka.FatalAfter < 0 {
		bad("kafka", "session_timeout, rebalance_timeout, heartbeat_interval and fatal_after must not be negative")
	}
	if c.Kafka.HeartbeatInterval > 0 && c.Kafka.SessionTimeout > 0 && c.Kafka.HeartbeatInterval*3 > c.Kafka.SessionTimeout {
		bad("kafka.heartbeat_interval", "%s is more than a third of session_timeout %s", c.Kafka.HeartbeatInterval, c.Kafka.SessionTimeout)
	}
	if c.Storage.RequestTimeout < 0 || c.Storage.SlowRequest < 0 {
		bad("storage", "request_timeout and slow_request must not be negative")
	}
	if c.Storage.MaxUploads < 0 {
		bad("storage.max_uploads", "must not be negative")
	}
	if len(c.Tables) == 0 {
		bad("tables", "at least one table is required")
	}
	if c.MemoryLimit < 16<<20 {
		bad("memory_limit", "%s is below the 16MiB minimum", c.MemoryLimit)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "must not be negative")
	}
	if c.DecodeWorkers < 0 || c.DecodeWorkers > maxDecodeWorkers {
		bad("decode_workers", "%d is not between 1 and %d (0: GOMAXPROCS)", c.DecodeWorkers, maxDecodeWorkers)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if l := c.HTTP.Listen; l != "off" {
		if _, port, err := net.SplitHostPort(l); err != nil {
			bad("http.listen", "%q is not host:port (or off)", l)
		} else if _, err := net.LookupPort("tcp", port); err != nil {
			bad("http.listen", "%q: port %q is not a port number (0-65535)", l, port)
		}
	}
	topicOwner := map[string]string{}
	uris := map[string]string{}
	names := map[string]string{}
	for i := range c.Tables {
		errs = append(errs, c.Tables[i].validate(fmt.Sprintf("tables.%d", i), topicOwner, uris, names)...)
	}
	return errors.Join(errs...)
}

func (t *TableConfig) validate(p string, topicOwner, uris, names map[string]string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", p, field, fmt.Sprintf(format, args...)))
	}
	if t.URI == "" {
		bad("uri", "is required (file:///path, s3://bucket/prefix or hdfs://namenode:port/path)")
	} else if prev, dup := uris[t.URI]; dup {
		bad("uri", "%q is also the uri of %s", open.Redact(t.URI), prev)
	} else {
		uris[t.URI] = p
	}
	if prev, dup := names[t.Name]; dup {
		bad("name", "%q is also the name of %s", t.Name, prev)
	} else {
		names[t.Name] = p
	}
	if len(t.Topics) == 0 {
		bad("topics", "at least one topic is required")
	}
	for _, topic := range t.Topics {
		if strings.ContainsRune(topic, ':') {
			bad("topics", "topic %q must not contain ':' (it is part of the txn appId)", topic)
		}
		if prev, dup := topicOwner[topic]; dup {
			bad("topics", "topic %q already feeds %s; a topic feeds one table", topic, prev)
		} else {
			topicOwner[topic] = p
		}
	}
	if t.registryFed() {
		if err := t.SchemaRegistry.Validate(); err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("%s.schema_registry.%w", p, e))
			}
		}
		if t.Descriptor != nil || t.DescriptorSet != "" || len(t.ProtoFiles) > 0 {
			bad("schema_registry", "the registry replaces descriptor_set and proto_files; set one of them")
		}
		if t.Framing != FramingConfluent {
			bad("framing", "%q: a registry-fed table reads Confluent-framed records (framing: confluent)", t.Framing)
		}
		if t.Subject == "" && len(t.Topics) > 1 {
			bad("subject", "is required when several topics feed the table (the default is <topic>-value of a single topic)")
		}
	} else if t.Subject != "" {
		bad("subject", "needs schema_registry.url")
	}
	if t.Message == "" && !t.registryFed() {
		bad("message", "the message's full name is required, e.g. adtrack.v1.AdImpression")
	}
	switch {
	case t.registryFed():
	case t.Descriptor != nil:
		if t.Message == "" || string(t.Descriptor.FullName()) != t.Message {
			bad("message", "%q does not name the given descriptor %s", t.Message, t.Descriptor.FullName())
		}
	case t.DescriptorSet == "" && len(t.ProtoFiles) == 0:
		bad("descriptor_set", "set descriptor_set or proto_files")
	case t.DescriptorSet != "" && len(t.ProtoFiles) > 0:
		bad("descriptor_set", "set descriptor_set or proto_files, not both")
	}
	if t.Flush.MaxRows < 1 {
		bad("flush.max_rows", "must be positive")
	}
	if t.Flush.MaxBytes < 1<<20 {
		bad("flush.max_bytes", "%s is below the 1MiB minimum", t.Flush.MaxBytes)
	}
	if t.Flush.CommitInterval < 100*time.Millisecond {
		bad("flush.commit_interval", "%s is below the 100ms minimum", t.Flush.CommitInterval)
	}
	if t.Flush.MaxAge <= 0 {
		bad("flush.max_age", "must be positive")
	}
	switch t.Compression {
	case "zstd", "snappy", "gzip", "lz4", "none":
	default:
		bad("compression", "%q is not zstd, snappy, gzip, lz4 or none", t.Compression)
	}
	switch {
	case t.CompressionLevel < 0 || t.CompressionLevel > 22:
		bad("compression_level", "%d is outside 1..22", t.CompressionLevel)
	case t.CompressionLevel != 0 && t.Compression != "zstd":
		bad("compression_level", "applies to zstd only, not %s: remove it", t.Compression)
	}
	switch t.Framing {
	case "raw", "confluent":
	default:
		bad("framing", "%q is not raw or confluent", t.Framing)
	}
	switch t.Schema.Enums {
	case schema.EnumString, schema.EnumInt:
	default:
		bad("schema.enums", "%q is not string or int", t.Schema.Enums)
	}
	switch t.Schema.Uint64 {
	case schema.Uint64Decimal, schema.Uint64Long:
	default:
		bad("schema.uint64", "%q is not decimal or long", t.Schema.Uint64)
	}
	if d := t.Schema.MaxRecursionDepth; d < 0 || d > schema.MaxRecursionDepthLimit {
		bad("schema.max_recursion_depth", "%d is not between 0 and %d", d, schema.MaxRecursionDepthLimit)
	}
	if len(t.PartitionBy) > 0 && !slices.Equal(t.PartitionBy, t.Schema.Partitions) {
		bad("schema.partitions", "set partition_by or schema.partitions, not both")
	}
	if !t.DeadLetter.Disabled && t.DeadLetter.URI == t.URI {
		bad("dead_letter.uri", "must differ from the table uri")
	}
	return errs
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
