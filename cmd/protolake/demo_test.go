package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/protolake/protolake/internal/ducktest"
)

// TestDemo runs the whole demo (kfake, gRPC service, load generator,
// streaming writer) for a fixed number of impressions and then reads the
// table it wrote with DuckDB over the snapshot's files: every Kafka record
// exactly once, in day partitions.
func TestDemo(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo", "--messages", "1500", "--rate", "0", "--lake", lake, "--commit-interval", "300ms", "--partitions", "3"}, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"protolake demo summary", "rows in the Delta table      1500", "delta_scan('" + filepath.Join(lake, "ad_impressions") + "')", "spark.read.format(\"delta\")"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	dir := filepath.Join(lake, "ad_impressions")
	snap := latestSnapshot(t, dir)
	if got := snap.Metadata().PartitionColumns; len(got) != 1 || got[0] != "event_time_day" {
		t.Errorf("partition columns %v, want [event_time_day]", got)
	}
	var paths []string
	days := map[string]bool{}
	for _, f := range snap.Files() {
		paths = append(paths, filepath.Join(dir, filepath.FromSlash(f.Path)))
		if d := f.PartitionValues["event_time_day"]; d != nil {
			days[*d] = true
		}
	}
	if len(days) == 0 {
		t.Fatal("no file has an event_time_day partition value")
	}
	var listed bytes.Buffer
	if err := run(ctx, []string{"inspect", dir, "--files"}, &listed, io.Discard); err != nil {
		t.Fatalf("inspect --files: %v", err)
	}
	sort.Strings(paths)
	if got := strings.Fields(listed.String()); strings.Join(got, "\n") != strings.Join(paths, "\n") {
		t.Errorf("inspect --files printed\n%s\nwant the snapshot's files\n%s", strings.Join(got, "\n"), strings.Join(paths, "\n"))
	}
	db := ducktest.Open(t)
	src := strings.TrimSuffix(ducktest.ReadParquet(paths...), ")") + ", hive_partitioning=true)"
	got := ducktest.Rows(t, db, `SELECT count(*), count(DISTINCT (_kafka.partition, _kafka.offset)), count(DISTINCT impression_id), min(_kafka.offset),
		count(*) FILTER (WHERE CAST(epoch_us(event_time) // 86400000000 AS INTEGER) <> CAST(epoch(CAST(event_time_day AS DATE)) // 86400 AS INTEGER))
		FROM `+src)
	if want := []string{"1500", "1500", "1500", "0", "0"}; strings.Join(got[0], ",") != strings.Join(want, ",") {
		t.Fatalf("DuckDB over the snapshot: count, distinct (partition, offset), distinct ids, min offset, rows in the wrong day partition = %v, want %v", got[0], want)
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--duration", "0"},
		{"demo", "--partitions", "0", "--messages", "1"},
		{"demo", "extra"},
		{"demo", "--bogus"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestDemoRegistry runs the demo in registry mode: the service frames each
// impression as a registry serializer does, the writer resolves the schema
// id through the in-process registry; every record lands (no dead letters)
// and the table carries the registry lineage.
func TestDemoRegistry(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo", "--registry", "--messages", "500", "--rate", "0", "--lake", lake, "--commit-interval", "300ms", "--partitions", "2"}, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"schema registry", "subject ads.click.stream-value version 1, schema id 1", "rows in the Delta table      500 (dead letters: 0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var hist bytes.Buffer
	if err := run(ctx, []string{"history", filepath.Join(lake, "ad_impressions")}, &hist, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hist.String(), "ads.click.stream-value/1") {
		t.Errorf("history lacks the registry version:\n%s", hist.String())
	}
}

// demoRun runs the demo into lake and returns its stdout.
func demoRun(t *testing.T, ctx context.Context, lake string, messages string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo", "--messages", messages, "--rate", "0", "--lake", lake, "--commit-interval", "300ms", "--partitions", "3"}, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	return out.String()
}

// TestDemoTwice: a second demo into the same lake works: it says it
// removes the first run's table (a new in-process Kafka starts at offset
// 0), and the new table holds exactly the second run's rows with
// watermarks at the new topic's last offsets. No progress line shows
// version -1 for the table the writer created.
func TestDemoTwice(t *testing.T) {
	lake := t.TempDir()
	dir := filepath.Join(lake, "ad_impressions")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := demoRun(t, ctx, lake, "700")
	v1 := latestSnapshot(t, dir).Version()
	second := demoRun(t, ctx, lake, "400")
	want := fmt.Sprintf("reset: removed %s (version %d, 700 rows) that an earlier demo wrote: this run's Kafka starts again at offset 0\n", dir, v1)
	if !strings.HasPrefix(second, want) {
		t.Errorf("second demo does not start with\n%s\ngot:\n%s", want, second)
	}
	if strings.Contains(first, "reset:") {
		t.Errorf("first demo reset something:\n%s", first)
	}
	for _, out := range []string{first, second} {
		if strings.Contains(out, "table version  -1") {
			t.Errorf("progress shows version -1:\n%s", out)
		}
	}
	snap := latestSnapshot(t, dir)
	if n, ok := snap.NumRecords(); !ok || n != 400 {
		t.Errorf("second table: %d rows (%v), want 400", n, ok)
	}
	var sum int64
	for app, v := range snap.Txns() {
		if !strings.HasPrefix(app, "protolake:protolake-demo:ads.click.stream:") {
			t.Errorf("watermark %s", app)
		}
		sum += v + 1
	}
	if sum != 400 || len(snap.Txns()) != 3 {
		t.Errorf("watermarks %v: want 3 partitions whose last offsets + 1 add up to 400", snap.Txns())
	}
}

// TestDemoRefusesForeignTable: a table the demo did not write is never
// deleted; the demo stops and says what to do.
func TestDemoRefusesForeignTable(t *testing.T) {
	lake := t.TempDir()
	src := copyTable(t, "deltars-simple_table_with_checkpoint")
	dir := filepath.Join(lake, "ad_impressions")
	if err := os.Rename(src, dir); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "demo", "--messages", "10", "--lake", lake)
	want := "protolake: demo: " + dir + ` exists and is not a table an earlier demo wrote (its table name is "", not "ad_impressions"); the demo replaces only its own tables: remove it yourself or pass --lake DIR` + "\n"
	if code != 2 || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
	if v := latestSnapshot(t, dir).Version(); v != 10 {
		t.Errorf("the foreign table changed: version %d", v)
	}
}

// TestDemoServe: `demo --serve` leaves Kafka and the service running and
// writes a config with which `protolake run --until-caught-up` writes
// every impression sent.
func TestDemoServe(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	serveCtx, stopServe := context.WithCancel(ctx)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(serveCtx, []string{"demo", "--serve", "--messages", "300", "--rate", "0", "--lake", lake,
			"--kafka-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--partitions", "2"}, &out, io.Discard)
	}()
	for !strings.Contains(out.String(), "load done: 300 impressions sent") {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no load done:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	conf := filepath.Join(lake, "serve", "protolake.yaml")
	for _, want := range []string{"In another terminal:", "run --config " + conf + "  ", "inspect " + filepath.Join(lake, "ad_impressions_run")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve output lacks %q:\n%s", want, out.String())
		}
	}
	var runErr bytes.Buffer
	if err := run(ctx, []string{"run", "--config", conf, "--until-caught-up", "--http.listen=off"}, io.Discard, &runErr); err != nil {
		t.Fatalf("run with the serve config: %v\n%s", err, runErr.String())
	}
	snap := latestSnapshot(t, filepath.Join(lake, "ad_impressions_run"))
	if n, _ := snap.NumRecords(); n != 300 || len(snap.Txns()) != 2 {
		t.Errorf("table: %d rows, watermarks %v; want 300 rows and 2 partitions", n, snap.Txns())
	}
	stopServe()
	if err := <-done; err != nil {
		t.Fatalf("serve after Ctrl-C: %v", err)
	}
	if !strings.Contains(out.String(), "stopped after sending 300 impressions") {
		t.Errorf("serve output:\n%s", out.String())
	}
}

// TestDemoServeBrokers: with --brokers, serve publishes to that Kafka
// (creating the topic); a table whose watermarks are past the end of a
// broker started afresh is reset, and run writes the new impressions.
func TestDemoServeBrokers(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conf := filepath.Join(lake, "serve", "protolake.yaml")
	table := filepath.Join(lake, "ad_impressions_run")
	for round, n := range []int64{300, 100} {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		serveCtx, stopServe := context.WithCancel(ctx)
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(serveCtx, []string{"demo", "--serve", "--messages", fmt.Sprint(n), "--rate", "0", "--lake", lake,
				"--brokers", cluster.ListenAddrs()[0], "--grpc-listen", "127.0.0.1:0", "--partitions", "2"}, &out, io.Discard)
		}()
		for !strings.Contains(out.String(), fmt.Sprintf("load done: %d impressions sent", n)) {
			select {
			case err := <-done:
				t.Fatalf("round %d: serve stopped: %v\n%s", round, err, out.String())
			case <-ctx.Done():
				t.Fatalf("round %d: no load done:\n%s", round, out.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		if got := strings.Contains(out.String(), "reset: removed "+table+" "); got != (round == 1) {
			t.Errorf("round %d: reset printed %v:\n%s", round, got, out.String())
		}
		var runErr bytes.Buffer
		if err := run(ctx, []string{"run", "--config", conf, "--until-caught-up", "--http.listen=off"}, io.Discard, &runErr); err != nil {
			t.Fatalf("round %d: run: %v\n%s", round, err, runErr.String())
		}
		if rows, _ := latestSnapshot(t, table).NumRecords(); rows != n {
			t.Errorf("round %d: %d rows, want %d", round, rows, n)
		}
		stopServe()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		cluster.Close()
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCommandFor: printed commands work as shown.
func TestCommandFor(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	none := func(string) (string, error) { return "", errors.New("not found") }
	for _, tt := range []struct {
		exe, wd string
		look    func(string) (string, error)
		want    string
	}{
		{filepath.Join(repo, "bin", "protolake"), repo, none, filepath.Join("bin", "protolake")},
		{"/tmp/go-build123/b001/exe/protolake", repo, none, "go run ./cmd/protolake"},
		{"/tmp/go-build123/b001/exe/protolake", "/tmp", none, "go run github.com/protolake/protolake/cmd/protolake"},
		{"/usr/local/bin/protolake", "/tmp", func(string) (string, error) { return "/usr/local/bin/protolake", nil }, "protolake"},
		{"/opt/pl/protolake", "/tmp", func(string) (string, error) { return "/usr/local/bin/protolake", nil }, "/opt/pl/protolake"},
		{"/tmp/protolake", "/tmp", none, "./protolake"},
	} {
		if got := commandFor(tt.exe, tt.wd, tt.look); got != tt.want {
			t.Errorf("commandFor(%s, %s) = %q, want %q", tt.exe, tt.wd, got, tt.want)
		}
	}
}

// TestDeltaSparkVersionEverywhere: the demo, the README and the interop
// tier name one delta-spark release.
func TestDeltaSparkVersionEverywhere(t *testing.T) {
	req, err := os.ReadFile("../../interop/python/requirements.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(req), "\ndelta-spark=="+deltaSparkVersion+"\n") {
		t.Errorf("interop/python/requirements.txt does not pin delta-spark==%s", deltaSparkVersion)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`delta-spark[_0-9.]*[: ](\d+\.\d+\.\d+)`).FindAllStringSubmatch(string(readme), -1) {
		if m[1] != deltaSparkVersion {
			t.Errorf("README names %q, want delta-spark %s", m[0], deltaSparkVersion)
		}
	}
	var out bytes.Buffer
	printQueries(&out, "protolake", "/lake/t")
	if !strings.Contains(out.String(), "io.delta:delta-spark_2.12:"+deltaSparkVersion+" ") {
		t.Errorf("demo prints:\n%s", out.String())
	}
}
