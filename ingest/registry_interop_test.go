//go:build interop

package ingest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRegistryOutageRealBroker runs TestRegistryOutage against the interop
// tier's Kafka broker (fetch sessions, a real group coordinator), where
// pausing, seeking back and resuming must deliver the waiting records again.
func TestRegistryOutageRealBroker(t *testing.T) {
	brokers := os.Getenv("PLTEST_INTEROP_KAFKA_BROKERS")
	if brokers == "" {
		t.Fatal("PLTEST_INTEROP_KAFKA_BROKERS is not set: run through make interop")
	}
	seeds := strings.Split(brokers, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, hang := range []bool{false, true} {
		topic := "registry-outage-" + uuid.NewString()[:8]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, topic)
		cancel()
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		// The broker's minimum session timeout is 6s.
		testRegistryOutage(t, hang, seeds, topic, []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)})
	}
}
