package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/deadline"
	"github.com/protolake/protolake/storage/open"
	"github.com/protolake/protolake/writer"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Options are what a Runner is given besides its Config: injected logging and
// metrics, hooks to observe progress, and test knobs. The zero value is valid.
type Options struct {
	// Logger receives the Runner's and franz-go's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the Runner's and franz-go's (kprom) metrics.
	// Default: none.
	Registerer prometheus.Registerer
	// UntilCaughtUp makes Run stop, with everything committed, once every
	// assigned partition has been consumed up to the end offsets seen when
	// Run started (scheduled deployments).
	UntilCaughtUp bool
	// OnCommit, if set, is called after every successful Delta commit, from
	// the goroutine that committed, with the Runner's lock held: it must
	// not call back into the Runner (Stats is fine) and should be quick.
	OnCommit func(CommitEvent)
	// Opener opens the table URLs. Default: a new open.Opener.
	Opener *open.Opener
	// WrapStore, if set, wraps every table's store (fault injection in
	// tests).
	WrapStore func(table string, s storage.Store) storage.Store
	// EngineInfo is written to commitInfo.engineInfo. Default "protolake/dev".
	EngineInfo string
	// KafkaOpts are extra franz-go options appended to the ones built from
	// the Config (tests tune session timeouts with them).
	KafkaOpts []kgo.Opt
}

// CommitEvent describes one successful commit.
type CommitEvent struct {
	// Table is the table's name; DeadLetter says it was its dead-letter
	// table (named Table + "_dlq").
	Table      string
	DeadLetter bool
	// Version is the table version written.
	Version int64
	// Rows, Files and Bytes are what the commit added.
	Rows  int64
	Files int
	Bytes int64
	// Offsets are the Kafka offsets the commit covers.
	Offsets []commitlog.OffsetRange
	// Evolved is true when the commit changed the table's schema or proto pin.
	Evolved bool
	// Duration is the time taken to flush and commit.
	Duration time.Duration
}

// TableStats are the running totals of one table since the Runner started.
type TableStats struct {
	// Name is the table's name.
	Name string
	// Version is the table version of this Runner's last commit (-1 before).
	Version int64
	// RowsCommitted and DeadLetters count committed rows of the table and of
	// its dead-letter table; Commits counts commits to the table.
	RowsCommitted, DeadLetters, Commits int64
	// RecordsConsumed counts records read from Kafka for the table,
	// including re-reads after a dropped buffer.
	RecordsConsumed int64
}

// Runner consumes the topics of a Config with one Kafka consumer group
// member and keeps its tables up to date, exactly once: each table commit
// carries, per Kafka partition, the last offset it includes as a Delta txn
// (appId protolake:<group>:<topic>:<partition>), and an assigned partition
// resumes after that offset. Records the decoder rejects go to the table's
// dead-letter table with their own watermarks.
//
// Create it with NewRunner and call Run once.
type Runner struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	m       *metrics
	tables  []*table
	byTopic map[string]*table
	topics  []string
	kopts   []kgo.Opt // built (and their files read) by NewRunner, before any write

	mu      sync.Mutex // guards everything below and the tables' sinks
	cl      *kgo.Client
	adm     *kadm.Client
	parts   map[tp]*partState
	joined  bool
	closing bool
	targets map[tp]int64 // UntilCaughtUp: end offsets seen at start
	// wmCache holds, with UntilCaughtUp, the table watermarks of partitions
	// this Runner does not hold, re-read at most every wmCheckedAt + 1s.
	wmCache     map[tp]int64
	wmCheckedAt time.Time
	// wmSnaps are the snapshots those watermarks were read from, brought
	// up to date with Table.Update (new commits only) at each re-read.
	wmSnaps map[*table]*commitlog.Snapshot
	fatal   error
	dlqBuf  []byte

	// cond (on mu) is broadcast when a batch is cut or committed, a table
	// is reset, or the committers are told to stop.
	cond     *sync.Cond
	stopping bool               // committers stop
	wakePoll context.CancelFunc // ends the running poll early (a commit finished), nil between polls
	woken    bool               // a commit finished between polls: do not block in the next one
	workers  sync.WaitGroup     // a committer per table, and watchKafka

	kafka       kafkaHealth
	fetchLogged map[tp]string // the last fetch error logged per partition

	uploadSlots chan struct{} // Storage.MaxUploads
	inflight    atomic.Int64  // bytes of data files not uploaded yet

	started  chan struct{} // closed once cl and adm are set: callbacks wait for it
	ran      atomic.Bool
	notReady atomic.Pointer[string] // why the Runner is not ready ("" if it is), kept by updateReady
}

type tp struct {
	topic string
	part  int32
}

// table is one configured table with its dead-letter table.
type table struct {
	cfg  *TableConfig
	name string
	main *sink
	dlq  *sink     // nil when dead letters are disabled
	reg  *resolver // nil unless the table is fed through a schema registry

	health storeHealth

	nextCommit   time.Time
	failing      bool // the last commit failed; retried with backoff
	failingSince time.Time
	backoff      time.Duration
	retryAt      time.Time
	paused       bool
	skipBatch    bool // buffers dropped while processing this poll: skip its remaining records

	// The pipeline (pipeline.go), guarded by Runner.mu.
	pending    *batch // cut, not taken by the committer yet
	committing bool   // the committer is committing a batch
	gen        int64  // bumped by reset: batches of an older generation are void
	reseek     bool   // reset while committing: re-read the watermarks when it is done
	upCtx      context.Context
	upCancel   context.CancelFunc

	uploading      atomic.Int64 // bytes of the table's data files not uploaded yet
	uploadsFailing atomic.Int64 // uploads of the table retrying after a failure

	version, rows, dead, commits, consumed atomic.Int64
}

// partState is one assigned partition.
type partState struct {
	t      *table
	tp     tp
	mainWM int64 // the main table's txn version (-1: none)
	dlqWM  int64 // the dead-letter table's txn version (-1: none)
	start  int64 // where the partition starts without a watermark
	first  int64 // first offset consumed since the last main commit (-1: none)
	last   int64 // last offset consumed (seek-1 before any)
	dFirst int64 // first offset consumed above dlqWM since the last DLQ commit
	dead   bool  // dead letters buffered for this partition
}

func (p *partState) seek() int64 {
	if p.mainWM >= 0 {
		return p.mainWM + 1
	}
	return p.start
}

// NewRunner validates cfg (after applying its defaults), loads every table's
// descriptors, and opens or creates each table and its dead-letter table.
// A table whose schema cannot take the configured descriptor is an error
// wrapping *schema.IncompatibleError, listing the breaking changes.
func NewRunner(ctx context.Context, cfg Config, opts Options) (*Runner, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Opener == nil {
		opts.Opener = &open.Opener{}
	}
	if opts.EngineInfo == "" {
		opts.EngineInfo = "protolake/dev"
	}
	r := &Runner{cfg: cfg, opts: opts, log: opts.Logger, byTopic: map[string]*table{}, parts: map[tp]*partState{}, started: make(chan struct{}),
		uploadSlots: make(chan struct{}, cfg.Storage.MaxUploads)}
	r.cond = sync.NewCond(&r.mu)
	m, err := newMetrics(opts.Registerer, r.Ready)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	r.m = m
	// Everything is checked before the first write: a mistake anywhere
	// (a descriptor, a breaking change, a TLS file) leaves no table behind.
	for i := range r.cfg.Tables {
		tc := &r.cfg.Tables[i]
		t, err := r.openTable(ctx, tc)
		if err != nil {
			r.closeStores()
			return nil, fmt.Errorf("tables.%d (%s): %w", i, tc.Name, err)
		}
		r.tables = append(r.tables, t)
		for _, topic := range tc.Topics {
			r.byTopic[topic] = t
			r.topics = append(r.topics, topic)
		}
	}
	if r.kopts, err = r.kafkaOpts(); err != nil {
		r.closeStores()
		return nil, err
	}
	r.warnInsecure()
	for i, t := range r.tables {
		for _, s := range t.sinks() {
			if err := s.create(ctx, r.log); err != nil {
				r.closeStores()
				return nil, fmt.Errorf("tables.%d (%s): %w", i, t.name, err)
			}
		}
	}
	return r, nil
}

func (r *Runner) openTable(ctx context.Context, tc *TableConfig) (*table, error) {
	msg := tc.Descriptor
	if msg == nil && !tc.registryFed() {
		var err error
		if msg, err = schema.Load(ctx, tc.Source(), tc.Message); err != nil {
			return nil, fmt.Errorf("load %s: %w", tc.Message, err)
		}
	}
	clcfg := func(name string) commitlog.Config {
		return commitlog.Config{EngineInfo: r.opts.EngineInfo, Logger: r.log.With("table", name)}
	}
	t := &table{cfg: tc, name: tc.Name}
	t.version.Store(-1)
	t.upCtx, t.upCancel = context.WithCancel(context.Background())
	store, err := r.openStore(ctx, t, tc.Name, tc.URI)
	if err != nil {
		return nil, err
	}
	version, reg := tc.ProtoVersion, regInfo{}
	if tc.registryFed() {
		tbl, err := commitlog.Open(store, clcfg(tc.Name))
		if err == nil {
			t.reg, msg, reg, err = r.newResolver(ctx, tc, tbl)
		}
		if err != nil {
			_ = open.Close(store)
			return nil, fmt.Errorf("schema registry %s, subject %s: %w", open.Redact(tc.SchemaRegistry.URL), tc.subject(), err)
		}
		version = reg.label()
	}
	wcfg := tc.WriterConfig()
	// One record may take a quarter of the memory limit to decode; a larger
	// one is dead-lettered (writer.ErrRecordTooLarge) instead of growing
	// the buffers without bound.
	wcfg.MaxRecordBytes = int64(r.cfg.MemoryLimit) / 4
	if t.main, err = openRegistrySink(ctx, tc.Name, open.Redact(tc.URI), store, msg, tc.Schema, version, reg, wcfg, clcfg(tc.Name), r.log); err != nil {
		_ = open.Close(store)
		return nil, err
	}
	t.main.up = newUploader(r, t, store)
	if !tc.DeadLetter.Disabled {
		dmsg, err := deadLetterDescriptor()
		if err != nil {
			return nil, err
		}
		dstore, err := r.openStore(ctx, t, tc.Name+"_dlq", tc.DeadLetter.URI)
		if err != nil {
			_ = open.Close(store)
			return nil, err
		}
		// Dead letters are rare and may be large (whole records): their
		// files are cut at memory_limit/8 (at most 64 MiB), so writing one
		// out never holds much of the limit twice.
		dcfg := writer.Config{MaxBytes: min(64<<20, int64(r.cfg.MemoryLimit)/8), MaxAge: tc.Flush.MaxAge, Compression: writer.Compression(tc.Compression), ZstdLevel: tc.CompressionLevel}
		if t.dlq, err = openSink(ctx, tc.Name+"_dlq", open.Redact(tc.DeadLetter.URI), dstore, dmsg, schema.Options{NoUnknown: true}, "", dcfg, clcfg(tc.Name+"_dlq"), r.log); err != nil {
			_ = open.Close(store)
			_ = open.Close(dstore)
			return nil, fmt.Errorf("dead-letter table: %w", err)
		}
		t.dlq.up = newUploader(r, t, dstore)
	}
	return t, nil
}

// openStore opens the store of table t's sink name at uri, with
// Config.Storage's deadline on every request and its health reported to t.
func (r *Runner) openStore(ctx context.Context, t *table, name, uri string) (storage.Store, error) {
	tc := t.cfg
	// The table's s3 options apply on top of the URL's query options.
	op := r.opts.Opener.WithS3(tc.S3)
	s, err := op.Open(ctx, uri)
	if err != nil {
		return nil, err // names the URL, redacted
	}
	if r.opts.WrapStore != nil {
		s = r.opts.WrapStore(name, s)
	}
	ds := deadline.New(s, r.cfg.Storage.RequestTimeout, func(res deadline.Result) { r.observeStorage(t, name, res) })
	t.health.stores = append(t.health.stores, ds)
	return ds, nil
}

// storeHealth is what the storage requests of a table's stores say about
// them. Its mutex guards the fields below; stores is set before Run.
type storeHealth struct {
	stores []*deadline.Store

	mu       sync.Mutex
	failing  bool
	since    time.Time
	failures int
}

// observeStorage records one finished storage request of table t: a failure
// starts an episode (one WARN with the error), the next success ends it
// (one INFO).
func (r *Runner) observeStorage(t *table, name string, res deadline.Result) {
	if res.Duration > r.cfg.Storage.SlowRequest {
		r.m.slowRequests.WithLabelValues(name, string(res.Op)).Inc()
	}
	h := &t.health
	if res.Err != nil {
		r.m.storageErrors.WithLabelValues(name, string(res.Op)).Inc()
		h.mu.Lock()
		first := !h.failing
		if first {
			h.failing, h.since, h.failures = true, time.Now(), 0
		}
		h.failures++
		h.mu.Unlock()
		if first {
			r.log.Warn("storage requests failing", "table", name, "op", res.Op, "key", res.Key, "duration", res.Duration.Round(time.Millisecond), "err", res.Err)
		}
		return
	}
	h.mu.Lock()
	was, since, n := h.failing, h.since, h.failures
	h.failing = false
	h.mu.Unlock()
	if was {
		r.log.Info("storage requests succeed again", "table", name, "after", time.Since(since).Round(time.Millisecond), "failed_requests", n)
	}
}

// storageProblem says why t's storage is not healthy ("" if it is): a
// request failed and none succeeded since, a request has been running for
// longer than Storage.SlowRequest, or uploads are being retried.
func (r *Runner) storageProblem(t *table) string {
	h := &t.health
	h.mu.Lock()
	failing := h.failing
	h.mu.Unlock()
	switch {
	case failing:
		return "storage requests of " + t.name + " fail"
	case t.uploadsFailing.Load() > 0:
		return "uploads to " + t.name + " fail"
	}
	for _, s := range h.stores {
		if o := s.Oldest(); !o.IsZero() && time.Since(o) > r.cfg.Storage.SlowRequest {
			return fmt.Sprintf("a storage request of %s has been running for %v (storage.slow_request %v)", t.name, time.Since(o).Round(100*time.Millisecond), r.cfg.Storage.SlowRequest)
		}
	}
	return ""
}

func (r *Runner) closeStores() {
	for _, t := range r.tables {
		_ = open.Close(t.main.store)
		if t.dlq != nil {
			_ = open.Close(t.dlq.store)
		}
	}
}

// Stats returns the running totals of every table, in config order. It is
// safe to call at any time, from any goroutine.
func (r *Runner) Stats() []TableStats {
	out := make([]TableStats, len(r.tables))
	for i, t := range r.tables {
		out[i] = TableStats{Name: t.name, Version: t.version.Load(), RowsCommitted: t.rows.Load(), DeadLetters: t.dead.Load(), Commits: t.commits.Load(), RecordsConsumed: t.consumed.Load()}
	}
	return out
}

// Ready reports whether the Runner can consume and commit: what /readyz
// serves. See NotReady.
func (r *Runner) Ready() bool { return r.NotReady() == "" }

// NotReady says why the Runner is not ready, "" when it is: not a group
// member (yet, or any more), stopping or stopped on an error, a table's
// last commit failed, a storage request failed with none succeeding since,
// one has been running for longer than storage.slow_request, uploads are
// being retried, or no Kafka request has succeeded for
// kafka.session_timeout while requests fail.
func (r *Runner) NotReady() string {
	if p := r.notReady.Load(); p == nil {
		return "not started"
	} else if *p != "" {
		return *p
	}
	for _, t := range r.tables {
		if p := r.storageProblem(t); p != "" {
			return p
		}
	}
	if p := r.kafkaProblem(); p != "" {
		return p
	}
	return ""
}

// updateReady recomputes what NotReady reports from the state r.mu guards;
// r.mu is held.
func (r *Runner) updateReady() {
	why := r.notReadyLocked()
	r.notReady.Store(&why)
}

func (r *Runner) notReadyLocked() string {
	switch {
	case r.fatal != nil:
		return "stopping on an error: " + r.fatal.Error()
	case r.closing:
		return "stopping"
	case !r.joined:
		return "not a member of consumer group " + r.cfg.Kafka.GroupID + " (joining, or partitions lost)"
	}
	for _, t := range r.tables {
		if t.failing {
			return "commits to " + t.name + " fail (retrying)"
		}
		if t.reg != nil && t.reg.waiting {
			return "waiting for the schema registry of " + t.name
		}
	}
	return ""
}

// kafkaOpts builds the franz-go options from the config.
func (r *Runner) kafkaOpts() ([]kgo.Opt, error) {
	kc := r.cfg.Kafka
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
		// bound them to a small share of it (at most 4 fetches of
		// memory_limit/32 each, 1 MiB to 50 MiB).
		kgo.FetchMaxBytes(fetchMaxBytes(r.cfg.MemoryLimit)),
		kgo.MaxConcurrentFetches(maxConcurrentFetches),
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

// maxConcurrentFetches bounds the fetches the Kafka client buffers at once.
const maxConcurrentFetches = 4

// fetchMaxBytes is the per-fetch byte limit for a memory limit: 1/32 of it,
// between 1 MiB and franz-go's default of 50 MiB.
func fetchMaxBytes(limit ByteSize) int32 {
	return int32(min(max(int64(limit)/32, 1<<20), 50<<20))
}

// Run consumes until ctx is cancelled (or, with UntilCaughtUp, until caught
// up), then stops fetching, flushes and commits everything buffered within
// Config.ShutdownTimeout, leaves the group and returns nil. It returns an
// error when it cannot go on (a record it may not dead-letter, a table it may
// not write) or when the final commit failed (nothing is lost: the
// uncommitted records are read again by the next run).
func (r *Runner) Run(ctx context.Context) error {
	if r.ran.Swap(true) {
		return errors.New("ingest: Runner.Run called twice")
	}
	defer r.closeStores()
	cl, err := kgo.NewClient(r.kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	r.mu.Lock()
	r.cl, r.adm = cl, kadm.NewClient(cl)
	now := time.Now()
	for _, t := range r.tables {
		t.nextCommit = now.Add(t.cfg.Flush.CommitInterval)
	}
	r.mu.Unlock()
	// The group is joined in the background as soon as the client exists;
	// its callbacks use r.cl and r.adm, so they wait for this.
	close(r.started)
	bgctx, bgcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer bgcancel()
	for _, t := range r.tables {
		r.workers.Add(1)
		go r.committer(bgctx, t)
	}
	r.workers.Add(1)
	go r.watchKafka(bgctx)

	if r.opts.UntilCaughtUp {
		lctx, lcancel := context.WithTimeout(ctx, time.Minute)
		ends, err := r.adm.ListCommittedOffsets(lctx, r.topics...)
		lcancel()
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			r.mu.Lock()
			r.stopping = true
			r.cond.Broadcast()
			r.mu.Unlock()
			bgcancel()
			r.workers.Wait()
			cl.Close()
			return fmt.Errorf("list end offsets of %v: %w", r.topics, err)
		}
		r.targets = map[tp]int64{}
		ends.Each(func(o kadm.ListedOffset) { r.targets[tp{o.Topic, o.Partition}] = o.Offset })
		r.log.Info("consuming until caught up", "partitions", len(r.targets), "end_offsets", endOffsets(r.targets))
	}
	r.log.Info("started", "group", r.cfg.Kafka.GroupID, "topics", r.topics)

	caughtUp := false
	for ctx.Err() == nil {
		pctx, cancel := context.WithDeadline(ctx, r.nextDeadline())
		r.mu.Lock()
		r.wakePoll = cancel
		if r.woken { // a commit finished since the last poll
			r.woken = false
			cancel()
		}
		r.mu.Unlock()
		fetches := cl.PollRecords(pctx, 10_000)
		r.mu.Lock()
		r.wakePoll = nil
		r.mu.Unlock()
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		r.mu.Lock()
		r.process(ctx, fetches)
		if r.fatal == nil {
			r.fatal = r.kafkaFatal()
		}
		if r.fatal == nil {
			r.maintain(ctx)
		}
		if r.fatal == nil && r.caughtUp(ctx) {
			// Cut now and go on polling: a failed commit is retried by the
			// committer and dropped buffers are read again before Run may
			// stop.
			r.cutAll(ctx)
			caughtUp = r.fatal == nil && r.caughtUp(ctx) && r.allCommitted()
		}
		fatal := r.fatal
		r.updateReady()
		r.mu.Unlock()
		cl.AllowRebalance()
		if fatal != nil || caughtUp {
			break
		}
	}
	return r.shutdown(ctx, caughtUp, bgcancel)
}

// shutdown commits everything buffered, stops the committers and leaves the
// group.
func (r *Runner) shutdown(ctx context.Context, caughtUp bool, stopCommitters context.CancelFunc) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancel()
	r.mu.Lock()
	err := r.fatal
	if err == nil {
		r.cl.PauseFetchTopics(r.topics...)
		err = r.commitAll(sctx)
	}
	r.stopping = true
	r.cond.Broadcast()
	r.mu.Unlock()
	stopCommitters()
	r.workers.Wait()
	r.mu.Lock()
	for _, t := range r.tables {
		t.upCancel()
	}
	r.commitGroupOffsets(sctx)
	for _, t := range r.tables {
		for _, s := range t.sinks() {
			s.log.WaitCheckpoints() // background checkpoints of the last commits
		}
	}
	r.closing = true
	r.updateReady()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.cl.CloseAllowingRebalance(); close(done) }()
	select {
	case <-done:
	case <-time.After(max(time.Until(deadlineOf(sctx)), 5*time.Second)):
		r.log.Warn("leaving the group took longer than the shutdown timeout")
	}
	if err != nil {
		return err
	}
	r.log.Info("stopped", "caught_up", caughtUp)
	return nil
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// nextDeadline is when the poll loop must wake up to commit.
func (r *Runner) nextDeadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := time.Now().Add(time.Second)
	for _, t := range r.tables {
		at := t.nextCommit
		if t.reg != nil && t.reg.waiting && t.reg.retryAt.Before(at) {
			at = t.reg.retryAt
		}
		if at.Before(d) {
			d = at
		}
	}
	return d
}

// process hands every polled record to its table.
func (r *Runner) process(ctx context.Context, fetches kgo.Fetches) {
	for _, t := range r.tables {
		t.skipBatch = false
		if t.reseek && !t.committing && r.fatal == nil {
			r.reseek(ctx, t) // dropped by its committer; skips this poll's records
		}
	}
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		r.noteFetchError(topic, err)
		// One WARN per partition and error; repeats log at DEBUG.
		if r.fetchLogged == nil {
			r.fetchLogged = map[tp]string{}
		}
		if k := (tp{topic, p}); r.fetchLogged[k] != err.Error() {
			r.fetchLogged[k] = err.Error()
			r.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		} else {
			r.log.Debug("fetch error", "topic", topic, "partition", p, "err", err)
		}
	})
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		ps := r.parts[tp{fp.Topic, fp.Partition}]
		if ps == nil || r.fatal != nil {
			return
		}
		for _, rec := range fp.Records {
			if ps.t.skipBatch || ps.t.reseek || r.fatal != nil {
				return
			}
			r.handle(ctx, ps, rec)
		}
		if fp.HighWatermark >= 0 {
			r.m.lag.WithLabelValues(fp.Topic, strconv.Itoa(int(fp.Partition))).Set(float64(max(0, fp.HighWatermark-ps.last-1)))
		}
	})
}

// handle writes one record to its table or dead-letter table.
func (r *Runner) handle(ctx context.Context, ps *partState, rec *kgo.Record) {
	t := ps.t
	if rec.Offset <= ps.last || rec.Offset <= ps.mainWM {
		return // already consumed or committed (a stale fetch)
	}
	t.consumed.Add(1)
	r.m.consumed.WithLabelValues(t.name).Inc()
	if !rec.Attrs.IsControl() {
		var bad error
		var payload []byte
		var err error
		if t.reg != nil {
			var wait bool
			if payload, bad, wait = r.decodeRegistry(ctx, t, rec); wait {
				return // not consumed: read again once the registry answers
			}
		} else {
			payload, err = unframe(t.cfg.Framing, rec.Value)
		}
		if err != nil {
			bad = err
		} else if bad == nil {
			err := t.main.w.Write(ctx, payload, writer.Kafka{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp})
			var de *writer.DecodeError
			switch {
			case err == nil:
			case errors.As(err, &de):
				bad = err
			default:
				r.reset(ctx, t, fmt.Errorf("write to %s: %w", t.main.uri, err))
				return
			}
		}
		if bad != nil && !r.deadLetter(ctx, ps, rec, bad) {
			return
		}
		// A large record can take the buffers over the limit before the
		// next maintain: check now (summing the buffers is too costly per
		// small record).
		if int64(len(rec.Value)) >= int64(r.cfg.MemoryLimit)/64 {
			r.flushOverLimit(ctx, r.heldBytes())
		}
	}
	if ps.first < 0 {
		ps.first = rec.Offset
	}
	if ps.dFirst < 0 && rec.Offset > ps.dlqWM {
		ps.dFirst = rec.Offset
	}
	ps.last = rec.Offset
}

// deadLetter writes a rejected record to the dead-letter table (unless it is
// already there); false means the record could not be handled.
func (r *Runner) deadLetter(ctx context.Context, ps *partState, rec *kgo.Record, bad error) bool {
	t := ps.t
	if t.dlq == nil {
		r.fatal = fmt.Errorf("table %s: record %s/%d@%d cannot be decoded and dead_letter is disabled: %w", t.name, rec.Topic, rec.Partition, rec.Offset, bad)
		return false
	}
	if rec.Offset <= ps.dlqWM {
		return true // committed to the dead-letter table before a crash
	}
	d := deadLetter{value: rec.Value, key: rec.Key, err: bad.Error(), byteOffset: -1, message: t.main.pin.Message, fingerprint: t.main.pin.Fingerprint, table: t.name}
	var de *writer.DecodeError
	if errors.As(bad, &de) {
		d.fieldPath, d.byteOffset = de.Path, int64(de.Offset)
	}
	r.dlqBuf = appendDeadLetter(r.dlqBuf[:0], &d)
	if err := t.dlq.w.Write(ctx, r.dlqBuf, writer.Kafka{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}); err != nil {
		r.reset(ctx, t, fmt.Errorf("write to %s: %w", t.dlq.uri, err))
		return false
	}
	ps.dead = true
	r.m.deadLetters.WithLabelValues(t.name).Inc()
	r.log.Debug("dead letter", "table", t.name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", bad)
	return true
}

// maintain flushes expired buffers, enforces the memory limit and cuts the
// tables that are due for their committers.
func (r *Runner) maintain(ctx context.Context) {
	now := time.Now()
	r.registryRetry(now)
	var total int64
	for _, t := range r.tables {
		for _, s := range t.sinks() {
			if err := s.w.FlushExpired(ctx); err != nil {
				r.reset(ctx, t, fmt.Errorf("flush %s: %w", s.uri, err))
				break
			}
			s.files = append(s.files, s.w.TakeFinished()...)
		}
		b := t.buffered()
		total += b
		r.m.buffered.WithLabelValues(t.name).Set(float64(b))
		r.m.uploading.WithLabelValues(t.name).Set(float64(t.uploading.Load()))
	}
	// Files waiting for their upload count against the limit too.
	uploading := r.inflight.Load()
	total += uploading
	total = r.flushOverLimit(ctx, total)
	for _, t := range r.tables {
		// A finished file is cut at once only when the committer is free:
		// while it commits, files gather and go in the next commit.
		files := len(t.main.files) > 0 || (t.dlq != nil && len(t.dlq.files) > 0)
		if now.After(t.nextCommit) || (files && t.idle() && !t.failing) {
			_ = r.cut(ctx, t)
		}
	}
	// Backpressure: a table that cannot commit stops fetching once the
	// memory limit is reached, and resumes after a successful commit; every
	// table stops while the files waiting for upload hold more than half
	// of the limit (the store is slower than Kafka).
	limit := int64(r.cfg.MemoryLimit)
	over := total > limit
	clogged := uploading > limit/2
	for _, t := range r.tables {
		stop := (t.failing && over) || clogged
		switch {
		case stop && !t.paused:
			r.log.Warn("pausing fetches", "table", t.name, "buffered", t.buffered(), "uploading", uploading, "commit_failing", t.failing, "memory_limit", r.cfg.MemoryLimit)
			r.cl.PauseFetchTopics(t.cfg.Topics...)
			t.paused = true
			r.m.paused.WithLabelValues(t.name).Set(1)
		case t.paused && !stop:
			r.cl.ResumeFetchTopics(t.cfg.Topics...)
			t.paused = false
			r.m.paused.WithLabelValues(t.name).Set(0)
		}
	}
}

// flushOverLimit flushes the largest healthy buffers, main and dead-letter
// alike, to files (committed by the next cut) while total, the bytes held
// against the memory limit, is over it, down to three quarters of it. It
// returns the new total.
func (r *Runner) flushOverLimit(ctx context.Context, total int64) int64 {
	limit := int64(r.cfg.MemoryLimit)
	if total <= limit {
		return total
	}
	for _, t := range r.tables {
		for _, s := range t.sinks() {
			if t.failing || total <= limit*3/4 {
				continue
			}
			b := s.w.BufferedBytes()
			target := max(0, b-(total-limit*3/4))
			if err := s.w.FlushLargest(ctx, target); err != nil {
				r.reset(ctx, t, fmt.Errorf("flush %s: %w", s.uri, err))
				break
			}
			total -= b - s.w.BufferedBytes()
			s.files = append(s.files, s.w.TakeFinished()...)
		}
	}
	return total
}

// heldBytes is what counts against the memory limit: every table's buffers
// and the files waiting for their upload.
func (r *Runner) heldBytes() int64 {
	total := r.inflight.Load()
	for _, t := range r.tables {
		total += t.buffered()
	}
	return total
}

func (t *table) sinks() []*sink {
	if t.dlq == nil {
		return []*sink{t.main}
	}
	return []*sink{t.main, t.dlq}
}

func (t *table) buffered() int64 {
	var b int64
	for _, s := range t.sinks() {
		b += s.w.BufferedBytes()
	}
	return b
}

// partsOf returns the assigned partitions of t, sorted.
func (r *Runner) partsOf(t *table) []*partState {
	var ps []*partState
	for _, p := range r.parts {
		if p.t == t {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *partState) int {
		if a.tp.topic != b.tp.topic {
			if a.tp.topic < b.tp.topic {
				return -1
			}
			return 1
		}
		return int(a.tp.part - b.tp.part)
	})
	return ps
}

// commitAll cuts every table and waits until everything is committed,
// the committers retrying failed commits, until ctx ends. r.mu is held.
func (r *Runner) commitAll(ctx context.Context) error {
	r.cutAll(ctx)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(r.cfg.ShutdownTimeout)
	}
	for {
		busy := r.waitIdle(r.tables, deadline)
		if r.fatal != nil {
			return r.fatal
		}
		if len(busy) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			t := busy[0]
			return fmt.Errorf("commit %s before stopping: not done within %v (the uncommitted records will be read again)", t.name, r.cfg.ShutdownTimeout)
		}
		// A table is failing: its committer retries; wait for it.
		r.waitChange(min(time.Second, time.Until(deadline)))
	}
}

// waitChange waits (r.mu held, released meanwhile) for a broadcast or d.
func (r *Runner) waitChange(d time.Duration) {
	timer := time.AfterFunc(d, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	r.cond.Wait()
	timer.Stop()
}

// errReset reports that a table's buffers were dropped instead of committed.
var errReset = errors.New("buffers dropped")

// committed records a successful commit in metrics, logs and the hook.
func (r *Runner) committed(t *table, s *sink, dead bool, res commitResult, ranges []commitlog.OffsetRange, start time.Time) {
	d := time.Since(start)
	r.m.commits.WithLabelValues(s.name).Inc()
	r.m.rows.WithLabelValues(s.name).Add(float64(res.rows))
	r.m.bytes.WithLabelValues(s.name).Add(float64(res.bytes))
	r.m.files.WithLabelValues(s.name).Add(float64(res.files))
	r.m.commitLatency.WithLabelValues(s.name).Observe(d.Seconds())
	r.m.version.WithLabelValues(s.name).Set(float64(res.version))
	r.m.lastCommit.WithLabelValues(s.name).SetToCurrentTime()
	if res.checkpointErr != nil {
		r.log.Warn("checkpoint failed (the commit stands)", "table", s.name, "version", res.version, "err", res.checkpointErr)
	}
	r.log.Info("committed", "table", s.name, "version", res.version, "rows", res.rows, "files", res.files, "bytes", res.bytes,
		"partitions", len(ranges), "evolved", res.evolved, "resolved_ambiguous", res.alreadyThere, "duration", d)
	if r.opts.OnCommit != nil {
		r.opts.OnCommit(CommitEvent{Table: t.name, DeadLetter: dead, Version: res.version, Rows: res.rows, Files: res.files, Bytes: res.bytes,
			Offsets: ranges, Evolved: res.evolved, Duration: d})
	}
}

// commitFailed handles a failed commit of sink s of table t: fenced (another
// instance committed one of its partitions) or a table whose rows cannot be
// kept → drop the buffers and re-read; anything else → keep the batch (true)
// and retry with backoff. Called by the committer, with r.mu held.
func (r *Runner) commitFailed(ctx context.Context, t *table, s *sink, err error) bool {
	switch {
	case errors.Is(err, commitlog.ErrFenced):
		r.m.conflicts.WithLabelValues(s.name).Inc()
		r.drop(t, err)
		return false
	case errors.Is(err, commitlog.ErrAmbiguousCommit):
		// It may have landed: retrying could commit the rows twice, and
		// keeping the buffers past it could drop later ones. Re-read from
		// the watermarks instead (if they cannot be read now, a stale one
		// leads to a fence and another reset, never to a duplicate).
		r.m.retries.WithLabelValues(s.name).Inc()
		r.drop(t, err)
		return false
	case errors.Is(err, commitlog.ErrUnsupportedProtocol), errors.As(err, new(*schema.IncompatibleError)):
		r.fatal = err
		return false
	}
	r.m.retries.WithLabelValues(s.name).Inc()
	if !t.failing {
		t.failingSince = time.Now()
		// One WARN per episode; the retries log at DEBUG.
		r.log.Warn("commit failed; keeping the files and retrying", "table", s.name, "err", err)
	} else {
		r.log.Debug("commit failed again", "table", s.name, "retry_in", t.backoff, "err", err)
	}
	t.failing = true
	t.backoff = min(max(2*t.backoff, 200*time.Millisecond), 30*time.Second)
	t.retryAt = time.Now().Add(t.backoff)
	return true
}

// reset drops every buffered row and uncommitted file of t and seeks its
// partitions back to their watermarks, re-read from the table: the records
// are consumed again and nothing is committed twice. Only the poll loop and
// the rebalance callbacks (which run while it does not poll) may call it:
// franz-go's SetOffsets must not race a poll. r.mu is held.
func (r *Runner) reset(ctx context.Context, t *table, why error) {
	r.drop(t, why)
	if !t.committing && r.fatal == nil {
		r.reseek(ctx, t)
	}
}

// drop drops every buffered row, uncommitted file and batch of t and marks
// its partitions for a reseek, which the poll loop does once no commit of t
// is running (a running one may still land); until then their records are
// skipped. r.mu is held.
func (r *Runner) drop(t *table, why error) {
	r.log.Warn("dropping buffered rows; re-reading from the table's watermarks", "table", t.name, "reason", why)
	r.m.resets.WithLabelValues(t.name).Inc()
	t.skipBatch = true
	t.failing, t.backoff = false, 0
	if t.reg != nil {
		clear(t.reg.ids)
	}
	t.gen++
	t.pending = nil
	t.upCancel()
	t.upCtx, t.upCancel = context.WithCancel(context.Background())
	for _, s := range t.sinks() {
		s.up.drop()
		if err := s.resetWriter(); err != nil {
			r.fatal = err
			return
		}
	}
	for _, p := range r.partsOf(t) {
		p.first, p.dFirst, p.dead = -1, -1, false
	}
	t.reseek = true
	r.cond.Broadcast()
}

// reseek re-reads t's watermarks and seeks its partitions to them. r.mu is
// held.
func (r *Runner) reseek(ctx context.Context, t *table) {
	t.reseek = false
	t.skipBatch = true // the records polled so far are from before the seek
	parts := r.partsOf(t)
	if len(parts) == 0 {
		return
	}
	// Fresh watermarks: another instance may have committed. When the table
	// cannot be read, the known ones stay (a stale one only causes another
	// fence and reset).
	var msnap, dsnap *commitlog.Snapshot
	msnap, _ = t.main.log.Snapshot(ctx)
	if t.dlq != nil {
		dsnap, _ = t.dlq.log.Snapshot(ctx)
	}
	seeks := map[string]map[int32]kgo.EpochOffset{}
	for _, p := range parts {
		app := commitlog.KafkaAppID(r.cfg.Kafka.GroupID, p.tp.topic, p.tp.part)
		if msnap != nil {
			if v, ok := msnap.TxnVersion(app); ok {
				p.mainWM = v
			}
		}
		if dsnap != nil {
			if v, ok := dsnap.TxnVersion(app); ok {
				p.dlqWM = v
			}
		}
		p.first, p.dFirst, p.dead = -1, -1, false
		p.last = p.seek() - 1
		if seeks[p.tp.topic] == nil {
			seeks[p.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		seeks[p.tp.topic][p.tp.part] = kgo.EpochOffset{Epoch: -1, Offset: p.seek()}
	}
	r.cl.SetOffsets(seeks)
}

// allCommitted reports whether nothing consumed is waiting for a commit.
func (r *Runner) allCommitted() bool {
	for _, t := range r.tables {
		if t.failing || !t.idle() || t.reseek || len(t.main.files) > 0 || (t.dlq != nil && len(t.dlq.files) > 0) {
			return false
		}
	}
	for _, p := range r.parts {
		if p.first >= 0 || p.dead {
			return false
		}
	}
	return true
}

// caughtUp reports, with UntilCaughtUp, whether every partition of the
// topics reached the end offset seen at start: an assigned one by what this
// Runner consumed, any other by its table's watermark (committed by another
// instance, or by a previous run). Partitions a dead member still holds in
// the group are therefore waited for, not skipped.
func (r *Runner) caughtUp(ctx context.Context) bool {
	if !r.opts.UntilCaughtUp {
		return false
	}
	done := func() bool {
		for k, target := range r.targets {
			if target <= 0 {
				continue
			}
			if p := r.parts[k]; p != nil {
				if p.last+1 < target {
					return false
				}
				continue
			}
			if wm, ok := r.wmCache[k]; !ok || wm+1 < target {
				return false
			}
		}
		return true
	}
	if done() {
		return true
	}
	if time.Since(r.wmCheckedAt) < time.Second {
		return false
	}
	// Re-read the watermarks of the partitions this Runner does not hold.
	r.wmCheckedAt = time.Now()
	if r.wmCache == nil {
		r.wmCache = map[tp]int64{}
	}
	snaps := map[*table]*commitlog.Snapshot{}
	for k := range r.targets {
		if r.parts[k] != nil {
			continue
		}
		t := r.byTopic[k.topic]
		if t == nil {
			continue
		}
		snap, ok := snaps[t]
		if !ok {
			var err error
			if snap, err = t.main.log.Update(ctx, r.wmSnaps[t]); err != nil {
				r.log.Warn("read watermarks", "table", t.name, "err", err)
				return false
			}
			snaps[t] = snap
			if r.wmSnaps == nil {
				r.wmSnaps = map[*table]*commitlog.Snapshot{}
			}
			r.wmSnaps[t] = snap
		}
		if v, ok := snap.TxnVersion(commitlog.KafkaAppID(r.cfg.Kafka.GroupID, k.topic, k.part)); ok {
			r.wmCache[k] = v
		}
	}
	return done()
}

// adjustOffsets replaces the group's committed offsets of newly assigned
// partitions with the tables' watermarks + 1, or the configured start.
func (r *Runner) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	select {
	case <-r.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	snaps := map[*sink]*commitlog.Snapshot{}
	snapOf := func(s *sink) (*commitlog.Snapshot, error) {
		if snap, ok := snaps[s]; ok {
			return snap, nil
		}
		snap, err := s.log.Snapshot(ctx)
		if err != nil {
			return nil, fmt.Errorf("read watermarks of %s: %w", s.uri, err)
		}
		snaps[s] = snap
		return snap, nil
	}
	var states []*partState
	var needStart []string
	for topic, parts := range offsets {
		t := r.byTopic[topic]
		if t == nil {
			continue
		}
		for part := range parts {
			p := &partState{t: t, tp: tp{topic, part}, mainWM: -1, dlqWM: -1, start: -1, first: -1, dFirst: -1}
			app := commitlog.KafkaAppID(r.cfg.Kafka.GroupID, topic, part)
			snap, err := snapOf(t.main)
			if err != nil {
				r.log.Error("cannot read a table on assignment; rejoining", "table", t.name, "err", err)
				return nil, err
			}
			if v, ok := snap.TxnVersion(app); ok {
				p.mainWM = v
			}
			if t.dlq != nil {
				dsnap, err := snapOf(t.dlq)
				if err != nil {
					r.log.Error("cannot read a table on assignment; rejoining", "table", t.dlq.name, "err", err)
					return nil, err
				}
				if v, ok := dsnap.TxnVersion(app); ok {
					p.dlqWM = v
				}
			}
			if p.mainWM < 0 && !slices.Contains(needStart, topic) {
				needStart = append(needStart, topic)
			}
			states = append(states, p)
		}
	}
	if len(needStart) > 0 {
		starts, err := r.startOffsets(ctx, needStart)
		if err != nil {
			r.log.Error("cannot list start offsets on assignment; rejoining", "err", err)
			return nil, err
		}
		for _, p := range states {
			if p.mainWM < 0 {
				o, ok := starts[p.tp]
				if !ok {
					return nil, fmt.Errorf("no start offset listed for %s/%d", p.tp.topic, p.tp.part)
				}
				p.start = o
			}
		}
	}
	r.warnExpired(ctx, states)
	out := make(map[string]map[int32]kgo.Offset, len(offsets))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range states {
		p.last = p.seek() - 1
		r.parts[p.tp] = p
		if out[p.tp.topic] == nil {
			out[p.tp.topic] = map[int32]kgo.Offset{}
		}
		out[p.tp.topic][p.tp.part] = kgo.NewOffset().At(p.seek()).WithEpoch(-1)
		r.log.Info("assigned", "table", p.t.name, "topic", p.tp.topic, "partition", p.tp.part, "offset", p.seek(), "watermark", p.mainWM, "dlq_watermark", p.dlqWM)
	}
	return out, nil
}

// warnExpired logs a WARN for each newly assigned partition whose table
// watermark is below the partition's log start: Kafka deleted the offsets in
// between (retention) before they were committed, so they are lost and the
// partition resumes at the log start (franz-go itself logs this only at
// INFO). A failed listing only skips the check.
func (r *Runner) warnExpired(ctx context.Context, states []*partState) {
	var topics []string
	for _, p := range states {
		if p.mainWM >= 0 && !slices.Contains(topics, p.tp.topic) {
			topics = append(topics, p.tp.topic)
		}
	}
	if len(topics) == 0 {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second) // never holds up the rebalance for long
	defer cancel()
	listed, err := r.adm.ListStartOffsets(lctx, topics...)
	if err != nil {
		r.log.Debug("list log start offsets (retention check)", "topics", topics, "err", err)
		return
	}
	for _, p := range states {
		o, ok := listed.Lookup(p.tp.topic, p.tp.part)
		if p.mainWM < 0 || !ok || o.Err != nil || o.Offset <= p.mainWM+1 {
			continue
		}
		lost := o.Offset - p.mainWM - 1
		r.m.expired.WithLabelValues(p.t.name).Add(float64(lost))
		r.log.Warn("Kafka deleted records before they were committed (retention): they are lost; resuming at the log start",
			"table", p.t.name, "topic", p.tp.topic, "partition", p.tp.part, "watermark", p.mainWM,
			"log_start", o.Offset, "first_lost", p.mainWM+1, "last_lost", o.Offset-1, "lost_offsets", lost)
	}
}

// startOffsets resolves kafka.start_offset for the topics' partitions.
func (r *Runner) startOffsets(ctx context.Context, topics []string) (map[tp]int64, error) {
	var (
		listed kadm.ListedOffsets
		err    error
	)
	switch so := r.cfg.Kafka.StartOffset; so {
	case "earliest":
		listed, err = r.adm.ListStartOffsets(ctx, topics...)
	case "latest":
		listed, err = r.adm.ListEndOffsets(ctx, topics...)
	default:
		ts, perr := time.Parse(time.RFC3339, so)
		if perr != nil {
			return nil, fmt.Errorf("kafka.start_offset: %w", perr)
		}
		listed, err = r.adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), topics...)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list %s offsets: %w", r.cfg.Kafka.StartOffset, err)
	}
	out := map[tp]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[tp{o.Topic, o.Partition}] = o.Offset })
	return out, nil
}

func (r *Runner) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-r.started
	r.mu.Lock()
	r.joined = true
	r.updateReady()
	r.mu.Unlock()
	r.groupJoined()
	r.log.Debug("partitions assigned", "partitions", assigned)
}

// onRevoked commits the tables of the revoked partitions before they are
// released; if that fails their buffers are dropped (the next owner reads
// the records from the watermarks): never half of both.
func (r *Runner) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-r.started
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(revoked) == 0 {
		return
	}
	r.log.Info("partitions revoked", "partitions", revoked)
	affected := map[*table]bool{}
	for topic := range revoked {
		if t := r.byTopic[topic]; t != nil {
			affected[t] = true
		}
	}
	// The group waits rebalance_timeout for every member: commit within
	// most of it, and keep the rest for leaving the partitions.
	budget := min(r.cfg.ShutdownTimeout, r.cfg.Kafka.RebalanceTimeout*3/4)
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var ts []*table
	for _, t := range r.tables {
		if affected[t] {
			_ = r.cut(cctx, t)
			ts = append(ts, t)
		}
	}
	start := time.Now()
	failed := r.waitIdle(ts, start.Add(budget))
	gctx, gcancel := context.WithTimeout(ctx, r.cfg.Kafka.RebalanceTimeout/8)
	r.commitGroupOffsets(gctx)
	gcancel()
	r.forget(revoked)
	for _, t := range failed {
		why := "not committed within the rebalance budget"
		if t.failing {
			why = "commit failed"
		}
		r.reset(cctx, t, fmt.Errorf("partitions revoked: %s (%v)", why, time.Since(start).Round(time.Millisecond)))
	}
}

// onLost drops the buffers of the tables whose partitions were lost (the
// group moved on without us): whatever we hold may be committed by another
// instance now.
func (r *Runner) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-r.started
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Warn("partitions lost", "partitions", lost)
	r.joined = false
	r.updateReady()
	affected := map[*table]bool{}
	for topic := range lost {
		if t := r.byTopic[topic]; t != nil {
			affected[t] = true
		}
	}
	r.forget(lost)
	for _, t := range r.tables {
		if affected[t] {
			r.reset(ctx, t, errors.New("partitions lost"))
		}
	}
}

// commitGroupOffsets commits the group offsets of every assigned partition
// (its table watermark + 1) and waits: before leaving the group or releasing
// partitions. They are for lag monitoring only.
func (r *Runner) commitGroupOffsets(ctx context.Context) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for k, p := range r.parts {
		if p.mainWM < 0 {
			continue
		}
		if offsets[k.topic] == nil {
			offsets[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[k.topic][k.part] = kgo.EpochOffset{Epoch: -1, Offset: p.mainWM + 1}
	}
	if len(offsets) == 0 {
		return
	}
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			r.log.Warn("commit group offsets (monitoring only)", "err", err)
		}
	})
}

func (r *Runner) forget(parts map[string][]int32) {
	for topic, ps := range parts {
		for _, p := range ps {
			delete(r.parts, tp{topic, p})
			r.m.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
}

// endOffsets renders the caught-up targets for the log, sorted:
// "topic/0=125 topic/1=98".
func endOffsets(targets map[tp]int64) string {
	keys := make([]tp, 0, len(targets))
	for k := range targets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b tp) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.part - b.part)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s/%d=%d", k.topic, k.part, targets[k])
	}
	return strings.Join(parts, " ")
}
