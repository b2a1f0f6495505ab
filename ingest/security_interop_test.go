//go:build interop

package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/bigtest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestInteropKafkaSecurity runs `run --until-caught-up` against the interop
// tier's real Kafka broker through its SASL PLAIN (plaintext) and TLS
// listeners (interop/start.sh): every record is committed, and the start
// logs a WARN for SASL PLAIN over plaintext and for insecure_skip_verify —
// none when TLS is verified with the test CA — and never the password.
func TestInteropKafkaSecurity(t *testing.T) {
	plain, saslAddr, tlsAddr, ca := bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_BROKERS"), bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_SASL_BROKERS"),
		bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_TLS_BROKERS"), bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_CA_FILE")
	const password = "protolake-secret"
	const saslWarn = "SASL PLAIN over a plaintext connection"
	const skipWarn = "kafka.tls.insecure_skip_verify is on"
	tests := []struct {
		name  string
		kafka func(*ingest.KafkaConfig)
		warns []string
	}{
		{"sasl plain over plaintext", func(k *ingest.KafkaConfig) {
			k.Brokers = []string{saslAddr}
			k.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "protolake", Password: password}
		}, []string{saslWarn}},
		{"tls insecure_skip_verify", func(k *ingest.KafkaConfig) {
			k.Brokers = []string{tlsAddr}
			k.TLS = ingest.TLSConfig{Enabled: true, InsecureSkipVerify: true}
		}, []string{skipWarn}},
		{"tls verified", func(k *ingest.KafkaConfig) {
			k.Brokers = []string{tlsAddr}
			k.TLS = ingest.TLSConfig{Enabled: true, CAFile: ca}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 200
			topic := fmt.Sprintf("security-%d", time.Now().UnixNano())
			p, err := kgo.NewClient(kgo.SeedBrokers(plain), kgo.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, &kgo.Record{Topic: topic, Value: marshal(i)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}

			dir := tempDir(t)
			cfg := baseConfig(t, []string{plain}, dir)
			cfg.Kafka.GroupID = "lake-" + topic
			cfg.Tables[0].Topics = []string{topic}
			tt.kafka(&cfg.Kafka)
			var logs strings.Builder
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: logger, UntilCaughtUp: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Run(ctx); err != nil {
				t.Fatalf("Run: %v\n%s", err, logs.String())
			}
			if got := r.Stats()[0].RowsCommitted; got != n {
				t.Errorf("committed %d rows, want %d", got, n)
			}
			files, _ := tableFiles(t, filepath.Join(dir, "ad_impressions"))
			if len(files) == 0 {
				t.Error("no data file committed")
			}
			warns := linesWith(strings.Split(logs.String(), "\n"), "level=WARN", "brokers=")
			if len(warns) != len(tt.warns) {
				t.Fatalf("WARN lines about the connection:\n%s\nwant %q", strings.Join(warns, "\n"), tt.warns)
			}
			for i, w := range tt.warns {
				if !strings.Contains(warns[i], w) {
					t.Errorf("WARN %q lacks %q", warns[i], w)
				}
			}
			if strings.Contains(logs.String(), password) {
				t.Error("the SASL password is in the logs")
			}
		})
	}
}
