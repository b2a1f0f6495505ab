package commitlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/protolake/protolake/storage"
)

// Operation names written to commitInfo.operation.
const (
	OpStreamingUpdate = "STREAMING UPDATE"
	OpWrite           = "WRITE"
	OpOptimize        = "OPTIMIZE"
	OpSetProperties   = "SET TBLPROPERTIES"
	OpChangeMetadata  = "CHANGE COLUMN"
)

// KafkaAppID is the txn appId protolake uses for one Kafka partition:
// "protolake:<group>:<topic>:<partition>".
func KafkaAppID(group, topic string, partition int32) string {
	return "protolake:" + group + ":" + topic + ":" + strconv.FormatInt(int64(partition), 10)
}

// Transaction stages actions against a snapshot and commits them
// optimistically. Build it with Table.NewTransaction; it is not safe for
// concurrent use, and is committed at most once.
type Transaction struct {
	table    *Table
	read     *Snapshot
	txnID    string
	op       string
	params   map[string]any
	metrics  map[string]string
	adds     []Add
	removes  []Remove
	txns     map[string]int64 // appId → version
	firsts   map[string]int64 // appId → first offset (fencing)
	offsets  []OffsetRange
	metadata *Metadata
	done     bool
}

// NewTransaction starts a transaction that reads snapshot snap (the caller
// decides what the commit is based on). snap must not be nil.
func (t *Table) NewTransaction(snap *Snapshot) *Transaction {
	return &Transaction{
		table:  t,
		read:   snap,
		txnID:  uuid.NewString(),
		op:     OpWrite,
		txns:   map[string]int64{},
		firsts: map[string]int64{},
	}
}

// TxnID is the commit's identity, written to commitInfo.txnId.
func (tx *Transaction) TxnID() string { return tx.txnID }

// ReadVersion is the version of the snapshot the transaction read.
func (tx *Transaction) ReadVersion() int64 { return tx.read.Version() }

// SetOperation sets commitInfo.operation and operationParameters (default
// "WRITE", none).
func (tx *Transaction) SetOperation(op string, params map[string]any) {
	tx.op, tx.params = op, params
}

// SetMetrics sets commitInfo.operationMetrics.
func (tx *Transaction) SetMetrics(m map[string]string) { tx.metrics = m }

// Add stages data files. A zero ModificationTime is set to now; a missing
// protolake.proto.fingerprint tag is taken from the table's pin.
func (tx *Transaction) Add(files ...Add) { tx.adds = append(tx.adds, files...) }

// Remove stages removal of files, which must be active in the read snapshot.
// A nil DeletionTimestamp is set to now.
func (tx *Transaction) Remove(files ...Remove) { tx.removes = append(tx.removes, files...) }

// AddKafkaOffsets records that this commit holds offsets r.First..r.Last of
// one Kafka partition consumed by group: it stages the txn for
// KafkaAppID(group, r.Topic, r.Partition) at r.Last and lists the range in
// commitInfo.kafkaOffsets. Committing fails with ErrFenced when the table's
// watermark for that appId is already >= r.First (those offsets are
// committed) or a concurrent commit moves it.
func (tx *Transaction) AddKafkaOffsets(group string, r OffsetRange) {
	id := KafkaAppID(group, r.Topic, r.Partition)
	tx.txns[id] = r.Last
	tx.firsts[id] = r.First
	tx.offsets = append(tx.offsets, r)
}

// UpdateMetadata stages a new metaData action (schema evolution, a new proto
// pin, new properties). Its ID must stay the table's ID.
func (tx *Transaction) UpdateMetadata(md Metadata) { tx.metadata = &md }

// CommitResult describes a successful commit.
type CommitResult struct {
	// Version is the version the commit landed at.
	Version int64
	// Attempts is how many log writes were tried.
	Attempts int
	// AlreadyCommitted is true when the commit was found in the log by its
	// txnId after an ambiguous write or conflict, not written by the final
	// attempt.
	AlreadyCommitted bool
	// Checkpointed is true when a checkpoint was written for Version.
	Checkpointed bool
	// CheckpointStarted is true when a checkpoint for Version is being
	// written in the background (Config.BackgroundCheckpoints).
	CheckpointStarted bool
	// CheckpointErr is a failure writing the checkpoint or cleaning the log
	// after the commit; the commit itself succeeded.
	CheckpointErr error
	// Snapshot is the table at Version, built from the read snapshot, the
	// concurrent commits read while retrying and this commit's own actions
	// without reading the log again; nil when a version in between was not
	// read (then Table.Update on the read snapshot gets it). A writer that
	// commits in a loop passes it to its next NewTransaction: a commit then
	// costs one log write, whatever the size of the table.
	Snapshot *Snapshot
}

// FencedError reports that another writer committed a txn for one of this
// transaction's appIds.
type FencedError struct {
	// AppID is the contested application id.
	AppID string
	// Committed is the version the other writer committed for AppID.
	Committed int64
	// AtVersion is the table version holding that txn (-1 if it was
	// already in the read snapshot).
	AtVersion int64
}

// Error names the appId and the other writer's version.
func (e *FencedError) Error() string {
	return fmt.Sprintf("txn appId %q: another writer committed version %d (table version %d); this writer no longer owns it",
		e.AppID, e.Committed, e.AtVersion)
}

// Is makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// isBlindAppend: the commit only adds files and reads nothing.
func (tx *Transaction) isBlindAppend() bool {
	return len(tx.removes) == 0 && tx.metadata == nil
}

// validate checks the staged actions against the read snapshot.
func (tx *Transaction) validate() error {
	s := tx.read
	if err := CheckWritable(s.Protocol(), s.Metadata()); err != nil {
		return err
	}
	md := s.Metadata()
	if tx.metadata != nil {
		if tx.metadata.ID != md.ID {
			return fmt.Errorf("metadata update changes the table id from %q to %q", md.ID, tx.metadata.ID)
		}
		if err := CheckWritable(s.Protocol(), *tx.metadata); err != nil {
			return err
		}
		names, err := SchemaFieldNames(tx.metadata.SchemaString)
		if err != nil {
			return fmt.Errorf("metadata update: %w", err)
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		for _, c := range tx.metadata.PartitionColumns {
			if !have[c] {
				return fmt.Errorf("metadata update: partition column %q is not a top-level column of the schema", c)
			}
		}
		md = *tx.metadata
	}
	if len(tx.removes) > 0 && md.Configuration[PropAppendOnly] == "true" {
		return fmt.Errorf("table is append-only (%s=true): refusing to remove %d files", PropAppendOnly, len(tx.removes))
	}
	for _, a := range tx.adds {
		if a.Path == "" {
			return errors.New("add without a path")
		}
		if err := checkFilePath(a.Path); err != nil {
			return fmt.Errorf("add: %w", err)
		}
		if len(a.PartitionValues) != len(md.PartitionColumns) {
			return fmt.Errorf("add %s: partition values %v do not match partition columns %v", a.Path, keys(a.PartitionValues), md.PartitionColumns)
		}
		for _, c := range md.PartitionColumns {
			if _, ok := a.PartitionValues[c]; !ok {
				return fmt.Errorf("add %s: no value for partition column %q", a.Path, c)
			}
		}
	}
	for _, r := range tx.removes {
		if !s.HasFile(r.Path) {
			return fmt.Errorf("remove %s: not an active file at version %d: %w", r.Path, s.Version(), ErrConflict)
		}
	}
	for id, v := range tx.txns {
		if cur, ok := s.TxnVersion(id); ok {
			if cur >= v || cur >= tx.firsts[id] {
				return &FencedError{AppID: id, Committed: cur, AtVersion: -1}
			}
		}
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// actions renders the commit's actions.
func (tx *Transaction) actions(now time.Time) []Action {
	ms := now.UnixMilli()
	rv := tx.read.Version()
	blind := tx.isBlindAppend()
	ci := CommitInfo{
		Timestamp:           ms,
		Operation:           tx.op,
		OperationParameters: stringParams(tx.params),
		ReadVersion:         &rv,
		IsolationLevel:      "Serializable",
		IsBlindAppend:       &blind,
		OperationMetrics:    tx.metrics,
		EngineInfo:          tx.table.cfg.EngineInfo,
		TxnID:               tx.txnID,
		KafkaOffsets:        tx.offsets,
	}
	if ci.OperationMetrics == nil {
		ci.OperationMetrics = defaultMetrics(tx.adds, tx.removes)
	}
	out := []Action{{CommitInfo: &ci}}
	if tx.metadata != nil {
		md := *tx.metadata
		out = append(out, Action{Metadata: &md})
	}
	ids := keys(tx.txns)
	sortStrings(ids)
	for _, id := range ids {
		lu := ms
		out = append(out, Action{Txn: &Txn{AppID: id, Version: tx.txns[id], LastUpdated: &lu}})
	}
	fp := PinOf(tx.read.Metadata()).Fingerprint
	if tx.metadata != nil {
		fp = PinOf(*tx.metadata).Fingerprint
	}
	for _, r := range tx.removes {
		r := r
		if r.DeletionTimestamp == nil {
			r.DeletionTimestamp = &ms
		}
		out = append(out, Action{Remove: &r})
	}
	for _, a := range tx.adds {
		a := a
		if a.ModificationTime == 0 {
			a.ModificationTime = ms
		}
		if fp != "" && a.Tags[TagProtoFingerprint] == "" {
			tags := map[string]string{TagProtoFingerprint: fp}
			for k, v := range a.Tags {
				tags[k] = v
			}
			a.Tags = tags
		}
		out = append(out, Action{Add: &a})
	}
	return out
}

// stringParams renders operationParameters the way Spark does: every value
// a string (non-strings JSON-encoded), since Spark reads them as a
// Map[String, String].
func stringParams(p map[string]any) map[string]any {
	if p == nil {
		return nil
	}
	out := make(map[string]any, len(p))
	for k, v := range p {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(fmt.Sprint(v))
		}
		out[k] = string(b)
	}
	return out
}

func defaultMetrics(adds []Add, removes []Remove) map[string]string {
	var bytes int64
	var rows int64
	rowsKnown := true
	for _, a := range adds {
		bytes += a.Size
		if n, ok := statsNumRecords(a.Stats); ok {
			rows += n
		} else {
			rowsKnown = false
		}
	}
	m := map[string]string{
		"numFiles":        strconv.Itoa(len(adds)),
		"numOutputBytes":  strconv.FormatInt(bytes, 10),
		"numRemovedFiles": strconv.Itoa(len(removes)),
	}
	if rowsKnown {
		m["numOutputRows"] = strconv.FormatInt(rows, 10)
	}
	return m
}

// Commit writes the transaction as the next version, retrying after
// conflicts. A concurrent commit is judged by what it did:
//
//   - a concurrent commit carrying this TxnID means it already landed
//     (success, AlreadyCommitted);
//   - a concurrent txn for one of this commit's appIds at or above the
//     first offset staged with AddKafkaOffsets (one that committed some of
//     the same offsets) is ErrFenced;
//   - a concurrent protocol change is re-checked (ErrUnsupportedProtocol),
//     a concurrent metaData change is ErrConflict;
//   - a concurrent remove of a file this commit removes is ErrConflict;
//   - anything else (appends, compactions of other files) is retried at the
//     next version after a jittered backoff, at most Config.MaxAttempts times.
//
// An ambiguous write (storage.ErrAmbiguous) is resolved by reading the
// version back and looking for this TxnID. Until that version has been read
// back holding another writer's commit, the commit may have landed, so
// every error from then on (a failed read-back, a store or context error,
// running out of attempts) is an *AmbiguousCommitError. Any other error
// means the commit did not land: the caller may delete the files it staged.
func (tx *Transaction) Commit(ctx context.Context) (CommitResult, error) {
	if tx.done {
		return CommitResult{}, errors.New("commit: transaction already committed")
	}
	if tx.read == nil {
		return CommitResult{}, errors.New("commit: transaction has no snapshot")
	}
	if err := tx.validate(); err != nil {
		return CommitResult{}, fmt.Errorf("commit on version %d: %w", tx.read.Version(), err)
	}
	tx.done = true
	t := tx.table
	cfg := t.cfg
	own := tx.actions(cfg.Now())
	body, err := encodeActions(own)
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit: encode: %w", err)
	}
	removing := map[string]bool{}
	for _, r := range tx.removes {
		removing[decodePath(r.Path)] = true
	}
	proto, md := tx.read.Protocol(), tx.read.Metadata()
	if tx.metadata != nil {
		md = *tx.metadata
	}
	v := tx.read.Version() + 1
	// unresolved is the version of an ambiguous attempt whose outcome is
	// still unknown (-1: none). It is cleared only when that version is read
	// back holding another writer's commit; while it is set, every failure
	// is an *AmbiguousCommitError, because the commit may have landed (an
	// ambiguous write whose read-back found nothing may still land later).
	unresolved := int64(-1)
	fail := func(err error) (CommitResult, error) {
		if unresolved < 0 {
			return CommitResult{}, err
		}
		var amb *AmbiguousCommitError
		if errors.As(err, &amb) {
			return CommitResult{}, err
		}
		return CommitResult{}, &AmbiguousCommitError{Version: unresolved, TxnID: tx.txnID, Err: err}
	}
	// winners holds the other writers' commits read while retrying, so
	// that the snapshot after this commit can be built without reading
	// the log again.
	winners := map[int64][]Action{}
	done := func(at int64, attempt int, already bool) (CommitResult, error) {
		return tx.finish(ctx, at, attempt, already, tx.after(at, winners, own)), nil
	}
	var lastErr error
	for attempt := 1; attempt <= cfg.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("commit version %d: %w", v, err))
		}
		if attempt > 1 {
			if err := sleepBackoff(ctx, cfg, attempt-1); err != nil {
				return fail(fmt.Errorf("commit version %d: %w", v, err))
			}
		}
		err := t.store.PutIfAbsent(ctx, CommitKey(v), bytes.NewReader(body))
		if errors.Is(err, storage.ErrAmbiguous) {
			unresolved = v
			exists, landed, rerr := t.commitState(ctx, v, tx.txnID)
			switch {
			case rerr != nil:
				cfg.Logger.Warn("ambiguous commit, read-back failed", "version", v, "txnId", tx.txnID, "err", rerr)
				// A later attempt at the same version resolves it: if ours
				// landed, the put fails with ErrExist and we find our txnId.
				lastErr = &AmbiguousCommitError{Version: v, TxnID: tx.txnID, Err: rerr}
				continue
			case landed:
				return done(v, attempt, true)
			case !exists:
				// Not written (yet): try the same version again.
				lastErr = &AmbiguousCommitError{Version: v, TxnID: tx.txnID, Err: err}
				continue
			}
			// Another writer's commit holds v: ours cannot land there.
			unresolved = -1
			err = storage.ErrExist
		}
		if err == nil {
			return done(v, attempt, false)
		}
		if !errors.Is(err, storage.ErrExist) {
			return fail(fmt.Errorf("commit version %d: %w", v, err))
		}
		// Lost the race: examine every winning commit from v on.
		next, ours, cerr := tx.checkWinners(ctx, v, removing, &proto, &md, &unresolved, winners)
		if cerr != nil {
			return fail(fmt.Errorf("commit after conflict at version %d: %w", v, cerr))
		}
		if ours >= 0 {
			return done(ours, attempt, true)
		}
		cfg.Logger.Debug("commit conflict, retrying", "version", v, "next", next, "attempt", attempt)
		lastErr = fmt.Errorf("version %d taken by a concurrent commit: %w", v, ErrConflict)
		v = next
	}
	return fail(fmt.Errorf("commit: gave up after %d attempts: %w", cfg.MaxAttempts, lastErr))
}

// checkWinners reads the commits at versions from, from+1, … that exist and
// applies the conflict rules. It returns the next version to try, or the
// version holding this transaction's own commit (ours >= 0). When it reads
// version *unresolved (an ambiguous attempt's) and finds another writer's
// commit there, it sets *unresolved to -1. Every other writer's commit it
// reads is stored in winners.
func (tx *Transaction) checkWinners(ctx context.Context, from int64, removing map[string]bool, proto *Protocol, md *Metadata, unresolved *int64, winners map[int64][]Action) (next, ours int64, err error) {
	v := from
	for ; ; v++ {
		actions, err := readCommit(ctx, tx.table.store, v)
		if errors.Is(err, storage.ErrNotExist) {
			if v == from {
				// The winner vanished (log cleanup cannot delete it this
				// young; a store glitch): try the same version again.
				return from, -1, nil
			}
			return v, -1, nil
		}
		if err != nil {
			return 0, -1, err
		}
		for _, a := range actions {
			if a.CommitInfo != nil && a.CommitInfo.TxnID == tx.txnID {
				return 0, v, nil
			}
		}
		if v == *unresolved {
			*unresolved = -1
		}
		winners[v] = actions
		for _, a := range actions {
			switch {
			case a.Txn != nil:
				if _, mine := tx.txns[a.Txn.AppID]; !mine {
					break
				}
				// Only a winner that committed some of this commit's
				// offsets fences it; an earlier, non-overlapping commit
				// (this writer's own previous one, read through a stale
				// snapshot) does not.
				if a.Txn.Version >= tx.firsts[a.Txn.AppID] {
					return 0, -1, &FencedError{AppID: a.Txn.AppID, Committed: a.Txn.Version, AtVersion: v}
				}
			case a.Protocol != nil:
				*proto = *a.Protocol
				if err := CheckWritable(*proto, *md); err != nil {
					return 0, -1, err
				}
			case a.Metadata != nil:
				if tx.metadata != nil {
					return 0, -1, fmt.Errorf("version %d changed the metadata this commit also changes: %w", v, ErrConflict)
				}
				return 0, -1, fmt.Errorf("version %d changed the table metadata: %w", v, ErrConflict)
			case a.Remove != nil:
				if removing[decodePath(a.Remove.Path)] {
					return 0, -1, fmt.Errorf("version %d removed %s, which this commit removes: %w", v, a.Remove.Path, ErrConflict)
				}
			}
		}
	}
}

// after returns the snapshot at version v, where this transaction's commit
// (own) landed: the read snapshot advanced by the winners read while
// retrying and by own, or nil when some version in between was not read.
func (tx *Transaction) after(v int64, winners map[int64][]Action, own []Action) *Snapshot {
	for u := tx.read.Version() + 1; u < v; u++ {
		if _, ok := winners[u]; !ok {
			return nil
		}
	}
	n := tx.read.clone()
	for u := tx.read.Version() + 1; u < v; u++ {
		for _, a := range winners[u] {
			n.apply(a)
		}
	}
	for _, a := range own {
		n.apply(a)
	}
	n.version = v
	return n.freeze()
}

// finish completes a successful commit: the automatic checkpoint.
func (tx *Transaction) finish(ctx context.Context, v int64, attempts int, already bool, snap *Snapshot) CommitResult {
	res := CommitResult{Version: v, Attempts: attempts, AlreadyCommitted: already, Snapshot: snap}
	t := tx.table
	if t.cfg.DisableCheckpoints || v == 0 {
		return res
	}
	interval := t.cfg.CheckpointInterval
	if interval <= 0 {
		conf := tx.read.Metadata().Configuration
		if tx.metadata != nil {
			conf = tx.metadata.Configuration
		}
		interval = checkpointInterval(conf)
	}
	if v%int64(interval) != 0 {
		return res
	}
	base := snap
	if base == nil {
		base = tx.read
	}
	if t.cfg.BackgroundCheckpoints {
		if !t.startBackground() {
			t.cfg.Logger.Debug("checkpoint skipped: the previous one is still being written", "version", v)
			return res
		}
		res.CheckpointStarted = true
		go func() {
			defer t.endBackground()
			if err := t.checkpointAndClean(context.WithoutCancel(ctx), base, v); err != nil {
				t.cfg.Logger.Warn("background checkpoint failed (the commit stands)", "version", v, "err", err)
			}
		}()
		return res
	}
	if err := t.checkpointAndClean(ctx, base, v); err != nil {
		t.cfg.Logger.Warn("checkpoint after commit failed", "version", v, "err", err)
		res.CheckpointErr = err
		return res
	}
	res.Checkpointed = true
	return res
}

func sleepBackoff(ctx context.Context, cfg Config, n int) error {
	d := cfg.RetryBackoff
	for i := 1; i < n && d < cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, cfg.MaxRetryBackoff)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(rand.N(d) + 1)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
