package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
	serve := fs.Bool("serve", false, "leave Kafka and the gRPC service running (until Ctrl-C) for `protolake run`; writes a config for it")
	kafkaAddr := fs.String("kafka-listen", "127.0.0.1:9092", "with --serve: the address of the in-process Kafka")
	brokers := fs.String("brokers", "", "with --serve: publish to this Kafka (host:port,…) instead of an in-process one, e.g. make kafka's 127.0.0.1:19092")
	grpcAddr := fs.String("grpc-listen", "127.0.0.1:9090", "with --serve: the address of the gRPC service")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: protolake demo [--duration 20s] [--messages N] [--rate 2000] [--lake ./lake]")
		fmt.Fprintln(stderr, "       protolake demo --serve [--rate 200] [--kafka-listen 127.0.0.1:9092 | --brokers HOST:PORT] [--lake ./lake]")
		fmt.Fprintln(stderr, "\nRuns Kafka (in-process), the ad-tracking gRPC service, a load generator and")
		fmt.Fprintln(stderr, "the streaming writer in one process, then prints how to query the table.")
		fmt.Fprintln(stderr, "Each run starts a new Kafka at offset 0, so it replaces the table an earlier")
		fmt.Fprintln(stderr, "demo wrote under --lake (and says so); it never touches any other directory.")
		fmt.Fprintln(stderr, "\nWith --serve it runs Kafka, the service and the load generator only, until")
		fmt.Fprintln(stderr, "Ctrl-C, and writes LAKE/serve/protolake.yaml for `protolake run` in another")
		fmt.Fprintln(stderr, "terminal.")
		fmt.Fprintln(stderr)
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
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if !*serve {
		for _, name := range []string{"kafka-listen", "brokers", "grpc-listen"} {
			if explicit[name] {
				return usageError{fmt.Errorf("demo: --%s goes with --serve", name)}
			}
		}
	}
	if *serve {
		if !explicit["duration"] {
			*duration = 0 // until Ctrl-C
		}
		if !explicit["rate"] {
			*rate = 200
		}
	} else if *duration == 0 && *messages == 0 {
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
	self := selfCommand()
	if *serve {
		return runServe(ctx, serveConfig{
			lakeDir: lakeDir, kafkaAddr: *kafkaAddr, brokers: *brokers, grpcAddr: *grpcAddr,
			partitions: *partitions, rate: *rate, duration: *duration, messages: *messages, self: self,
		}, stdout, say)
	}
	// Each run has a new Kafka starting at offset 0: a table an earlier
	// demo wrote holds watermarks from another Kafka and must go first.
	for _, dir := range []string{tableDir, tableDir + "_dlq"} {
		if err := resetDemoTable(ctx, dir, demoGroup, stdout); err != nil {
			return err
		}
	}

	// 1. Kafka, in process, speaking the wire protocol on 127.0.0.1; 2. the
	// ad-tracking gRPC service, publishing to it.
	svc, err := startDemoServices("127.0.0.1:0", "", "127.0.0.1:0", *partitions)
	if err != nil {
		return err
	}
	defer svc.close()
	brokerList := svc.brokers
	producer := svc.producer
	say("kafka (in-process)  %v, topic %s with %d partitions", brokerList, adtrack.DefaultImpressionTopic, *partitions)
	var registryURL string
	if *withRegistry {
		reg := srfake.New()
		defer reg.Close()
		prefix, desc, err := demoRegistry(ctx, reg)
		if err != nil {
			return fmt.Errorf("in-process schema registry: %w", err)
		}
		svc.service.SetValuePrefix(adtrack.DefaultImpressionTopic, prefix)
		registryURL = reg.URL()
		say("schema registry     %s (in-process), %s", registryURL, desc)
	}
	say("grpc service        ClickTrackService on %s", svc.grpcAddr)

	// 3. The streaming writer, configured as a user would in protolake.yaml.
	cfg := ingest.Config{
		Kafka: ingest.KafkaConfig{Brokers: brokerList, GroupID: demoGroup},
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
	// The writer created the table (version 0) before its first commit.
	if v, err := localTableVersion(ctx, tableDir); err == nil {
		tableVersion.Store(v)
	}
	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunner()
	runErr := make(chan error, 1)
	go func() { runErr <- runner.Run(runCtx) }()
	say("streaming writer    %s (partitioned by day(event_time), commit every %s)", tableDir, *commitInterval)

	// 4. Load: impressions over gRPC, event times spread over the last days.
	var stats adtrack.LoadStats
	start := time.Now()
	loadErr, stopLoad := startLoad(ctx, svc.conn, *rate, *duration, *messages, &stats)
	defer stopLoad()
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
	printQueries(stdout, self, tableDir)
	return nil
}

// demoServices are the demo's Kafka (in-process unless brokers were
// given), its producer, and the ad-tracking gRPC service with a client
// connection to it.
type demoServices struct {
	brokers  []string
	producer *kgo.Client
	service  *adtrack.Service
	grpcAddr string
	conn     *grpc.ClientConn
	close    func()
}

// startDemoServices starts kfake on kafkaAddr (host:port; port 0 picks a
// free one) with the impression topic, or connects to brokers (a
// comma-separated list) and creates the topic there if it is missing, and
// serves ClickTrackService on grpcAddr.
func startDemoServices(kafkaAddr, brokers, grpcAddr string, partitions int) (*demoServices, error) {
	svc := &demoServices{}
	var closers []func()
	svc.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*demoServices, error) {
		svc.close()
		return nil, err
	}
	if brokers == "" {
		if _, _, err := net.SplitHostPort(kafkaAddr); err != nil {
			return nil, usageError{fmt.Errorf("demo: --kafka-listen %q: want host:port", kafkaAddr)}
		}
		listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, kafkaAddr) }
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(listen), kfake.SeedTopics(int32(partitions), adtrack.DefaultImpressionTopic))
		if err != nil {
			return nil, fmt.Errorf("start in-process kafka on %s (--kafka-listen picks another address): %w", kafkaAddr, err)
		}
		closers = append(closers, cluster.Close)
		svc.brokers = cluster.ListenAddrs()
	} else {
		svc.brokers = strings.Split(brokers, ",")
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(svc.brokers...))
	if err != nil {
		return fail(fmt.Errorf("kafka producer: %w", err))
	}
	closers = append(closers, producer.Close)
	svc.producer = producer
	if brokers != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := kadm.NewClient(producer).CreateTopic(ctx, int32(partitions), 1, nil, adtrack.DefaultImpressionTopic)
		cancel()
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fail(fmt.Errorf("create topic %s on %s: %w", adtrack.DefaultImpressionTopic, brokers, err))
		}
	}
	lis, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fail(fmt.Errorf("listen for grpc on %s (--grpc-listen picks another address): %w", grpcAddr, err))
	}
	srv := grpc.NewServer()
	svc.service = adtrack.NewService(producer, "", "")
	adtrackpb.RegisterClickTrackServiceServer(srv, svc.service)
	go func() { _ = srv.Serve(lis) }()
	closers = append(closers, srv.Stop)
	svc.grpcAddr = lis.Addr().String()
	conn, err := grpc.NewClient(svc.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { conn.Close() })
	svc.conn = conn
	return svc, nil
}

// startLoad calls AdTrack over conn at rate for duration (0: until ctx
// ends) or up to messages impressions (0: no limit), with event times
// spread over the last days. The channel receives the load's result; stop
// ends it early.
func startLoad(ctx context.Context, conn *grpc.ClientConn, rate float64, duration time.Duration, messages int64, stats *adtrack.LoadStats) (<-chan error, func()) {
	loadCtx, stop := context.WithCancel(ctx)
	if duration > 0 {
		loadCtx, stop = context.WithTimeout(ctx, duration)
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
	done := make(chan error, 1)
	go func() {
		done <- adtrack.Load(loadCtx, adtrackpb.NewClickTrackServiceClient(conn), adtrack.LoadConfig{
			Rate: rate, Messages: messages, Concurrency: 32,
			Next: func(int64) *adtrackpb.AdImpression {
				select {
				case m := <-gen:
					return m
				case <-loadCtx.Done():
					return &adtrackpb.AdImpression{ImpressionId: "unsent"}
				}
			},
		}, stats)
	}()
	return done, stop
}

// localTableVersion is the latest version of the local table at dir.
func localTableVersion(ctx context.Context, dir string) (int64, error) {
	store, err := local.New(dir)
	if err != nil {
		return -1, err
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		return -1, err
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return -1, err
	}
	return snap.Version(), nil
}

// resetDemoTable deletes the table at dir if an earlier demo wrote it (its
// metaData name is the directory's name and every txn watermark belongs to
// group), printing what it removed; a missing or empty directory is left
// alone, and anything else is refused, never deleted.
func resetDemoTable(ctx context.Context, dir, group string, stdout io.Writer) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	refuse := func(why string) error {
		return fmt.Errorf("demo: %s exists and is not a table an earlier demo wrote (%s); the demo replaces only its own tables: remove it yourself or pass --lake DIR", dir, why)
	}
	store, err := local.New(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return refuse(err.Error())
	}
	if name := snap.Metadata().Name; name != filepath.Base(dir) {
		return refuse(fmt.Sprintf("its table name is %q, not %q", name, filepath.Base(dir)))
	}
	prefix := commitlog.KafkaAppID(group, "", 0)
	prefix = prefix[:strings.Index(prefix, group)+len(group)+1]
	for app := range snap.Txns() {
		if !strings.HasPrefix(app, prefix) {
			return refuse(fmt.Sprintf("it has a watermark of %s", app))
		}
	}
	rows, _ := snap.NumRecords()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("demo: reset %s: %w", dir, err)
	}
	fmt.Fprintf(stdout, "reset: removed %s (version %d, %d rows) that an earlier demo wrote: this run's Kafka starts again at offset 0\n", displayPath(dir), snap.Version(), rows)
	return nil
}

// displayPath is dir relative to the working directory when it is below
// it, else dir.
func displayPath(dir string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return dir
}

// selfCommand is how to run this protolake again from the working
// directory, as printed in suggestions: "protolake" when that is this
// binary on the PATH, the binary's path when it is a built one
// (bin/protolake), and `go run ./cmd/protolake` under `go run`.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "protolake"
	}
	wd, _ := os.Getwd()
	return commandFor(exe, wd, exec.LookPath)
}

func commandFor(exe, wd string, lookPath func(string) (string, error)) string {
	if p, err := lookPath("protolake"); err == nil {
		if a, b := resolvePath(p), resolvePath(exe); a == b {
			return "protolake"
		}
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		if _, err := os.Stat(filepath.Join(wd, "cmd", "protolake", "main.go")); err == nil {
			return "go run ./cmd/protolake"
		}
		return "go run github.com/protolake/protolake/cmd/protolake"
	}
	if r, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(r, "..") {
		if !strings.Contains(r, string(filepath.Separator)) {
			return "." + string(filepath.Separator) + r
		}
		return r
	}
	return exe
}

func resolvePath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
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

// deltaSparkVersion is the delta-spark release printed for Spark 3.5 — the
// one the interop tier tests (interop/python/requirements.txt; a test keeps
// them, the README and this in step).
const deltaSparkVersion = "3.3.2"

func printQueries(w io.Writer, self, tableDir string) {
	fmt.Fprintf(w, `
Query it:

  %[3]s inspect %[1]s
  %[3]s history %[1]s

  # DuckDB (with the delta extension):
  duckdb -c "INSTALL delta; LOAD delta;
    SELECT event_time_day, count(*) AS impressions, count(DISTINCT campaign_id) AS campaigns
    FROM delta_scan('%[2]s') GROUP BY ALL ORDER BY 1"
  # DuckDB without extensions: read exactly the snapshot's files
  files=$(%[3]s inspect %[1]s --files | sed "s/.*/'&'/" | paste -sd, -)
  duckdb -c "SELECT device.os, count(*) FROM read_parquet([$files], hive_partitioning=true) GROUP BY ALL"

  # Spark 3.5 with delta-spark:
  pyspark --packages io.delta:delta-spark_2.12:%[4]s \
    --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
    --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
  >>> df = spark.read.format("delta").load("%[2]s")
  >>> df.groupBy("event_time_day", "geo.country").count().orderBy("event_time_day").show()

Try the streaming writer against a Kafka that stays up: %[3]s demo --serve
`, displayPath(tableDir), tableDir, self, deltaSparkVersion)
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
