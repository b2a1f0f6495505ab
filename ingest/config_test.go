package ingest

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/internal/confpath"
	"github.com/protolake/protolake/registry"
)

const exampleYAML = `
kafka:
  brokers: [127.0.0.1:9092]
  group_id: lake
tables:
  - uri: file:///tmp/lake/ad_impressions
    topics: [ads.click.stream]
    message: adtrack.v1.AdImpression
    descriptor_set: testdata/proto/adtrack/v1/adtrack.binpb
    partition_by: ["day(event_time)"]
    flush:
      max_bytes: 64MiB
      commit_interval: 10s
memory_limit: 512MiB
`

func TestParseDefaultsValidate(t *testing.T) {
	c, err := ParseConfig([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	tb := c.Tables[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", tb.Name, "ad_impressions"},
		{"max_bytes", tb.Flush.MaxBytes, ByteSize(64 << 20)},
		{"commit_interval", tb.Flush.CommitInterval, 10 * time.Second},
		{"max_age", tb.Flush.MaxAge, 10 * time.Second},
		{"max_rows", tb.Flush.MaxRows, DefaultMaxRows},
		{"dlq", tb.DeadLetter.URI, "file:///tmp/lake/ad_impressions_dlq"},
		{"memory_limit", c.MemoryLimit, ByteSize(512 << 20)},
		{"compression", tb.Compression, "zstd"},
		{"framing", tb.Framing, "raw"},
		{"start", c.Kafka.StartOffset, "earliest"},
		{"session_timeout", c.Kafka.SessionTimeout, 45 * time.Second},
		{"rebalance_timeout", c.Kafka.RebalanceTimeout, 60 * time.Second},
		{"heartbeat_interval", c.Kafka.HeartbeatInterval, 3 * time.Second},
		{"fatal_after", c.Kafka.FatalAfter, time.Minute},
		{"request_timeout", c.Storage.RequestTimeout, 60 * time.Second},
		{"slow_request", c.Storage.SlowRequest, 10 * time.Second},
		{"max_uploads", c.Storage.MaxUploads, 4},
		{"decode_workers", c.DecodeWorkers, runtime.GOMAXPROCS(0)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseUnknownKey(t *testing.T) {
	_, err := ParseConfig([]byte("kafka:\n  brokerz: [x]\n"))
	if err == nil || !strings.Contains(err.Error(), "brokerz") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want it to name the key and its line", err)
	}
}

func TestValidateNamesFields(t *testing.T) {
	c, err := ParseConfig([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.Tables = append(c.Tables, TableConfig{URI: c.Tables[0].URI, Topics: []string{"ads.click.stream"}, Framing: "avro", Compression: "brotli"})
	c.Kafka.GroupID = ""
	c.Kafka.Brokers = []string{"nohost"}
	c.Kafka.SASL.Mechanism = "GSSAPI"
	c.Kafka.SessionTimeout = 6 * time.Second
	c.Kafka.HeartbeatInterval = 3 * time.Second
	c.Storage.MaxUploads = -1
	c.DecodeWorkers = 257
	c.ApplyDefaults()
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	for _, want := range []string{
		"kafka.group_id: is required",
		`kafka.brokers.0: "nohost" is not host:port`,
		`kafka.sasl.mechanism: "GSSAPI"`,
		"tables.1.uri: \"file:///tmp/lake/ad_impressions\" is also the uri of tables.0",
		`tables.1.topics: topic "ads.click.stream" already feeds tables.0`,
		"tables.1.message: the message's full name is required",
		"tables.1.descriptor_set: set descriptor_set or proto_files",
		`tables.1.framing: "avro" is not raw or confluent`,
		`tables.1.compression: "brotli"`,
		"kafka.heartbeat_interval: 3s is more than a third of session_timeout 6s",
		"storage.max_uploads: must not be negative",
		"decode_workers: 257 is not between 1 and 256",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestOverridesFromFlagsAndEnv(t *testing.T) {
	c, err := ParseConfig([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := confpath.Set(&c, "tables.0.flush.max_bytes", "1GiB"); err != nil {
		t.Fatal(err)
	}
	if err := confpath.FromEnv(&c, []string{"PROTOLAKE_KAFKA_GROUP_ID=g2", "PROTOLAKE_TABLES_0_SCHEMA_NO_KAFKA_META=true"}, "PROTOLAKE_"); err != nil {
		t.Fatal(err)
	}
	if c.Tables[0].Flush.MaxBytes != 1<<30 || c.Kafka.GroupID != "g2" || !c.Tables[0].Schema.NoKafkaMeta {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

// TestExampleConfig keeps the shipped protolake.yaml valid.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../protolake.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("protolake.yaml: %v", err)
	}
	if c.Tables[0].Flush.MaxBytes != 128<<20 || c.Tables[0].Schema.Partitions[0] != "day(event_time)" {
		t.Errorf("protolake.yaml parsed as %+v", c.Tables[0])
	}
}

// TestDefaultsKeepURIQuery: the table name and the dead-letter URI derived
// from an S3 URI with options keep the options out of the name and in the
// dead-letter URI.
func TestDefaultsKeepURIQuery(t *testing.T) {
	for _, tc := range []struct{ uri, name, dlq string }{
		{"s3://b/lake/ads?endpoint=http://127.0.0.1:9000&path_style=true", "ads", "s3://b/lake/ads_dlq?endpoint=http://127.0.0.1:9000&path_style=true"},
		{"file:///data/lake/ads/", "ads", "file:///data/lake/ads_dlq"},
		{"lake/ads", "ads", "lake/ads_dlq"},
	} {
		c := Config{Tables: []TableConfig{{URI: tc.uri}}}
		c.ApplyDefaults()
		if got := c.Tables[0]; got.Name != tc.name || got.DeadLetter.URI != tc.dlq {
			t.Errorf("%s: name %q, dead letters %q; want %q, %q", tc.uri, got.Name, got.DeadLetter.URI, tc.name, tc.dlq)
		}
	}
}

func TestRegistryConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Kafka: KafkaConfig{Brokers: []string{"k:9092"}, GroupID: "g"},
			Tables: []TableConfig{{URI: "/tmp/t", Topics: []string{"pay"}, SchemaRegistry: registry.Config{URL: "http://sr:8081"}}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*TableConfig)
		want string // "" = valid
	}{
		{"minimal", func(*TableConfig) {}, ""},
		{"with descriptor", func(t *TableConfig) { t.DescriptorSet = "x.binpb" }, "tables.0.schema_registry: the registry replaces"},
		{"raw framing", func(t *TableConfig) { t.Framing = "raw" }, "tables.0.framing"},
		{"two topics", func(t *TableConfig) { t.Topics = []string{"a", "b"} }, "tables.0.subject: is required"},
		{"two topics, subject", func(t *TableConfig) { t.Topics, t.Subject = []string{"a", "b"}, "s" }, ""},
		{"bad url", func(t *TableConfig) { t.SchemaRegistry.URL = "sr:8081" }, "tables.0.schema_registry.url"},
		{"subject without registry", func(t *TableConfig) { t.SchemaRegistry.URL, t.DescriptorSet, t.Message, t.Subject = "", "x", "m", "s" }, "tables.0.subject: needs schema_registry.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c.Tables[0])
			c.ApplyDefaults()
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCompressionLevel: compression_level reaches the writer's zstd level,
// and is refused out of range or with a codec that takes none.
func TestCompressionLevel(t *testing.T) {
	for _, tc := range []struct {
		yaml, err string
		level     int
	}{
		{"compression_level: 3", "", 3},
		{"", "", 0},
		{"compression_level: 23", "tables.0.compression_level: 23 is outside 1..22", 0},
		{"compression: snappy\n    compression_level: 3", "tables.0.compression_level: applies to zstd only, not snappy", 0},
	} {
		y := strings.Replace(exampleYAML, "    topics:", "    "+tc.yaml+"\n    topics:", 1)
		c, err := ParseConfig([]byte(y))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		c.ApplyDefaults()
		err = c.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.err)
		case tc.err == "":
			if got := c.Tables[0].WriterConfig().ZstdLevel; got != tc.level {
				t.Errorf("%q: ZstdLevel %d, want %d", tc.yaml, got, tc.level)
			}
		}
	}
}
