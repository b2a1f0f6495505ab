package adtrack

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/protolake/protolake/internal/adtrackpb"
)

// startService starts kfake with the impression topic, the service on a
// gRPC listener producing to it, and returns the cluster and a client; all
// are stopped when the test ends.
func startService(t *testing.T, partitions int32) (*kfake.Cluster, adtrackpb.ClickTrackServiceClient) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, DefaultImpressionTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	adtrackpb.RegisterClickTrackServiceServer(srv, NewService(producer, "", ""))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cluster, adtrackpb.NewClickTrackServiceClient(conn)
}

// TestAdTrackPublishes sends impressions over real gRPC to the service, which
// produces to an in-process Kafka (kfake); a consumer then reads the topic and
// must find exactly the bytes of each request at the reported offsets.
func TestAdTrackPublishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, client := startService(t, 3)

	sent := map[string]*adtrackpb.AdImpression{}
	where := map[string]*adtrackpb.AdTrackResponse{}
	for i := range 20 {
		imp := &adtrackpb.AdImpression{
			ImpressionId: "imp-" + string(rune('a'+i)),
			EventTime:    timestamppb.New(time.Date(2026, 11, 23, 10, i, 0, 0, time.UTC)),
			Segments:     []string{"s1", "s2"},
			Labels:       map[string]string{"k": "v"},
		}
		resp, err := client.AdTrack(ctx, imp)
		if err != nil {
			t.Fatalf("AdTrack: %v", err)
		}
		if resp.Topic != DefaultImpressionTopic {
			t.Fatalf("published to %q, want %q", resp.Topic, DefaultImpressionTopic)
		}
		sent[imp.ImpressionId] = imp
		where[imp.ImpressionId] = resp
	}
	if _, err := client.AdTrack(ctx, &adtrackpb.AdImpression{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("AdTrack without id: got %v, want InvalidArgument", err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics(DefaultImpressionTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := 0
	for got < len(sent) {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			want, ok := sent[string(r.Key)]
			if !ok {
				t.Errorf("unexpected key %q", r.Key)
				return
			}
			var m adtrackpb.AdImpression
			if err := proto.Unmarshal(r.Value, &m); err != nil || !proto.Equal(&m, want) {
				t.Errorf("record %q: value differs from the request (err %v)", r.Key, err)
			}
			if w := where[string(r.Key)]; w.Partition != r.Partition || w.Offset != r.Offset {
				t.Errorf("record %q at %d/%d, response said %d/%d", r.Key, r.Partition, r.Offset, w.Partition, w.Offset)
			}
		})
	}
	if got != len(sent) {
		t.Fatalf("consumed %d records, want %d", got, len(sent))
	}
}

// TestLoadDeliversEachIndexOnce drives the load generator through real gRPC
// into kfake and checks that exactly the requested impressions arrive.
func TestLoadDeliversEachIndexOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, client := startService(t, 2)

	const n = 300
	var stats LoadStats
	err := Load(ctx, client, LoadConfig{
		Rate: 5000, Messages: n, Concurrency: 4,
		Next: func(i int64) *adtrackpb.AdImpression {
			return &adtrackpb.AdImpression{ImpressionId: fmt.Sprintf("imp-%d", i)}
		},
	}, &stats)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent.Load() != n || stats.Failed.Load() != 0 {
		t.Fatalf("sent %d failed %d, want %d and 0", stats.Sent.Load(), stats.Failed.Load(), n)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics(DefaultImpressionTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]int{}
	for len(seen) < n {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)]++ })
	}
	for i := range n {
		if k := fmt.Sprintf("imp-%d", i); seen[k] != 1 {
			t.Errorf("%s arrived %d times", k, seen[k])
		}
	}
}

func TestLoadStopsOnPersistentFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer() // no service registered: every call is Unimplemented
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var stats LoadStats
	err = Load(context.Background(), adtrackpb.NewClickTrackServiceClient(conn), LoadConfig{
		Next: func(int64) *adtrackpb.AdImpression { return &adtrackpb.AdImpression{ImpressionId: "x"} },
	}, &stats)
	if err == nil || !strings.Contains(err.Error(), "Unimplemented") {
		t.Fatalf("err = %v, want the Unimplemented failure", err)
	}
	if stats.Sent.Load() != 0 || stats.Failed.Load() < 100 {
		t.Fatalf("sent %d failed %d", stats.Sent.Load(), stats.Failed.Load())
	}
}
