package ingest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// operator serves a Runner's HTTP endpoints and samples them as a
// Kubernetes probe and a Prometheus scrape would.
type operator struct {
	t   *testing.T
	srv *httptest.Server
}

func newOperator(t *testing.T, r *ingest.Runner, reg prometheus.Gatherer) *operator {
	srv := httptest.NewServer(ingest.Handler(r, reg))
	t.Cleanup(srv.Close)
	return &operator{t: t, srv: srv}
}

func (o *operator) get(path string) (int, string) {
	resp, err := o.srv.Client().Get(o.srv.URL + path)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of the first sample of /metrics matching the
// regular expression (name and labels), or -1.
func (o *operator) metric(re string) float64 {
	_, body := o.get("/metrics")
	m := regexp.MustCompile(`(?m)^` + re + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// waitReady samples /readyz every 50ms until it answers want or d passes,
// and returns the last answer and when it came.
func (o *operator) waitReady(want int, d time.Duration) (int, string, time.Duration) {
	start := time.Now()
	for {
		code, body := o.get("/readyz")
		if code == want || time.Since(start) > d {
			return code, body, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logLines counts log records by message and passes them on to next.
type logLines struct {
	c    *logCounts
	next slog.Handler
}

type logCounts struct {
	mu    sync.Mutex
	count map[string]int
}

func newLogLines(next slog.Handler) *logLines {
	return &logLines{c: &logCounts{count: map[string]int{}}, next: next}
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }

func (l *logLines) Handle(ctx context.Context, r slog.Record) error {
	l.c.mu.Lock()
	l.c.count[r.Message]++
	l.c.mu.Unlock()
	if l.next.Enabled(ctx, r.Level) {
		return l.next.Handle(ctx, r)
	}
	return nil
}

func (l *logLines) WithAttrs(as []slog.Attr) slog.Handler {
	return &logLines{c: l.c, next: l.next.WithAttrs(as)}
}

func (l *logLines) WithGroup(g string) slog.Handler {
	return &logLines{c: l.c, next: l.next.WithGroup(g)}
}

func (l *logLines) n(msg string) int {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.c.count[msg]
}

// TestStalledStore stops the table's store (every request hangs, ignoring
// its context, like a SIGSTOPped server) while records arrive, and watches
// what an operator sees: /readyz turns 503 within storage.slow_request,
// the requests time out after storage.request_timeout and are counted in
// /metrics, one WARN says so; when the store comes back /readyz is 200 again
// and every record is committed once.
func TestStalledStore(t *testing.T) {
	const n = 600
	c := startKafka(t, 6, topic)
	var src produced
	p := producer(t, c)
	produce(t, p, &src, 0, n/2, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.Storage = ingest.StorageConfig{RequestTimeout: 1500 * time.Millisecond, SlowRequest: 300 * time.Millisecond}
	reg := prometheus.NewRegistry()
	logs := newLogLines(testLogger(t).Handler())
	var fs *faulty.Store
	release := make(chan struct{})
	var stalled sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: slog.New(logs), Registerer: reg, KafkaOpts: fastGroup(),
		WrapStore: wrapMain(&fs)})
	if err != nil {
		t.Fatal(err)
	}
	op := newOperator(t, r, reg)
	run := goRun(ctx, t, r)
	for r.Stats()[0].RowsCommitted < n/2 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if code, body, _ := op.waitReady(200, 5*time.Second); code != 200 {
		t.Fatalf("/readyz = %d %q while healthy", code, body)
	}

	// The store stops answering.
	stopAt := time.Now()
	fs.OnBefore(func(context.Context, faulty.Call) error { <-release; return nil })
	defer stalled.Do(func() { close(release) })
	produce(t, p, &src, n/2, n, marshal)
	code, body, after := op.waitReady(503, 5*time.Second)
	if code != 503 {
		t.Fatalf("/readyz = %d for %v after the store stopped", code, after)
	}
	t.Logf("/readyz 503 %v after the store stopped: %s", time.Since(stopAt).Round(time.Millisecond), strings.TrimSpace(body))
	if since := time.Since(stopAt); since > 3*time.Second {
		t.Errorf("/readyz turned 503 only %v after the store stopped (slow_request 300ms)", since)
	}
	deadline := time.Now().Add(10 * time.Second)
	for op.metric(`protolake_ingest_storage_errors_total\{op="[a-z_]+",table="ad_impressions"\}`) < 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if v := op.metric(`protolake_ingest_storage_errors_total\{op="[a-z_]+",table="ad_impressions"\}`); v < 1 {
		t.Errorf("storage_errors_total = %v after requests hung past request_timeout", v)
	}
	time.Sleep(2 * time.Second) // several timed-out retries
	if got := logs.n("storage requests failing"); got != 1 {
		t.Errorf("%d WARN 'storage requests failing' lines during one outage, want 1", got)
	}
	if code, _ := op.get("/readyz"); code != 503 {
		t.Errorf("/readyz = %d during the outage", code)
	}
	if v := op.metric(`protolake_ingest_ready`); v != 0 {
		t.Errorf("protolake_ingest_ready = %v during the outage", v)
	}

	// The store comes back.
	stalled.Do(func() { close(release) })
	fs.OnBefore(nil)
	if code, body, after := op.waitReady(200, 20*time.Second); code != 200 {
		t.Errorf("/readyz = %d %q %v after the store came back", code, body, after)
	}
	for r.Stats()[0].RowsCommitted < n && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if got := logs.n("storage requests succeed again"); got < 1 {
		t.Errorf("no INFO 'storage requests succeed again' after the outage")
	}
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
}

// TestBrokerDown closes the Kafka cluster under a running Runner: /readyz
// turns 503 (readiness means "can consume and commit").
func TestBrokerDown(t *testing.T) {
	c := startKafka(t, 2, topic)
	var src produced
	produce(t, producer(t, c), &src, 0, 20, marshal)
	cfg := baseConfig(t, c.ListenAddrs(), tempDir(t))
	cfg.Kafka.SessionTimeout = 3 * time.Second
	cfg.Kafka.HeartbeatInterval = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	op := newOperator(t, r, reg)
	run := goRun(ctx, t, r)
	for r.Stats()[0].RowsCommitted < 20 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if code, body, _ := op.waitReady(200, 5*time.Second); code != 200 {
		t.Fatalf("/readyz = %d %q while healthy", code, body)
	}
	down := time.Now()
	c.Close()
	code, body, _ := op.waitReady(503, 10*time.Second)
	if code != 503 {
		t.Fatalf("/readyz = %d 10s after the broker went down", code)
	}
	t.Logf("/readyz 503 %v after the broker went down: %s", time.Since(down).Round(time.Millisecond), strings.TrimSpace(body))
	_ = run.stop()
}

// TestPermanentKafkaErrors: a wrong SASL password, a user without the ACLs
// to read the topic, and a topic that does not exist are retried for
// kafka.fatal_after, then the streaming Runner stops with the error (the
// command exits 2) instead of retrying forever; /readyz is 503 meanwhile.
func TestPermanentKafkaErrors(t *testing.T) {
	const fatalAfter = 1500 * time.Millisecond
	sasl := func(extra ...kfake.Opt) *kfake.Cluster {
		opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, topic), kfake.EnableSASL(),
			kfake.Superuser("PLAIN", "admin", "admin-secret"),
			kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"})}, extra...)
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	for _, tc := range []struct {
		name    string
		cluster func() *kfake.Cluster
		config  func(cfg *ingest.Config)
		want    error // or x509.UnknownAuthorityError{}
	}{
		{"wrong SASL password", func() *kfake.Cluster {
			c := sasl()
			// kfake drops the connection on a bad password; a Kafka broker
			// answers SASL_AUTHENTICATION_FAILED first. Answer like one.
			c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
				resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
				msg := "Authentication failed: Invalid username or password"
				resp.ErrorMessage = &msg
				return resp, nil, true
			})
			return c
		}, func(cfg *ingest.Config) {
			cfg.Kafka.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "admin", Password: "wrong"}
		}, kerr.SaslAuthenticationFailed},
		{"no ACL for the topic", func() *kfake.Cluster {
			return sasl(kfake.EnableACLs(), kfake.User("PLAIN", "reader", "pw"))
		}, func(cfg *ingest.Config) {
			cfg.Kafka.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "reader", Password: "pw"}
		}, kerr.TopicAuthorizationFailed},
		{"no ACL for the group", func() *kfake.Cluster {
			return sasl(kfake.EnableACLs(), kfake.User("PLAIN", "reader", "pw",
				kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true}))
		}, func(cfg *ingest.Config) {
			cfg.Kafka.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "reader", Password: "pw"}
		}, kerr.GroupAuthorizationFailed},
		{"untrusted TLS certificate", func() *kfake.Cluster {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c
		}, func(cfg *ingest.Config) {
			cfg.Kafka.TLS = ingest.TLSConfig{Enabled: true, ServerName: "127.0.0.1"}
		}, x509.UnknownAuthorityError{}},
		{"unknown topic", func() *kfake.Cluster { return startKafka(t, 2, topic) }, func(cfg *ingest.Config) {
			cfg.Tables[0].Topics = []string{"no.such.topic"}
		}, kerr.UnknownTopicOrPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cluster()
			cfg := baseConfig(t, c.ListenAddrs(), tempDir(t))
			cfg.Kafka.FatalAfter = fatalAfter
			cfg.Kafka.SessionTimeout = 3 * time.Second
			cfg.Kafka.HeartbeatInterval = 300 * time.Millisecond
			tc.config(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			run := goRun(ctx, t, r)
			time.Sleep(fatalAfter / 2)
			if r.Ready() {
				t.Errorf("Ready while Kafka refuses us")
			}
			ended, err := run.waitWithin(20 * time.Second)
			if !ended {
				t.Fatalf("Run still retrying %v after the start (fatal_after %v)", time.Since(start), fatalAfter)
			}
			t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
			ok := errors.Is(err, tc.want)
			if _, isTLS := tc.want.(x509.UnknownAuthorityError); isTLS {
				ok = errors.As(err, new(x509.UnknownAuthorityError))
			}
			if !ok {
				t.Errorf("Run = %v, want an error wrapping %v", err, tc.want)
			}
			if d := time.Since(start); d < fatalAfter {
				t.Errorf("gave up after %v, before fatal_after %v", d, fatalAfter)
			}
		})
	}
}

// selfSigned is a certificate for 127.0.0.1 no CA vouches for.
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
