package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protolake/protolake/internal/adtrackpb"
)

// TestServes starts the command against kfake, tracks one impression over
// gRPC, and stops it with its context.
func TestServes(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "imps"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	srvCtx, stop := context.WithCancel(ctx)
	go func() {
		done <- run(srvCtx, []string{"--listen", "127.0.0.1:0", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--impression-topic", "imps"}, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run exited early: %v", err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := adtrackpb.NewClickTrackServiceClient(conn).AdTrack(ctx, &adtrackpb.AdImpression{ImpressionId: "i1"})
	if err != nil {
		t.Fatalf("AdTrack: %v", err)
	}
	if resp.Topic != "imps" || resp.Offset != 0 {
		t.Fatalf("response %v, want topic imps offset 0", resp)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"--nope"}, io.Discard, nil); err == nil {
		t.Fatal("want an error for an unknown flag")
	}
}
