//go:build interop

package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/protolake/protolake/internal/bigtest"
	"github.com/protolake/protolake/registry"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestRegistryOutageRealBroker runs TestRegistryOutage against the interop
// tier's Kafka broker (fetch sessions, a real group coordinator), where
// pausing, seeking back and resuming must deliver the waiting records again.
func TestRegistryOutageRealBroker(t *testing.T) {
	brokers := bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_BROKERS")
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

// TestRegistryCrashRecoveryApicurio runs TestRegistryCrashRecovery (SIGKILLs
// while the producer moves v1 → v2 and sends incompatible v3 records)
// against the interop tier's Apicurio Registry server, the schemas
// registered through its Confluent-compatible API by franz-go's client.
func TestRegistryCrashRecoveryApicurio(t *testing.T) {
	url := bigtest.InteropEnv(t, "PLTEST_INTEROP_REGISTRY_URL")
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	reg := &serverShop{t: t, url: url, cl: cl}
	reg.register("shop.common.money", srMoney)
	// A subject of its own: the server outlives the test.
	testRegistryCrashRecovery(t, reg, "crash-"+uuid.NewString()[:8]+"-value")
}

// serverShop registers the registry tests' schemas in a registry server.
type serverShop struct {
	t   *testing.T
	url string
	cl  *sr.Client
}

var _ shopRegistry = (*serverShop)(nil)

func (s *serverShop) URL() string { return s.url }

func (s *serverShop) register(subject, text string) (int, *registry.Schema) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ss, err := s.cl.CreateSchema(ctx, subject, shopSchema(text))
	if err != nil {
		s.t.Fatalf("register %s in %s: %v", subject, s.url, err)
	}
	return ss.ID, compiledSchema(s.t, s.url, ss.ID)
}
