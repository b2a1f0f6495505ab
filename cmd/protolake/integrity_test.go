package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/schema"
)

// runUntilCaughtUp writes yaml as the config file of `run --until-caught-up`
// and runs it; it returns run's error and its stderr.
func runUntilCaughtUp(t *testing.T, yaml string) (string, error) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, []string{"run", "--config", conf, "--until-caught-up"}, &bytes.Buffer{}, &stderr)
	return stderr.String(), err
}

// startKafkaRaw starts kfake with one partition of topic holding values.
func startKafkaRaw(t *testing.T, topic string, values [][]byte) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Value: v})
	}
	if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return c.ListenAddrs()[0]
}

// deepTree is a TreeNode chain n levels deep.
func deepTree(md protoreflect.MessageDescriptor, n int) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("name"), protoreflect.ValueOfString(fmt.Sprint("level-", n)))
	if n > 0 {
		m.Mutable(md.Fields().ByName("children")).List().Append(protoreflect.ValueOfMessage(deepTree(md, n-1)))
	}
	return m
}

// TestRecursionDepthOneLimit: a max_recursion_depth whose schema nests
// deeper than the log's schema readers accept is refused when the schema is
// derived (run exits 1 before writing anything); the deepest depth that is
// accepted writes a table that inspect and compact read.
func TestRecursionDepthOneLimit(t *testing.T) {
	const set = "../../testdata/proto/edge/edge.binpb"
	files, err := schema.ReadDescriptorSet(set)
	if err != nil {
		t.Fatal(err)
	}
	md, err := schema.FindMessage(files, "edge.TreeNode", set)
	if err != nil {
		t.Fatal(err)
	}
	deepestOK := -1
	for d := schema.MaxRecursionDepthLimit; d > 0; d-- {
		if _, err := schema.Derive(md, schema.Options{MaxRecursionDepth: d}); err == nil {
			deepestOK = d
			break
		}
	}
	if deepestOK < 1 || deepestOK == schema.MaxRecursionDepthLimit {
		t.Fatalf("deepest accepted depth %d: the test needs a refused one above it", deepestOK)
	}
	var values [][]byte
	for i := range 40 {
		b, err := proto.Marshal(deepTree(md, i%(deepestOK+3)))
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	broker := startKafkaRaw(t, "trees", values)
	runAt := func(depth int) (string, string, error) {
		dir := filepath.Join(t.TempDir(), "trees")
		stderr, err := runUntilCaughtUp(t, fmt.Sprintf("kafka: {brokers: [%q], group_id: g%d}\nhttp: {listen: \"off\"}\ntables:\n  - uri: %s\n    topics: [trees]\n    message: edge.TreeNode\n    descriptor_set: %s\n    flush: {max_rows: 10}\n    schema: {max_recursion_depth: %d}\n", broker, depth, dir, set, depth))
		return dir, stderr, err
	}

	_, _, err = runAt(deepestOK + 1)
	var de *schema.TypeDepthError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "max_recursion_depth") || !strings.Contains(err.Error(), "levels deep") {
		t.Fatalf("depth %d: err = %v, want a refusal naming max_recursion_depth", deepestOK+1, err)
	}

	dir, stderr, err := runAt(deepestOK)
	if err != nil {
		t.Fatalf("depth %d: %v\n%s", deepestOK, err, stderr)
	}
	snap := latestSnapshot(t, dir)
	if n, _ := snap.NumRecords(); n != int64(len(values)) {
		t.Fatalf("table has %d records, want %d", n, len(values))
	}
	// DuckDB takes time exponential in the nesting depth (measured: 0.2 s
	// at 16 unrolled levels of TreeNode, 25 s at 24), so only the top-level
	// columns are read back here.
	before := topRows(t, dir, snap)
	if out, errOut, code := runCLI(t, "inspect", dir); code != 0 {
		t.Fatalf("inspect: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "compact", dir, "--min-files", "2"); code != 0 || !strings.Contains(out, "compacted") {
		t.Fatalf("compact: exit %d\n%s\n%s", code, out, errOut)
	}
	after := latestSnapshot(t, dir)
	if after.NumFiles() >= snap.NumFiles() {
		t.Errorf("compact left %d files (was %d)", after.NumFiles(), snap.NumFiles())
	}
	if got := topRows(t, dir, after); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Errorf("rows changed by compaction")
	}
}

// topRows reads the top-level name and _kafka columns of the snapshot's
// files with DuckDB, sorted.
func topRows(t *testing.T, dir string, snap *commitlog.Snapshot) []string {
	t.Helper()
	var files []string
	for _, f := range snap.Files() {
		p, _ := url.PathUnescape(f.Path)
		files = append(files, filepath.Join(dir, filepath.FromSlash(p)))
	}
	var out []string
	for _, r := range ducktest.Rows(t, ducktest.Open(t), "SELECT name, CAST(_kafka AS VARCHAR) FROM "+ducktest.ReadParquet(files...)+" ORDER BY _kafka.offset") {
		out = append(out, strings.Join(r, " "))
	}
	sort.Strings(out)
	return out
}

// TestNoSchemaStringTable: inspect reads a table whose metaData has no
// schemaString (as Spark does); compact refuses to write to it, clearly.
func TestNoSchemaStringTable(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	entry := `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"metaData":{"id":"no-schema","format":{"provider":"parquet","options":{}},"partitionColumns":[],"configuration":{},"createdTime":1}}
`
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000000.json"), []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, "inspect", dir); code != 0 || !strings.Contains(out, "no-schema") {
		t.Errorf("inspect: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "inspect", "--json", dir); code != 0 {
		t.Errorf("inspect --json: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "compact", dir, "--min-files", "2"); code == 0 || !strings.Contains(errOut, "no schemaString") {
		t.Errorf("compact: exit %d, want a refusal naming the missing schemaString:\n%s", code, errOut)
	}
}

// TestPathsLeavingTheTable: a log whose add paths could resolve outside the
// table (.., an absolute path, a file: URI) is refused by inspect --files,
// vacuum and compact; a data file that is a symlink out of the table root is
// not read by compaction, so no rows from outside are rewritten into it.
func TestPathsLeavingTheTable(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.parquet"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"../" + filepath.Base(outside) + "/secret.parquet",
		"a/%2E%2E/%2E%2E/x.parquet",
		filepath.Join(outside, "secret.parquet"),
		"file://" + filepath.Join(outside, "secret.parquet"),
		"file:" + filepath.Join(outside, "secret.parquet"),
		"s3a://bucket/other/part-0.parquet",
	} {
		t.Run(path, func(t *testing.T) {
			dir := copyTable(t, "deltars-simple_table_with_checkpoint")
			entry := fmt.Sprintf(`{"commitInfo":{"timestamp":1615751716705,"operation":"WRITE"}}
{"add":{"path":%q,"partitionValues":{},"size":7,"modificationTime":1615751716698,"dataChange":true}}
`, path)
			if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000011.json"), []byte(entry), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"inspect", "--files", dir},
				{"vacuum", dir},
				{"compact", dir, "--min-files", "2"},
			} {
				out, errOut, code := runCLI(t, args...)
				if code == 0 || !strings.Contains(errOut, "leaves the table root") {
					t.Errorf("%v: exit %d, want a refusal naming the path:\n%s\n%s", args, code, out, errOut)
				}
				if strings.Contains(out, "secret") {
					t.Errorf("%v printed the outside file:\n%s", args, out)
				}
			}
			if _, err := os.Stat(filepath.Join(outside, "secret.parquet")); err != nil {
				t.Errorf("the file outside the table is gone: %v", err)
			}
		})
	}

	t.Run("symlink out of the root", func(t *testing.T) {
		dir := copyTable(t, "deltars-simple_table_with_checkpoint")
		snap := latestSnapshot(t, dir)
		victim := filepath.Join(dir, snap.Files()[0].Path)
		// The outside file is a valid Parquet file of the same schema
		// (another copy of a table file), so following the link would
		// silently rewrite its rows into the table.
		b, err := os.ReadFile(victim)
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(outside, "same-schema.parquet")
		if err := os.WriteFile(target, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(victim); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, victim); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := runCLI(t, "compact", dir, "--min-files", "2")
		if code == 0 || !strings.Contains(errOut, "escapes") {
			t.Errorf("compact: exit %d, want the partition refused (symlink out of the root):\n%s", code, errOut)
		}
		if v := latestSnapshot(t, dir).Version(); v != snap.Version() {
			t.Errorf("compaction through a symlink out of the table committed version %d", v)
		}
	})
}

// TestLongPartitionValue: a partition value whose escaped directory name is
// longer than a path segment may be is written under a shortened directory
// (the log keeps the value); the good records before and after it commit
// and --until-caught-up exits.
func TestLongPartitionValue(t *testing.T) {
	long := strings.Repeat("a/b:", 80)  // escaped: 4 × 80 × 2 bytes
	longer := strings.Repeat("é", 1500) // 3,000 bytes, no escapes
	ids := []string{"imp-before", long, longer, long + "2", "imp-after"}
	var values [][]byte
	for _, id := range ids {
		b, err := proto.Marshal(&adtrackpb.AdImpression{ImpressionId: id, EventTime: timestamppb.New(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC))})
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	broker := startKafkaRaw(t, "ads", values)
	dir := filepath.Join(t.TempDir(), "ads")
	yaml := fmt.Sprintf("kafka: {brokers: [%q], group_id: g}\nhttp: {listen: \"off\"}\ntables:\n  - uri: %s\n    topics: [ads]\n    message: adtrack.v1.AdImpression\n    descriptor_set: ../../testdata/proto/adtrack/v1/adtrack.binpb\n    partition_by: [impression_id]\n", broker, dir)
	if stderr, err := runUntilCaughtUp(t, yaml); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	snap := latestSnapshot(t, dir)
	got := map[string]bool{}
	for _, f := range snap.Files() {
		key, err := url.PathUnescape(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range strings.Split(key, "/") {
			if len(seg) > 255 {
				t.Errorf("path segment of %d bytes: %s", len(seg), f.Path)
			}
		}
		if v := f.PartitionValues["impression_id"]; v != nil {
			got[*v] = true
		}
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("no file with partition value %.40q… (%d bytes)", id, len(id))
		}
	}
	if rows := duckRows(t, dir, snap); len(rows) != len(ids) {
		t.Errorf("DuckDB read %d rows, want %d", len(rows), len(ids))
	}
}

// TestRecordTooLargeDeadLettered: a valid 20 MB record of 10 million packed
// elements decodes to far more than memory_limit allows; it goes to the
// dead-letter table with the reason, and the records around it commit.
func TestRecordTooLargeDeadLettered(t *testing.T) {
	ts := timestamppb.New(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC))
	ad := func(id string) []byte {
		b, _ := proto.Marshal(&adtrackpb.AdImpression{ImpressionId: id, EventTime: ts})
		return b
	}
	big := append(ad("big"), protowire.AppendBytes(protowire.AppendTag(nil, 27, protowire.BytesType), bytes.Repeat([]byte{0x81, 0x01}, 10_000_000))...)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ads"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "67108864"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(32<<20))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]byte{ad("before"), big, ad("after")} {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "ads", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	dir := filepath.Join(t.TempDir(), "ads")
	yaml := fmt.Sprintf("memory_limit: 64MiB\nkafka: {brokers: [%q], group_id: g}\nhttp: {listen: \"off\"}\ntables:\n  - uri: %s\n    topics: [ads]\n    message: adtrack.v1.AdImpression\n    descriptor_set: ../../testdata/proto/adtrack/v1/adtrack.binpb\n", c.ListenAddrs()[0], dir)
	if stderr, err := runUntilCaughtUp(t, yaml); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if n, _ := latestSnapshot(t, dir).NumRecords(); n != 2 {
		t.Errorf("table has %d records, want 2", n)
	}
	dlq := dir + "_dlq"
	rows := duckRows(t, dlq, latestSnapshot(t, dlq))
	if len(rows) != 1 || !strings.Contains(rows[0], "record too large to buffer") {
		t.Errorf("dead-letter rows: %.300q, want one naming the reason", rows)
	}
}
