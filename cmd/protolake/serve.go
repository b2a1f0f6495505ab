package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
)

// serveGroup is the consumer group of the config `demo --serve` writes;
// serveTable the table it points at, under --lake.
const (
	serveGroup = "protolake-serve"
	serveTable = "ad_impressions_run"
)

// serveConfig is what `demo --serve` was asked for.
type serveConfig struct {
	lakeDir, kafkaAddr, brokers, grpcAddr string
	partitions                            int
	rate                                  float64
	duration                              time.Duration
	messages                              int64
	self                                  string
}

// serveYAML is the config `demo --serve` writes for `protolake run`.
const serveYAML = `# Written by protolake demo --serve: the streaming writer reading the
# demo's Kafka. Run it with
#   %[1]s run --config %[2]s
kafka:
  brokers: [%[3]s]
  group_id: %[4]s
tables:
  - uri: %[5]s
    topics: [%[6]s]
    message: adtrack.v1.AdImpression
    descriptor_set: %[7]s
    proto_version: demo
    partition_by: ["day(event_time)"]
    flush:
      commit_interval: 5s
http:
  listen: 127.0.0.1:8080
log:
  format: text
`

// runServe is `demo --serve`: Kafka (in-process on a fixed address, or the
// one --brokers names), the gRPC service and the load generator, until
// Ctrl-C (or --duration / --messages), plus LAKE/serve/protolake.yaml and
// the descriptor set it names, so that `protolake run` can be tried for
// real in another terminal.
func runServe(ctx context.Context, c serveConfig, stdout io.Writer, say func(string, ...any)) error {
	tableDir := filepath.Join(c.lakeDir, serveTable)
	if c.brokers == "" {
		// A new in-process Kafka starts at offset 0: the table of an
		// earlier --serve would hold watermarks past its end.
		for _, dir := range []string{tableDir, tableDir + "_dlq"} {
			if err := resetDemoTable(ctx, dir, serveGroup, stdout); err != nil {
				return err
			}
		}
	}
	svc, err := startDemoServices(c.kafkaAddr, c.brokers, c.grpcAddr, c.partitions)
	if err != nil {
		return err
	}
	defer svc.close()
	if c.brokers != "" {
		// An external broker keeps its topic, and the table its
		// watermarks, across runs; but a broker started afresh (make kafka
		// after make kafka-stop) has none of the table's offsets.
		if stale, err := aheadOfTopic(ctx, svc.producer, tableDir); err != nil {
			return err
		} else if stale {
			for _, dir := range []string{tableDir, tableDir + "_dlq"} {
				if err := resetDemoTable(ctx, dir, serveGroup, stdout); err != nil {
					return err
				}
			}
		}
	}

	confDir := filepath.Join(c.lakeDir, "serve")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return fmt.Errorf("demo --serve: %w", err)
	}
	set, err := schema.CanonicalDescriptorSet((&adtrackpb.AdImpression{}).ProtoReflect().Descriptor())
	if err != nil {
		return fmt.Errorf("demo --serve: descriptor set: %w", err)
	}
	descFile := filepath.Join(confDir, "adtrack.binpb")
	if err := os.WriteFile(descFile, set, 0o644); err != nil {
		return fmt.Errorf("demo --serve: %w", err)
	}
	confFile := filepath.Join(confDir, "protolake.yaml")
	conf := fmt.Sprintf(serveYAML, c.self, displayPath(confFile), strings.Join(svc.brokers, ", "), serveGroup, tableDir, adtrack.DefaultImpressionTopic, descFile)
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("demo --serve: %w", err)
	}

	kafka := "in-process (kfake)"
	if c.brokers != "" {
		kafka = "external"
	}
	fmt.Fprintf(stdout, "kafka               %s, %s, topic %s\n", strings.Join(svc.brokers, ","), kafka, adtrack.DefaultImpressionTopic)
	fmt.Fprintf(stdout, "grpc service        ClickTrackService on %s\n", svc.grpcAddr)
	fmt.Fprintf(stdout, "load generator      %s\n", describeLoad(c.rate, c.duration, c.messages))
	fmt.Fprintf(stdout, "config for run      %s (table %s)\n", displayPath(confFile), displayPath(tableDir))
	fmt.Fprintf(stdout, `
In another terminal:

  %[1]s run --config %[2]s                    # streams until Ctrl-C
  %[1]s run --config %[2]s --until-caught-up  # or: catch up, commit, exit
  %[1]s inspect %[3]s
  curl -s 127.0.0.1:8080/metrics | grep protolake_   # while run is running

Ctrl-C here stops Kafka, the service and the load.

`, c.self, displayPath(confFile), displayPath(tableDir))

	var stats adtrack.LoadStats
	loadErr, stopLoad := startLoad(ctx, svc.conn, c.rate, c.duration, c.messages, &stats)
	defer stopLoad()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case err := <-loadErr:
			if err != nil {
				return err
			}
			if ctx.Err() == nil && (c.duration > 0 || c.messages > 0) {
				fmt.Fprintf(stdout, "load done: %d impressions sent in %s; Kafka and the service stay up until Ctrl-C\n", stats.Sent.Load(), time.Since(start).Round(time.Second))
				<-ctx.Done()
			}
			fmt.Fprintf(stdout, "stopped after sending %d impressions\n", stats.Sent.Load())
			return nil
		case <-tick.C:
			say("%5.0fs  sent %d impressions", time.Since(start).Seconds(), stats.Sent.Load())
		}
	}
}

// aheadOfTopic reports whether the table at dir has a watermark at or past
// the end of its partition of the impression topic: it was written from
// another Kafka. A missing table is not ahead.
func aheadOfTopic(ctx context.Context, cl *kgo.Client, dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "_delta_log")); err != nil {
		return false, nil
	}
	store, err := local.New(dir)
	if err != nil {
		return false, fmt.Errorf("demo --serve: %w", err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		return false, fmt.Errorf("demo --serve: %w", err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return false, nil // not a table: resetDemoTable refuses it
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, adtrack.DefaultImpressionTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("demo --serve: end offsets of %s: %w", adtrack.DefaultImpressionTopic, err)
	}
	ahead := false
	ends.Each(func(o kadm.ListedOffset) {
		if v, ok := snap.TxnVersion(commitlog.KafkaAppID(serveGroup, o.Topic, o.Partition)); ok && v >= o.Offset {
			ahead = true
		}
	})
	return ahead, nil
}
