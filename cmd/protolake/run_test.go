package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// startKafkaWith starts kfake with the topic and n AdImpressions in it.
func startKafkaWith(t *testing.T, topic string, n int) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var recs []*kgo.Record
	for i := range n {
		b, _ := proto.Marshal(&adtrackpb.AdImpression{ImpressionId: fmt.Sprint("imp-", i), EventTime: timestamppb.New(time.Date(2026, 11, 23, i%24, 0, 0, 0, time.UTC))})
		recs = append(recs, &kgo.Record{Topic: topic, Value: b})
	}
	if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return c.ListenAddrs()
}

const runYAML = `
kafka:
  brokers: [%s]
  group_id: lake
tables:
  - uri: %s
    topics: [ads.click.stream]
    message: adtrack.v1.AdImpression
    descriptor_set: ../../testdata/proto/adtrack/v1/adtrack.binpb
    partition_by: ["day(event_time)"]
    flush:
      commit_interval: 30s
%s
http:
  listen: "off"
log:
  format: text
`

// TestRunUntilCaughtUp runs `protolake run --until-caught-up` from a config
// file, with a flag and an environment override, into a local table and into
// S3 (gofakes3 always; MinIO with PLTEST_MINIO).
func TestRunUntilCaughtUp(t *testing.T) {
	const n = 500
	type target struct {
		name string
		uri  func(t *testing.T) (uri, extra string, records func() int64)
	}
	s3Target := func(start func(testing.TB) s3.Config) func(t *testing.T) (string, string, func() int64) {
		return func(t *testing.T) (string, string, func() int64) {
			cfg := start(t)
			t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey)
			extra := fmt.Sprintf("    s3:\n      endpoint: %s\n      use_path_style: true\n      region: %s", cfg.Endpoint, cfg.Region)
			return "s3://" + cfg.Bucket + "/lake/ads", extra, func() int64 {
				cfg.Prefix = "lake/ads"
				store, err := s3.New(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				return numRecords(t, store)
			}
		}
	}
	for _, tg := range []target{
		{"local", func(t *testing.T) (string, string, func() int64) {
			dir := filepath.Join(t.TempDir(), "ads")
			return "file://" + dir, "", func() int64 {
				store, err := local.New(dir)
				if err != nil {
					t.Fatal(err)
				}
				return numRecords(t, store)
			}
		}},
		{"gofakes3", s3Target(s3test.StartGoFakeS3)},
		{"minio", s3Target(s3test.StartMinIO)},
	} {
		t.Run(tg.name, func(t *testing.T) {
			brokers := startKafkaWith(t, "ads.click.stream", n)
			uri, extra, records := tg.uri(t)
			conf := filepath.Join(t.TempDir(), "protolake.yaml")
			if err := os.WriteFile(conf, fmt.Appendf(nil, runYAML, brokers[0], uri, extra), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PROTOLAKE_TABLES_0_FLUSH_MAX_ROWS", "100") // environment override
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := run(ctx, []string{"run", "--config", conf, "--until-caught-up", "--kafka.client_id=test-run"}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			if got := records(); got != n {
				t.Errorf("table has %d records, want %d\n%s", got, n, stderr.String())
			}
			// The end offsets are logged as offsets, per partition.
			if want := `msg="consuming until caught up" partitions=4 end_offsets="ads.click.stream/0=125 ads.click.stream/1=125 ads.click.stream/2=125 ads.click.stream/3=125"`; !strings.Contains(stderr.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, stderr.String())
			}
			if !strings.Contains(stderr.String(), "msg=committed") {
				t.Errorf("no commit logged:\n%s", stderr.String())
			}
		})
	}
}

func numRecords(t *testing.T, store commitlog.Store) int64 {
	t.Helper()
	snap, err := commitlog.LoadSnapshot(context.Background(), store, commitlog.Latest, commitlog.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := snap.NumRecords()
	if !ok {
		t.Fatal("a file lacks numRecords")
	}
	if snap.NumFiles() < 2 {
		t.Errorf("%d files: max_rows=100 from the environment was not applied", snap.NumFiles())
	}
	return n
}

// TestRunConfigErrors: a bad config names the field and is a usage error.
func TestRunConfigErrors(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(conf, []byte("kafka:\n  brokers: [nohost]\ntables:\n  - uri: /tmp/x\n    topics: [t]\n    message: m\n    descriptor_set: x.binpb\n    framing: avro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--config", conf}, []string{"kafka.group_id: is required", `kafka.brokers.0: "nohost"`, `tables.0.framing: "avro"`}},
		{[]string{"run", "--config", conf, "--kafka.nope=1"}, []string{"--kafka.nope"}},
		{[]string{"run"}, []string{"--config FILE is required"}},
	} {
		err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", tc.args, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error lacks %q:\n%v", tc.args, w, err)
			}
		}
	}
}

// TestRunConfigMessages: the exact messages of a config with several
// problems (every one at once, each with its file and line, unknown keys
// with the known ones), of a YAML syntax error (the right line) and of a
// mistyped flag (unknown, with the nearest flag).
func TestRunConfigMessages(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "protolake.yaml")
	if err := os.WriteFile(conf, []byte(`kafka:
  brokers: [127.0.0.1:9092]
  grup_id: lake
memory_limit: 1GB-ish
tables:
  - uri: /tmp/x
    topics: [t]
    message: m
    descriptor_set: x.binpb
    flush:
      max_rows: many
`), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("kafka:\n  brokers: [127.0.0.1:9092\n  group_id: lake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--config", conf}, "invalid config:\n" +
			conf + `, line 3: kafka.grup_id: unknown setting "grup_id" (known here: brokers, client_id, fatal_after, group_id, heartbeat_interval, instance_id, rebalance_timeout, sasl, session_timeout, start_offset, tls)` + "\n" +
			conf + `, line 4: memory_limit: "1GB-ish" is not a size (e.g. 134217728, 128MiB, 1GiB)` + "\n" +
			conf + `, line 11: tables.0.flush.max_rows: "many" is not an integer` + "\n" +
			"kafka.group_id: is required (instances of one deployment share it)"},
		{[]string{"run", "--config", broken}, broken + `: not valid YAML: line 2 ("  brokers: [127.0.0.1:9092"): did not find expected ',' or ']'`},
		{[]string{"run", "--config", conf, "--untill-caught-up"}, "unknown flag --untill-caught-up (did you mean --until-caught-up?); run takes --config FILE, --until-caught-up and config settings as --PATH=VALUE (top level: decode_workers, http, kafka, log, memory_limit, shutdown_timeout, storage, tables); see protolake run --help"},
		{[]string{"run", "--confg", conf}, "unknown flag --confg (did you mean --config?); run takes --config FILE, --until-caught-up and config settings as --PATH=VALUE (top level: decode_workers, http, kafka, log, memory_limit, shutdown_timeout, storage, tables); see protolake run --help"},
	} {
		err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || err.Error() != tc.want {
			t.Errorf("%v: err =\n%v\nwant a usage error\n%s", tc.args, err, tc.want)
		}
	}
}

// TestRunRefusesBreakingDescriptor: a table written with shop.Order v1 and
// a config with the breaking v3: exit status 1 and the diff.
func TestRunRefusesBreakingDescriptor(t *testing.T) {
	dir := t.TempDir()
	yaml := func(v string) string {
		return fmt.Sprintf("kafka: {brokers: [\"127.0.0.1:1\"], group_id: lake}\nhttp: {listen: \"off\"}\ntables:\n  - uri: %s\n    topics: [orders]\n    message: shop.Order\n    descriptor_set: ../../testdata/proto/evolution/%s/order.binpb\n", filepath.Join(dir, "orders"), v)
	}
	cfg, err := ingest.ParseConfig([]byte(yaml("v1")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.NewRunner(context.Background(), cfg, ingest.Options{}); err != nil { // creates the table
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "protolake.yaml")
	if err := os.WriteFile(conf, []byte(yaml("v3")), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"run", "--config", conf}, &bytes.Buffer{}, &bytes.Buffer{})
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	for _, want := range []string{"total_cents (field 7) type changed (int64 → double)", "refusing to start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestRunPartitioningIsConfiguration: a partition_by that differs from the
// table's is a configuration error (exit 2), not a proto version to change.
func TestRunPartitioningIsConfiguration(t *testing.T) {
	dir := t.TempDir()
	newTable(t, filepath.Join(dir, "orders"), testProto+"/evolution/v1/order.binpb")
	conf := filepath.Join(dir, "protolake.yaml")
	yaml := fmt.Sprintf("kafka: {brokers: [\"127.0.0.1:1\"], group_id: lake}\nhttp: {listen: \"off\"}\ntables:\n  - uri: %s\n    topics: [orders]\n    message: shop.Order\n    descriptor_set: %s\n    partition_by: [\"day(created_at)\"]\n",
		filepath.Join(dir, "orders"), testProto+"/evolution/v2/order.binpb")
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "run", "--config", conf)
	want := "protolake: tables.0 (orders): table " + filepath.Join(dir, "orders") + ": configured partitioning [created_at_day=day(created_at)] differs from the table's []: a table's partitioning cannot change; configure the table's partitioning (partition_by in the table config, --partition for schema), or write to a new table\n"
	if code != 2 || errOut != want {
		t.Errorf("exit %d, stderr:\n%s\nwant 2 and:\n%s", code, errOut, want)
	}
}

// TestRunConfigEnvironment: PROTOLAKE_* variables set settings, the test
// harnesses' own variables (PLTEST_*) are not read, and a misspelt setting
// is an error.
func TestRunConfigEnvironment(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(conf, []byte("kafka:\n  brokers: [127.0.0.1:9092]\ntables:\n  - uri: /tmp/x\n    topics: [t]\n    message: m\n    descriptor_set: x.binpb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	harness := []string{"PLTEST_MINIO=/bin/minio", "PLTEST_CRASH=1", "PLTEST_INTEROP_KAFKA_BROKERS=x", "PLTEST_HDFS_URL=hdfs://h:1/p", "PLTEST_WEBHDFS_URL=http://h:2"}
	cfg, _, err := loadRunConfig([]string{"--config", conf}, append(harness, "PROTOLAKE_KAFKA_GROUP_ID=g7", "HOME=/root"))
	if err != nil {
		t.Fatalf("harness variables were not ignored: %v", err)
	}
	if cfg.Kafka.GroupID != "g7" {
		t.Errorf("group_id = %q, want g7 from PROTOLAKE_KAFKA_GROUP_ID", cfg.Kafka.GroupID)
	}
	_, _, err = loadRunConfig([]string{"--config", conf}, []string{"PROTOLAKE_KAFKA_GROUPID=g7"})
	if err == nil || !strings.Contains(err.Error(), "PROTOLAKE_KAFKA_GROUPID") {
		t.Errorf("a misspelt variable: err = %v, want an error naming it", err)
	}
}

// TestNoHarnessVariableUnderRunsPrefix: the harnesses' variables are
// PLTEST_*, never PROTOLAKE_*, which `run` reads as settings (and refuses
// when they name none). A harness variable under the old prefix anywhere in
// the repository fails here rather than breaking a child `run`.
func TestNoHarnessVariableUnderRunsPrefix(t *testing.T) {
	old := regexp.MustCompile("PROTOLAKE" + `_(TEST|INTEROP|MINIO|HDFS_URL|WEBHDFS_URL|BIG|BENCH|SIZE_REPORT|COMPACT_DIR)\w*`)
	root := "../.."
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "lake" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".sh", ".py", ".md", ".yaml", ".yml", ".cfg", ".ini", ".toml":
		default:
			if d.Name() != "Makefile" && d.Name() != "run" {
				return nil
			}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range old.FindAll(data, -1) {
			t.Errorf("%s: %s: harness variables are PLTEST_* (run reads PROTOLAKE_* as settings)", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
