package commitlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/protolake/protolake/storage"
)

// Store is what a Table needs from storage: reading and listing the log,
// put-if-absent for commits, put for checkpoints and _last_checkpoint, and
// delete for log cleanup and vacuum. storage.Store implementations satisfy
// it; the store is rooted at the table directory.
type Store interface {
	Reader
	PutIfAbsent(ctx context.Context, key string, r io.Reader) error
	Put(ctx context.Context, key string, r io.Reader) error
	Delete(ctx context.Context, key string) error
}

// Table is a Delta table in a store. It is safe for concurrent use, and
// several Tables (in one process or many) may write the same table: every
// method reads the log afresh, except that a commit made from a kept
// snapshot (CommitResult.Snapshot, Update) reads only the commits it races
// with. The only state a Table keeps is which checkpoints it has parsed,
// when it last cleaned the log, and its background checkpoint.
type Table struct {
	store Store
	cfg   Config

	mu          sync.Mutex
	parsed      map[string]bool // checkpoints (checkpointID) parsed successfully
	lastCleanup time.Time       // last automatic log cleanup
	bgRunning   bool            // a background checkpoint is running
	bg          sync.WaitGroup
}

// WaitCheckpoints waits until the background checkpoint (see
// Config.BackgroundCheckpoints) that is running, if any, has finished.
func (t *Table) WaitCheckpoints() { t.bg.Wait() }

// cleanupDue reports whether the automatic log cleanup may run now (at most
// every Config.LogCleanupInterval), and if so counts it as run.
func (t *Table) cleanupDue() bool {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.lastCleanup.IsZero() && now.Sub(t.lastCleanup) < t.cfg.LogCleanupInterval {
		return false
	}
	t.lastCleanup = now
	return true
}

// startBackground claims the background checkpoint slot.
func (t *Table) startBackground() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bgRunning {
		return false
	}
	t.bgRunning = true
	t.bg.Add(1)
	return true
}

func (t *Table) endBackground() {
	t.mu.Lock()
	t.bgRunning = false
	t.mu.Unlock()
	t.bg.Done()
}

// Open returns the table rooted at the store's root. It does no I/O; a
// missing table shows as ErrNoTable from Snapshot.
func Open(store Store, cfg Config) (*Table, error) {
	if store == nil {
		return nil, errors.New("open table: nil store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open table: %w", err)
	}
	return &Table{store: store, cfg: cfg.withDefaults()}, nil
}

// Store returns the table's store.
func (t *Table) Store() Store { return t.store }

// Snapshot loads the latest version.
func (t *Table) Snapshot(ctx context.Context) (*Snapshot, error) {
	return t.SnapshotAt(ctx, Latest)
}

// SnapshotAt loads version v (or the latest for Latest).
func (t *Table) SnapshotAt(ctx context.Context, v int64) (*Snapshot, error) {
	s, err := LoadSnapshot(ctx, t.store, v, LoadOptions{Logger: t.cfg.Logger})
	if err == nil && s.checkpointID != "" {
		t.noteParsed(s.checkpointID)
	}
	return s, err
}

// Update returns the latest snapshot, reading only the commits after s
// (cheaper than Snapshot for a writer that keeps its snapshot); s itself is
// not changed. It lists nothing: it reads commits s.Version()+1, +2, … until
// one does not exist (after updateProbeLimit of them it lists from s on
// instead, to read the rest in parallel), and costs O(new actions), not
// O(files). It falls back to a full load when the log was cleaned up past s.
func (t *Table) Update(ctx context.Context, s *Snapshot) (*Snapshot, error) {
	if s == nil {
		return t.Snapshot(ctx)
	}
	var n *Snapshot
	v := s.version + 1
	for ; v <= s.version+updateProbeLimit; v++ {
		actions, err := readCommit(ctx, t.store, v)
		if errors.Is(err, storage.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		if n == nil {
			n = s.clone()
		}
		for _, a := range actions {
			n.apply(a)
		}
	}
	if v > s.version+updateProbeLimit {
		// Far behind: list and read the rest in parallel.
		l, err := listLogFrom(ctx, t.store, v)
		if err != nil {
			return nil, err
		}
		if l.latest >= v {
			if firstMissing(l, v, l.latest) >= 0 {
				return t.Snapshot(ctx)
			}
			if err := replayCommits(ctx, t.store, v, l.latest, n, 0); err != nil {
				return nil, err
			}
			v = l.latest + 1
		}
	}
	if n == nil {
		// Nothing after s, or the log was cleaned up past it (cleanup
		// deletes oldest first: s's own commit goes before s+1's).
		if _, err := readCommit(ctx, t.store, s.version); errors.Is(err, storage.ErrNotExist) {
			return t.Snapshot(ctx)
		} else if err != nil {
			return nil, err
		}
		return s, nil
	}
	n.version = v - 1
	return n.freeze(), nil
}

// updateProbeLimit is how many commits Update reads one by one before it
// lists.
const updateProbeLimit = 32

// ProtoPin is the protobuf message a table is pinned to.
type ProtoPin struct {
	// Message is the message's full name, e.g. "ads.v1.Click".
	Message string
	// Fingerprint is the hex sha256 of the message's transitive
	// FileDescriptorSet in canonical form.
	Fingerprint string
	// Version is an optional human label ("v3", a git tag…).
	Version string
	// DescriptorSet is the serialized FileDescriptorSet, archived at
	// DescriptorKey(Fingerprint). Optional.
	DescriptorSet []byte
}

// PinOf reads the proto pin from a table's configuration.
func PinOf(md Metadata) ProtoPin {
	return ProtoPin{
		Message:     md.Configuration[PropProtoMessage],
		Fingerprint: md.Configuration[PropProtoFingerprint],
		Version:     md.Configuration[PropProtoVersion],
	}
}

// TableSpec describes a table to create.
type TableSpec struct {
	// ID is metaData.id. Default: a random UUID.
	ID string
	// Name and Description are optional metaData fields.
	Name, Description string
	// SchemaString is the Delta schema (a JSON struct type), e.g. from the
	// schema package. Required.
	SchemaString string
	// PartitionColumns are top-level columns of the schema.
	PartitionColumns []string
	// Configuration holds table properties (delta.checkpointInterval…).
	Configuration map[string]string
	// Proto pins the table to a protobuf message; its fields are written to
	// the configuration (protolake.proto.*).
	Proto ProtoPin
}

var fingerprintRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// DescriptorKey is where the descriptor set with the given fingerprint is
// archived: _protolake/descriptors/<fingerprint>.binpb.
func DescriptorKey(fingerprint string) string {
	return "_protolake/descriptors/" + fingerprint + ".binpb"
}

// NewMetadata builds the metaData action for spec, validating it.
func NewMetadata(spec TableSpec, createdMillis int64) (Metadata, error) {
	if spec.SchemaString == "" {
		return Metadata{}, fmt.Errorf("new table metadata: %w", ErrNoSchema)
	}
	names, err := SchemaFieldNames(spec.SchemaString)
	if err != nil {
		return Metadata{}, err
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, c := range spec.PartitionColumns {
		if !have[c] {
			return Metadata{}, fmt.Errorf("partition column %q is not a top-level column of the schema", c)
		}
	}
	conf := map[string]string{}
	for k, v := range spec.Configuration {
		conf[k] = v
	}
	if spec.Proto.Message != "" {
		conf[PropProtoMessage] = spec.Proto.Message
	}
	if spec.Proto.Fingerprint != "" {
		if !fingerprintRE.MatchString(spec.Proto.Fingerprint) {
			return Metadata{}, fmt.Errorf("proto fingerprint %q: want 1-128 characters of [A-Za-z0-9_-]", spec.Proto.Fingerprint)
		}
		conf[PropProtoFingerprint] = spec.Proto.Fingerprint
	}
	if spec.Proto.Version != "" {
		conf[PropProtoVersion] = spec.Proto.Version
	}
	if len(spec.Proto.DescriptorSet) > 0 && spec.Proto.Fingerprint == "" {
		return Metadata{}, errors.New("proto descriptor set given without a fingerprint")
	}
	id := spec.ID
	if id == "" {
		id = uuid.NewString()
	}
	ct := createdMillis
	return Metadata{
		ID:               id,
		Name:             spec.Name,
		Description:      spec.Description,
		Format:           Format{Provider: "parquet", Options: map[string]string{}},
		SchemaString:     spec.SchemaString,
		PartitionColumns: append([]string{}, spec.PartitionColumns...),
		Configuration:    conf,
		CreatedTime:      &ct,
	}, nil
}

// Create writes version 0 of a new table: protocol 1/2, the metaData for
// spec and a commitInfo, after archiving the descriptor set. When the table
// already exists (even if another writer created it a moment ago) it returns
// ErrTableExists and changes nothing; callers that want "create or open"
// call Snapshot on that error and compare PinOf(snapshot.Metadata()).
func (t *Table) Create(ctx context.Context, spec TableSpec) (*Snapshot, error) {
	now := t.cfg.Now().UnixMilli()
	md, err := NewMetadata(spec, now)
	if err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	if l, err := listLog(ctx, t.store); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	} else if l.latest >= 0 {
		return nil, fmt.Errorf("create table: %w (latest version %d)", ErrTableExists, l.latest)
	}
	if len(spec.Proto.DescriptorSet) > 0 {
		if err := t.ArchiveDescriptors(ctx, spec.Proto.Fingerprint, spec.Proto.DescriptorSet); err != nil {
			return nil, fmt.Errorf("create table: %w", err)
		}
	}
	proto := Protocol{MinReaderVersion: 1, MinWriterVersion: 2}
	blind := false
	partBy, _ := json.Marshal(md.PartitionColumns)
	props, _ := json.Marshal(md.Configuration)
	ci := CommitInfo{
		Timestamp: now,
		Operation: "CREATE TABLE",
		OperationParameters: map[string]any{
			"isManaged":   "false",
			"description": md.Description,
			"partitionBy": string(partBy),
			"properties":  string(props),
		},
		IsBlindAppend: &blind,
		EngineInfo:    t.cfg.EngineInfo,
		TxnID:         uuid.NewString(),
	}
	body, err := encodeActions([]Action{{CommitInfo: &ci}, {Protocol: &proto}, {Metadata: &md}})
	if err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	// As in Transaction.Commit: after an ambiguous write, every error is
	// ambiguous until version 0 is read back.
	unresolved := false
	for attempt := 1; ; attempt++ {
		err = t.store.PutIfAbsent(ctx, CommitKey(0), bytes.NewReader(body))
		if errors.Is(err, storage.ErrExist) && unresolved {
			// Ours, written by the ambiguous attempt, or another writer's?
			_, landed, rerr := t.commitState(ctx, 0, ci.TxnID)
			switch {
			case rerr != nil:
				err = rerr
			case landed:
				err = nil
			default:
				unresolved = false
			}
			break
		}
		if !errors.Is(err, storage.ErrAmbiguous) {
			break
		}
		unresolved = true
		// Resolve by reading version 0 back.
		exists, landed, rerr := t.commitState(ctx, 0, ci.TxnID)
		if rerr == nil && landed {
			err = nil
			break
		}
		if rerr == nil && exists {
			unresolved = false
			err = storage.ErrExist
			break
		}
		if attempt >= t.cfg.MaxAttempts {
			break
		}
		if serr := sleepBackoff(ctx, t.cfg, attempt); serr != nil {
			err = serr
			break
		}
	}
	if err != nil && unresolved {
		return nil, fmt.Errorf("create table: %w", &AmbiguousCommitError{Version: 0, TxnID: ci.TxnID, Err: err})
	}
	if errors.Is(err, storage.ErrExist) {
		return nil, fmt.Errorf("create table: %w (another writer created it concurrently)", ErrTableExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create table: write %s: %w", CommitKey(0), err)
	}
	// Debug: the caller, which knows the table by name and URI, logs the
	// creation for users.
	t.cfg.Logger.Debug("created table", "id", md.ID, "message", spec.Proto.Message)
	// Version 0 is what we wrote: build its snapshot without reading it back
	// (a failed read would make a created table look like a failure).
	s := newSnapshot()
	for _, a := range []Action{{CommitInfo: &ci}, {Protocol: &proto}, {Metadata: &md}} {
		s.apply(a)
	}
	s.version = 0
	return s.freeze(), nil
}

// ArchiveDescriptors stores a descriptor set at DescriptorKey(fingerprint)
// unless one is already there (the fingerprint names its content).
func (t *Table) ArchiveDescriptors(ctx context.Context, fingerprint string, set []byte) error {
	if !fingerprintRE.MatchString(fingerprint) {
		return fmt.Errorf("archive descriptors: fingerprint %q: want 1-128 characters of [A-Za-z0-9_-]", fingerprint)
	}
	err := t.store.PutIfAbsent(ctx, DescriptorKey(fingerprint), bytes.NewReader(set))
	if err != nil && !errors.Is(err, storage.ErrExist) {
		if errors.Is(err, storage.ErrAmbiguous) {
			if _, gerr := readAll(ctx, t.store, DescriptorKey(fingerprint)); gerr == nil {
				return nil
			}
		}
		return fmt.Errorf("archive descriptors %s: %w", DescriptorKey(fingerprint), err)
	}
	return nil
}

// Descriptors reads the archived descriptor set with the given fingerprint.
func (t *Table) Descriptors(ctx context.Context, fingerprint string) ([]byte, error) {
	if !fingerprintRE.MatchString(fingerprint) {
		return nil, fmt.Errorf("read descriptors: invalid fingerprint %q", fingerprint)
	}
	return readAll(ctx, t.store, DescriptorKey(fingerprint))
}

// ArchivedDescriptor is one descriptor set archived under
// _protolake/descriptors/.
type ArchivedDescriptor struct {
	// Fingerprint names the proto version (DescriptorKey(Fingerprint)).
	Fingerprint string
	// Archived is when it was archived: when that version first opened the
	// table for writing (archives are never overwritten).
	Archived time.Time
}

// ArchivedDescriptors lists every descriptor set archived under
// _protolake/descriptors/: each proto version that ever opened the table for
// writing, including those whose pin the log no longer shows (log cleanup, a
// later version's commit). Oldest first; empty, not an error, when nothing is
// archived.
func (t *Table) ArchivedDescriptors(ctx context.Context) ([]ArchivedDescriptor, error) {
	const prefix = "_protolake/descriptors/"
	objs, err := t.store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list archived descriptors: %w", err)
	}
	var out []ArchivedDescriptor
	for _, o := range objs {
		name, ok := strings.CutPrefix(o.Key, prefix)
		if !ok {
			continue
		}
		if fp, ok := strings.CutSuffix(name, ".binpb"); ok && fingerprintRE.MatchString(fp) {
			out = append(out, ArchivedDescriptor{Fingerprint: fp, Archived: o.ModTime})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Archived.Before(out[j].Archived) })
	return out, nil
}

// encodeActions renders actions as a commit file: one JSON object per line.
func encodeActions(actions []Action) ([]byte, error) {
	var buf bytes.Buffer
	for _, a := range actions {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// commitState reads commit v: whether it exists and whether its commitInfo
// carries txnID.
func (t *Table) commitState(ctx context.Context, v int64, txnID string) (exists, ours bool, err error) {
	actions, err := readCommit(ctx, t.store, v)
	if errors.Is(err, storage.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	for _, a := range actions {
		if a.CommitInfo != nil && a.CommitInfo.TxnID == txnID {
			return true, true, nil
		}
	}
	return true, false, nil
}

// FindCommit looks for the commit carrying txnID at versions >= from and
// returns its version, or -1 when none of the existing commits has it. Use
// it to resolve an *AmbiguousCommitError.
func (t *Table) FindCommit(ctx context.Context, txnID string, from int64) (int64, error) {
	l, err := listLog(ctx, t.store)
	if err != nil {
		return -1, err
	}
	for v := max(from, 0); v <= l.latest; v++ {
		if _, ok := l.commits[v]; !ok {
			continue
		}
		_, ok, err := t.commitState(ctx, v, txnID)
		if err != nil {
			return -1, err
		}
		if ok {
			return v, nil
		}
	}
	return -1, nil
}

// AmbiguousCommitError reports a commit whose outcome could not be
// determined after the store reported an ambiguous write.
type AmbiguousCommitError struct {
	// Version is the version the commit was written at.
	Version int64
	// TxnID identifies the commit (commitInfo.txnId).
	TxnID string
	// Err is the last error seen while resolving.
	Err error
}

// Error names the txnId to look for with FindCommit.
func (e *AmbiguousCommitError) Error() string {
	return fmt.Sprintf("commit %s at version %d: outcome unknown (find it later with FindCommit): %v", e.TxnID, e.Version, e.Err)
}

// Unwrap returns the underlying error.
func (e *AmbiguousCommitError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAmbiguousCommit) true.
func (e *AmbiguousCommitError) Is(target error) bool { return target == ErrAmbiguousCommit }
