package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
)

// kafkaOpts builds the franz-go options from the config.
func (r *Runner) kafkaOpts() ([]kgo.Opt, error) {
	kc := r.cfg.Kafka
	r.fetch = newFetchSizer(r.cfg.MemoryLimit)
	opts := []kgo.Opt{
		kgo.SeedBrokers(kc.Brokers...),
		kgo.ClientID(kc.ClientID),
		kgo.ConsumerGroup(kc.GroupID),
		kgo.ConsumeTopics(r.topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// The client's fetch buffers are memory the limit does not see:
		// bound them to a small share of it (at most 4 fetches, each
		// holding at most memory_limit/32, 1 MiB to 50 MiB, once read:
		// r.fetch lowers FetchMaxBytes by what the batches hold
		// decompressed).
		kgo.FetchMaxBytes(fetchMaxBytes(r.cfg.MemoryLimit)),
		kgo.MaxConcurrentFetches(maxConcurrentFetches),
		kgo.WithHooks(r.fetch),
		// KIP-714 client metrics would compress each push with an 8 MiB
		// LZ4 buffer, a share of a small memory_limit; the Prometheus
		// metrics (kprom, below) are the client's metrics.
		kgo.DisableClientMetrics(),
		kgo.AdjustFetchOffsetsFn(r.adjustOffsets),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.SessionTimeout(kc.SessionTimeout),
		kgo.RebalanceTimeout(kc.RebalanceTimeout),
		kgo.HeartbeatInterval(kc.HeartbeatInterval),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			r.log.Info("a rebalance waits for the poll loop (it commits within rebalance_timeout)", "rebalance_timeout", kc.RebalanceTimeout)
		}),
		kgo.WithLogger(kslog.New(r.log.With("component", "kafka"))),
	}
	if kc.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(kc.InstanceID))
	}
	if r.opts.Registerer != nil {
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("protolake", kprom.Subsystem("kafka"), kprom.Registerer(r.opts.Registerer))))
	}
	if kc.TLS.Enabled {
		tc := &tls.Config{ServerName: kc.TLS.ServerName, InsecureSkipVerify: kc.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if kc.TLS.CAFile != "" {
			pem, err := os.ReadFile(kc.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls.ca_file: no PEM certificate in %s", kc.TLS.CAFile)
			}
		}
		if kc.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(kc.TLS.CertFile, kc.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.cert_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch s := kc.SASL; s.Mechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
	}
	return append(opts, r.opts.KafkaOpts...), nil
}

// warnInsecure logs a WARN for each Kafka setting that exposes the
// connection: unverified TLS certificates, a SASL PLAIN password sent in
// clear text.
func (r *Runner) warnInsecure() {
	kc := r.cfg.Kafka
	if kc.TLS.Enabled && kc.TLS.InsecureSkipVerify {
		r.log.Warn("kafka.tls.insecure_skip_verify is on: the brokers' certificates are not verified, so anyone on the network path can impersonate them (read the records and the SASL credentials); use kafka.tls.ca_file for a private CA",
			"brokers", kc.Brokers)
	}
	if kc.SASL.Mechanism == "PLAIN" && !kc.TLS.Enabled {
		r.log.Warn("SASL PLAIN over a plaintext connection: the password crosses the network in clear text; enable kafka.tls or use SCRAM-SHA-256/512",
			"brokers", kc.Brokers, "username", kc.SASL.Username)
	}
}
