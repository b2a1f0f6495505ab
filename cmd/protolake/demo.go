package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"encoding/base64"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/registry"
	"github.com/protolake/protolake/storage/local"
)

// demoTable is the table the demo writes, under --lake; demoGroup its
// consumer group.
const (
	demoTable = "ad_impressions"
	demoGroup = "protolake-demo"
)

// demoRegistry registers the ad-tracking schema under the impression
// topic's subject, as a serializer would (the serialized descriptor), and
// returns the framing the service writes before each impression.
func demoRegistry(ctx context.Context, reg *srfake.Registry) (prefix []byte, desc string, err error) {
	imp := (&adtrackpb.AdImpression{}).ProtoReflect().Descriptor()
	fdp, err := proto.Marshal(protodesc.ToFileDescriptorProto(imp.ParentFile()))
	if err != nil {
		return nil, "", err
	}
	subject := adtrack.DefaultImpressionTopic + "-value"
	id, version, err := reg.RegisterSchema(subject, sr.Schema{Schema: base64.StdEncoding.EncodeToString(fdp), Type: sr.TypeProtobuf})
	if err != nil {
		return nil, "", err
	}
	cl, err := registry.New(registry.Config{URL: reg.URL()}, registry.Options{})
	if err != nil {
		return nil, "", err
	}
	sch, err := cl.Schema(ctx, id)
	if err != nil {
		return nil, "", err
	}
	index, ok := sch.MessageIndex(imp.FullName())
	if !ok {
		return nil, "", fmt.Errorf("schema id %d does not declare %s", id, imp.FullName())
	}
	prefix, err = (&sr.ConfluentHeader{}).AppendEncode(nil, id, index)
	return prefix, fmt.Sprintf("subject %s version %d, schema id %d", subject, version, id), err
}

// runDemo runs the seed architecture in one process with no setup: an
// in-process Kafka (kfake), the ad-tracking gRPC service publishing to the
// ads.click.stream topic, a load generator calling it over gRPC, and the
// streaming writer committing ./lake/ad_impressions, partitioned by day.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 20*time.Second, "how long to generate load (0: until --messages are sent or Ctrl-C)")
	messages := fs.Int64("messages", 0, "stop after this many impressions (0: no limit)")
	rate := fs.Float64("rate", 2000, "impressions per second (0: as fast as the pipeline takes them)")
	lake := fs.String("lake", "./lake", "directory the demo's tables are written to")
	partitions := fs.Int("partitions", 6, "partitions of the Kafka topic")
	commitInterval := fs.Duration("commit-interval", 2*time.Second, "how often the streaming writer commits")
	quiet := fs.Bool("quiet", false, "print only the summary")
	withRegistry := fs.Bool("registry", false, "frame records as a schema-registry serializer does and have the writer follow an in-process registry (franz-go's srfake)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: protolake demo [--duration 20s] [--messages N] [--rate 2000] [--lake ./lake]")
		fmt.Fprintln(stderr, "\nRuns Kafka (in-process), the ad-tracking gRPC service, a load generator and")
		fmt.Fprintln(stderr, "the streaming writer in one process, then prints how to query the table.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("demo takes no arguments, got %q", fs.Args())}
	}
	if *duration == 0 && *messages == 0 {
		return usageError{errors.New("demo needs --duration or --messages (or both)")}
	}
	if *partitions < 1 {
		return usageError{errors.New("--partitions must be at least 1")}
	}
	lakeDir, err := filepath.Abs(*lake)
	if err != nil {
		return err
	}
	tableDir := filepath.Join(lakeDir, demoTable)
	say := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(stdout, format+"\n", a...)
		}
	}

	// 1. Kafka, in process, speaking the wire protocol on 127.0.0.1.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), adtrack.DefaultImpressionTopic))
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	say("kafka (in-process)  %v, topic %s with %d partitions", brokers, adtrack.DefaultImpressionTopic, *partitions)

	// 2. The ad-tracking gRPC service, publishing to Kafka.
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	defer producer.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for grpc: %w", err)
	}
	srv := grpc.NewServer()
	svc := adtrack.NewService(producer, "", "")
	var registryURL string
	if *withRegistry {
		reg := srfake.New()
		defer reg.Close()
		prefix, desc, err := demoRegistry(ctx, reg)
		if err != nil {
			return fmt.Errorf("in-process schema registry: %w", err)
		}
		svc.SetValuePrefix(adtrack.DefaultImpressionTopic, prefix)
		registryURL = reg.URL()
		say("schema registry     %s (in-process), %s", registryURL, desc)
	}
	adtrackpb.RegisterClickTrackServiceServer(srv, svc)
	go srv.Serve(lis)
	defer srv.Stop()
	say("grpc service        ClickTrackService on %s", lis.Addr())

	// 3. The streaming writer, configured as a user would in protolake.yaml.
	cfg := ingest.Config{
		Kafka: ingest.KafkaConfig{Brokers: brokers, GroupID: demoGroup},
		Tables: []ingest.TableConfig{{
			Name:         demoTable,
			Topics:       []string{adtrack.DefaultImpressionTopic},
			Message:      "adtrack.v1.AdImpression",
			Descriptor:   (&adtrackpb.AdImpression{}).ProtoReflect().Descriptor(),
			ProtoVersion: "demo",
			URI:          tableDir,
			PartitionBy:  []string{"day(event_time)"},
			Flush:        ingest.FlushConfig{CommitInterval: *commitInterval},
		}},
		HTTP: ingest.HTTPConfig{Listen: "off"},
	}
	if registryURL != "" {
		t := &cfg.Tables[0]
		t.Descriptor, t.ProtoVersion = nil, "" // the message stays: it is not the file's first
		t.SchemaRegistry = registry.Config{URL: registryURL}
	}
	var committedRows, tableVersion, commits, deadLetters atomic.Int64
	tableVersion.Store(-1)
	runner, err := ingest.NewRunner(ctx, cfg, ingest.Options{
		Logger:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		EngineInfo: "protolake/" + version,
		OnCommit: func(e ingest.CommitEvent) {
			if e.DeadLetter {
				deadLetters.Add(e.Rows)
				return
			}
			committedRows.Add(e.Rows)
			tableVersion.Store(e.Version)
			commits.Add(1)
		},
	})
	if err != nil {
		return fmt.Errorf("start the streaming writer: %w", err)
	}
	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunner()
	runErr := make(chan error, 1)
	go func() { runErr <- runner.Run(runCtx) }()
	say("streaming writer    %s (partitioned by day(event_time), commit every %s)", tableDir, *commitInterval)

	// 4. Load: impressions over gRPC, event times spread over the last days.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	if *duration > 0 {
		loadCtx, stopLoad = context.WithTimeout(ctx, *duration)
		defer stopLoad()
	}
	base := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	gen := make(chan *adtrackpb.AdImpression, 256)
	go func() {
		// One goroutine owns the generator's random source.
		for i := 0; ; i++ {
			select {
			case gen <- adtrack.Impression(rng, i, base, 5*time.Second):
			case <-loadCtx.Done():
				return
			}
		}
	}()
	var stats adtrack.LoadStats
	loadErr := make(chan error, 1)
	start := time.Now()
	go func() {
		loadErr <- adtrack.Load(loadCtx, adtrackpb.NewClickTrackServiceClient(conn), adtrack.LoadConfig{
			Rate: *rate, Messages: *messages, Concurrency: 32,
			Next: func(int64) *adtrackpb.AdImpression {
				select {
				case m := <-gen:
					return m
				case <-loadCtx.Done():
					return &adtrackpb.AdImpression{ImpressionId: "unsent"}
				}
			},
		}, &stats)
	}()
	say("load generator      %s", describeLoad(*rate, *duration, *messages))
	say("")

	progress := func() {
		el := time.Since(start).Seconds()
		say("%5.1fs  sent %7d (%6.0f/s)   committed rows %7d   table version %3d   dead letters %d",
			el, stats.Sent.Load(), float64(stats.Sent.Load())/el, committedRows.Load(), tableVersion.Load(), deadLetters.Load())
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lerr error
wait:
	for {
		select {
		case lerr = <-loadErr:
			break wait
		case err := <-runErr:
			return fmt.Errorf("streaming writer stopped: %w", err)
		case <-tick.C:
			progress()
		}
	}
	sent := stats.Sent.Load()
	loadTime := time.Since(start)
	if lerr != nil {
		return lerr
	}

	// 5. Drain: wait until every sent impression is committed, then stop
	// the writer, which commits what it still buffers.
	say("load done: %d impressions in %s; waiting for the writer to commit them all", sent, loadTime.Round(time.Millisecond))
	drain := time.NewTimer(max(30*time.Second, 10**commitInterval))
	defer drain.Stop()
drained:
	for committedRows.Load()+deadLetters.Load() < sent {
		select {
		case <-tick.C:
			progress()
		case err := <-runErr:
			return fmt.Errorf("streaming writer stopped: %w", err)
		case <-drain.C:
			break drained
		case <-ctx.Done():
			break drained
		}
	}
	progress()
	stopRunner()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("streaming writer: %w", err)
	}

	// 6. Read the table back from its log, the way any Delta reader would.
	store, err := local.New(tableDir)
	if err != nil {
		return err
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		return err
	}
	snap, err := tbl.Snapshot(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("read the table back: %w", err)
	}
	rows, _ := snap.NumRecords()
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "\nprotolake demo summary\n")
	fmt.Fprintf(stdout, "  impressions sent over gRPC   %d in %s (%.0f/s)\n", sent, loadTime.Round(time.Millisecond), float64(sent)/loadTime.Seconds())
	fmt.Fprintf(stdout, "  rows in the Delta table      %d (dead letters: %d)\n", rows, deadLetters.Load())
	fmt.Fprintf(stdout, "  table                        %s\n", tableDir)
	fmt.Fprintf(stdout, "  version / files / bytes      %d / %d / %d (%d streaming commits)\n", snap.Version(), snap.NumFiles(), snap.TotalSize(), commits.Load())
	fmt.Fprintf(stdout, "  elapsed                      %s\n", elapsed.Round(time.Millisecond))
	if err := checkAgainstKafka(context.WithoutCancel(ctx), producer, snap, rows+deadLetters.Load(), sent); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  check                        rows = records in Kafka = impressions sent; every partition's txn watermark is its last offset\n")
	printQueries(stdout, lakeDir, tableDir)
	return nil
}

func describeLoad(rate float64, d time.Duration, n int64) string {
	s := "as fast as possible"
	if rate > 0 {
		s = fmt.Sprintf("%.0f impressions/s", rate)
	}
	if d > 0 {
		s += fmt.Sprintf(" for %s", d)
	}
	if n > 0 {
		s += fmt.Sprintf(" up to %d impressions", n)
	}
	return s + " over gRPC (ClickTrackService.AdTrack)"
}

func printQueries(w io.Writer, lakeDir, tableDir string) {
	rel := tableDir
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, tableDir); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	fmt.Fprintf(w, `
Query it:

  protolake inspect %[1]s

  # DuckDB (with the delta extension):
  duckdb -c "INSTALL delta; LOAD delta;
    SELECT event_time_day, count(*) AS impressions, count(DISTINCT campaign_id) AS campaigns
    FROM delta_scan('%[2]s') GROUP BY ALL ORDER BY 1"
  # DuckDB without extensions: the demo's files are all committed, so the
  # Parquet files are the table (in general use the snapshot's file list):
  duckdb -c "SELECT device.os, count(*) FROM read_parquet('%[1]s/**/*.parquet', hive_partitioning=true) GROUP BY ALL"

  # Spark 3.5 with delta-spark:
  pyspark --packages io.delta:delta-spark_2.12:3.2.0 \
    --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
    --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
  >>> df = spark.read.format("delta").load("%[2]s")
  >>> df.groupBy("event_time_day", "geo.country").count().orderBy("event_time_day").show()
`, rel, tableDir)
}

// checkAgainstKafka compares the table with the topic: as many rows (plus
// dead letters) as records in Kafka and impressions sent, and for every
// partition a txn watermark at its last offset.
func checkAgainstKafka(ctx context.Context, cl *kgo.Client, snap *commitlog.Snapshot, rows, sent int64) error {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, adtrack.DefaultImpressionTopic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	var records int64
	var problems []string
	ends.Each(func(o kadm.ListedOffset) {
		records += o.Offset
		app := commitlog.KafkaAppID(demoGroup, o.Topic, o.Partition)
		v, ok := snap.TxnVersion(app)
		switch {
		case o.Offset == 0 && !ok:
		case !ok:
			problems = append(problems, fmt.Sprintf("partition %d has %d records but no txn watermark", o.Partition, o.Offset))
		case v != o.Offset-1:
			problems = append(problems, fmt.Sprintf("partition %d: watermark %d, last offset %d", o.Partition, v, o.Offset-1))
		}
	})
	if rows != records || records != sent {
		problems = append(problems, fmt.Sprintf("%d rows and dead letters, %d records in Kafka, %d impressions sent", rows, records, sent))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the table does not match the topic: %s", strings.Join(problems, "; "))
	}
	return nil
}
