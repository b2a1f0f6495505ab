package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/open"
	"github.com/protolake/protolake/writer"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
	kopts   []kgo.Opt   // built (and their files read) by NewRunner, before any write
	fetch   *fetchSizer // sizes the client's fetches (a hook in kopts)

	// mu guards the fields from cl to woken (cl and adm are set once, in
	// Run, before started is closed), the table fields from nextCommit to
	// upCancel, every partState, and the sinks except what their commit
	// uses (see sink). The fields above mu are set by NewRunner and only
	// read afterwards; the rest are atomic, channels, or have their own
	// lock (kafka, table.health, the uploaders).
	//
	// Three kinds of goroutine take it: the poll loop, each table's
	// committer (which commits without it: sink.commit), and franz-go's
	// rebalance callbacks. The poll loop processes a poll's records with
	// it held, then calls AllowRebalance. It relies on franz-go's
	// BlockRebalanceOnPoll rule: no OnPartitions{Assigned,Revoked,Lost}
	// callback runs between a poll's return and AllowRebalance, and no poll
	// starts while a callback runs. So the partitions do not change while a
	// poll's records are processed, and SetOffsets (reset, reseek) is never
	// called during a poll. adjustOffsets, which is not gated, reads the
	// tables without mu and takes it only to add the new partitions.
	mu      sync.Mutex
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
	fatal   error // the error Run stops on; set only by stop
	dlqBuf  []byte
	dec     decodeBatch // the poll's records of the tables decoded in parallel (decode.go)

	// cond (on mu) is broadcast when a batch is cut or committed, a table
	// is reset, or the committers are told to stop.
	cond     *sync.Cond
	stopping bool               // committers stop
	wakePoll context.CancelFunc // ends the running poll early (a commit finished), nil between polls
	woken    bool               // a commit finished between polls: do not block in the next one
	workers  sync.WaitGroup     // a committer per table, and watchKafka; not guarded by mu

	kafka       kafkaHealth
	fetchLogged map[tp]string // the last fetch error logged per partition; poll loop only

	uploadSlots chan struct{} // Storage.MaxUploads
	inflight    atomic.Int64  // bytes of data files not uploaded yet
	held        atomic.Int64  // heldBytes at maintain's last pass, for HeldBytes

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

	// Guarded by Runner.mu from here to upCancel.
	nextCommit   time.Time
	failing      bool // the last commit failed; retried with backoff
	failingSince time.Time
	backoff      time.Duration
	retryAt      time.Time
	paused       bool
	skipBatch    bool // buffers dropped while processing this poll: skip its remaining records

	// The pipeline (pipeline.go).
	pending    *batch // cut, not taken by the committer yet
	committing bool   // the committer is committing a batch
	gen        int64  // bumped by reset: batches of an older generation are void
	reseek     bool   // reset while committing: re-read the watermarks when it is done
	upCtx      context.Context
	upCancel   context.CancelFunc

	uploading      atomic.Int64 // bytes of the table's data files not uploaded yet
	uploadsFailing atomic.Int64 // uploads of the table retrying after a failure

	version, rows, dead, commits, consumed atomic.Int64
	consumedMetric                         prometheus.Counter // r.m.consumed of the table, looked up once
}

// countConsumed counts one record consumed (handled or skipped as a
// control record) in Stats and in the metrics.
func (t *table) countConsumed() {
	t.consumed.Add(1)
	t.consumedMetric.Inc()
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
	t := &table{cfg: tc, name: tc.Name, consumedMetric: r.m.consumed.WithLabelValues(tc.Name)}
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
	t.main.shards = decoders(&r.cfg, tc)
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
