//go:build interop

package ingest_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/bigtest"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestInteropPermanentKafkaErrors runs the streaming writer (no
// --until-caught-up) against the interop tier's real Kafka broker with a
// wrong SASL password, with TLS but without the test CA, and on a topic that
// does not exist: each time Run gives up after kafka.fatal_after with the
// error instead of retrying forever.
func TestInteropPermanentKafkaErrors(t *testing.T) {
	plain, saslAddr, tlsAddr := bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_BROKERS"), bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_SASL_BROKERS"), bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_TLS_BROKERS")
	const fatalAfter = 3 * time.Second
	for _, tc := range []struct {
		name  string
		kafka func(*ingest.KafkaConfig)
		is    func(error) bool
	}{
		{"wrong SASL password", func(k *ingest.KafkaConfig) {
			k.Brokers = []string{saslAddr}
			k.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "protolake", Password: "not-the-password"}
		}, func(err error) bool { return errors.Is(err, kerr.SaslAuthenticationFailed) }},
		{"untrusted TLS certificate", func(k *ingest.KafkaConfig) {
			k.Brokers = []string{tlsAddr}
			k.TLS = ingest.TLSConfig{Enabled: true}
		}, func(err error) bool { return errors.As(err, new(x509.UnknownAuthorityError)) }},
		{"unknown topic", func(k *ingest.KafkaConfig) {
			k.Brokers = []string{plain}
		}, func(err error) bool { return errors.Is(err, kerr.UnknownTopicOrPartition) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("fatal-%d", time.Now().UnixNano()) // never created
			cfg := baseConfig(t, []string{plain}, tempDir(t))
			cfg.Kafka.GroupID = "lake-" + topic
			cfg.Kafka.FatalAfter = fatalAfter
			cfg.Tables[0].Topics = []string{topic}
			tc.kafka(&cfg.Kafka)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			ended, err := goRun(ctx, t, r).waitWithin(time.Minute)
			if !ended {
				t.Fatalf("Run still retrying after %v (fatal_after %v)", time.Since(start), fatalAfter)
			}
			t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if !tc.is(err) {
				t.Errorf("Run = %v, want the %s error", err, tc.name)
			}
			if d := time.Since(start); d < fatalAfter {
				t.Errorf("gave up after %v, before fatal_after", d)
			}
		})
	}
}
