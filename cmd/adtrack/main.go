// Command adtrack runs the ad-tracking gRPC service (ClickTrackService) on its
// own: every AdTrack/TrackClick request is published, as its protobuf bytes,
// to a Kafka topic that `protolake run` turns into a Delta table.
//
//	adtrack --brokers kafka:9092 --listen :9090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/internal/adtrackpb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "adtrack:", err)
		os.Exit(2)
	}
}

// run serves until ctx is cancelled. ready, when not nil, receives the
// listening address once the server accepts connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("adtrack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9090", "gRPC listen address")
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka seed brokers, comma-separated")
	impressions := fs.String("impression-topic", adtrack.DefaultImpressionTopic, "topic for AdTrack (impressions)")
	clicks := fs.String("click-topic", adtrack.DefaultClickTopic, "topic for TrackClick (clicks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.WithLogger(kslog.New(log)),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer client.Close()

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	srv := grpc.NewServer()
	adtrackpb.RegisterClickTrackServiceServer(srv, adtrack.NewService(client, *impressions, *clicks))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)

	log.Info("adtrack serving", "addr", lis.Addr().String(), "brokers", *brokers, "impression_topic", *impressions)
	if ready != nil {
		ready <- lis.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case <-ctx.Done():
		hs.Shutdown()
		srv.GracefulStop()
		return nil
	case err := <-errc:
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	}
}
