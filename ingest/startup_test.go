package ingest_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolake/protolake/ingest"
)

// newRunnerLogs runs NewRunner on cfg with a text logger at info level and
// returns the log lines and the error.
func newRunnerLogs(t *testing.T, cfg ingest.Config) ([]string, error) {
	t.Helper()
	var b strings.Builder
	logger := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo}))
	_, err := ingest.NewRunner(context.Background(), cfg, ingest.Options{Logger: logger})
	return strings.Split(strings.TrimSpace(b.String()), "\n"), err
}

func linesWith(lines []string, subs ...string) []string {
	var out []string
	for _, l := range lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// TestInsecureKafkaWarnings: insecure_skip_verify and SASL PLAIN over
// plaintext are each logged once as a WARN; verified TLS and SCRAM are not.
func TestInsecureKafkaWarnings(t *testing.T) {
	const skipMsg = "kafka.tls.insecure_skip_verify is on"
	const plainMsg = "SASL PLAIN over a plaintext connection"
	tests := []struct {
		name string
		set  func(*ingest.KafkaConfig)
		want []string
	}{
		{"plaintext, no SASL", func(*ingest.KafkaConfig) {}, nil},
		{"insecure_skip_verify", func(k *ingest.KafkaConfig) { k.TLS.Enabled, k.TLS.InsecureSkipVerify = true, true }, []string{skipMsg}},
		{"verified TLS", func(k *ingest.KafkaConfig) { k.TLS.Enabled = true }, nil},
		{"PLAIN over plaintext", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "pw-not-logged"}
		}, []string{plainMsg}},
		{"PLAIN over TLS", func(k *ingest.KafkaConfig) {
			k.TLS.Enabled = true
			k.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "pw-not-logged"}
		}, nil},
		{"PLAIN over unverified TLS", func(k *ingest.KafkaConfig) {
			k.TLS.Enabled, k.TLS.InsecureSkipVerify = true, true
			k.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "pw-not-logged"}
		}, []string{skipMsg}},
		{"SCRAM over plaintext", func(k *ingest.KafkaConfig) {
			k.SASL = ingest.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "pw-not-logged"}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(t, []string{"127.0.0.1:1"}, tempDir(t))
			tt.set(&cfg.Kafka)
			lines, err := newRunnerLogs(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			warns := linesWith(lines, "level=WARN")
			if len(warns) != len(tt.want) {
				t.Fatalf("WARN lines:\n%s\nwant %d: %q", strings.Join(warns, "\n"), len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(warns[i], w) || !strings.Contains(warns[i], "brokers=[127.0.0.1:1]") {
					t.Errorf("WARN %q lacks %q and the brokers", warns[i], w)
				}
			}
			if l := linesWith(lines, "pw-not-logged"); len(l) > 0 {
				t.Errorf("the SASL password is logged: %s", l)
			}
		})
	}
}

// TestNothingWrittenBeforeValidation: a mistake found at start — a second
// table's descriptor, a Kafka TLS file — leaves no table (nor dead-letter
// table) behind; a good start logs each creation once, under the created
// table's own name.
func TestNothingWrittenBeforeValidation(t *testing.T) {
	noPEM := filepath.Join(tempDir(t), "ca.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(cfg *ingest.Config, dir string)
		want string
	}{
		{"second table's descriptor", func(cfg *ingest.Config, dir string) {
			second := cfg.Tables[0]
			second.Name, second.URI, second.Topics = "clicks", filepath.Join(dir, "clicks"), []string{"clicks"}
			second.DescriptorSet = filepath.Join(dir, "missing.binpb")
			cfg.Tables = append(cfg.Tables, second)
		}, "tables.1 (clicks)"},
		{"second table's message", func(cfg *ingest.Config, dir string) {
			second := cfg.Tables[0]
			second.Name, second.URI, second.Topics, second.Message = "clicks", filepath.Join(dir, "clicks"), []string{"clicks"}, "adtrack.v1.Nope"
			cfg.Tables = append(cfg.Tables, second)
		}, "adtrack.v1.Nope"},
		{"kafka CA file", func(cfg *ingest.Config, _ string) {
			cfg.Kafka.TLS = ingest.TLSConfig{Enabled: true, CAFile: noPEM}
		}, "kafka.tls.ca_file: no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tempDir(t)
			cfg := baseConfig(t, []string{"127.0.0.1:1"}, dir)
			tc.set(&cfg, dir)
			_, err := newRunnerLogs(t, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRunner = %v, want an error with %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("a failed start left %v behind", names)
			}
		})
	}

	dir := tempDir(t)
	lines, err := newRunnerLogs(t, baseConfig(t, []string{"127.0.0.1:1"}, dir))
	if err != nil {
		t.Fatal(err)
	}
	created := linesWith(lines, "created table")
	want := []string{"table=ad_impressions uri=" + filepath.Join(dir, "ad_impressions") + " ", "table=ad_impressions_dlq uri=" + filepath.Join(dir, "ad_impressions_dlq") + " "}
	if len(created) != 2 || !strings.Contains(created[0], want[0]) || !strings.Contains(created[1], want[1]) {
		t.Errorf("creations logged:\n%s\nwant one line with %q and one with %q", strings.Join(created, "\n"), want[0], want[1])
	}
	// Opening existing tables creates nothing and logs no creation.
	lines, err = newRunnerLogs(t, baseConfig(t, []string{"127.0.0.1:1"}, dir))
	if err != nil {
		t.Fatal(err)
	}
	if c := linesWith(lines, "created table"); len(c) > 0 {
		t.Errorf("reopening logged a creation: %s", c)
	}
}
