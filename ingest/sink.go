package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/writer"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// StreamingCheckpointInterval is the delta.checkpointInterval of the
// tables `protolake run` creates (delta-rs's default for streaming writers):
// a commit every few seconds would otherwise checkpoint every half minute.
// Tables that exist keep their own setting (Delta's default is 10).
const StreamingCheckpointInterval = 100

// sink is one Delta table written by a Runner: a main table or a dead-letter
// table. It owns the table's writer and the files finished but not yet cut
// into a batch. Not safe for concurrent use (the Runner's mutex guards it),
// except commit, which the table's committer calls without the mutex: it
// reads v and the fields that do not change after openSink, and is the only
// user of snapStale, baseSchema and basePin once the Runner runs; snap,
// which it writes, is atomic.
type sink struct {
	name   string
	uri    string
	store  storage.Store
	log    *commitlog.Table
	msg    protoreflect.MessageDescriptor
	opts   schema.Options
	st     *schema.Table // the schema the writer writes: the table's, merged with msg
	pin    commitlog.ProtoPin
	wcfg   writer.Config
	w      *shards       // its writers: one per decode shard (decode.go)
	shards int           // how many writers create makes (0: one)
	files  []writer.File // finished, not yet cut into a batch
	up     *uploader     // the writer's store: uploads data files in the background

	// snap is the table as of this sink's last commit (or open): commits
	// read it instead of the log, so a commit costs one log write whatever
	// the table's size. snapStale: a commit failed, so read the commits
	// after snap (Table.Update) before the next one. The committer writes
	// snap without the Runner's mutex; the poll loop and the rebalance
	// callbacks read it (latest, registry decisions).
	snap      atomic.Pointer[commitlog.Snapshot]
	snapStale bool

	// reg is the registry registration of the proto version (registry-fed
	// tables), written to metaData.configuration with the pin; fileFP
	// names the proto version of files written before the sink switched
	// to a newer one (switchTo), for their add tags.
	reg    regInfo
	fileFP map[string]string

	// baseSchema and basePin are the table's schema and proto pin when the
	// sink was opened: a table whose metadata moved away from both (another
	// instance running another proto version) is merged, never reverted.
	baseSchema string
	basePin    string
	// missing is set when openSink found no table: create makes it.
	missing bool
	// older is set when msg is an older version of the table's pinned one:
	// the sink never changes the table's schema or pin.
	older bool
}

// openSink opens the table at uri and checks that msg can write to it
// (compatible evolution → the first commit carries the merged schema; an
// older version of the table's pinned one → it writes the fields it knows;
// breaking → *schema.IncompatibleError). It writes nothing: create does,
// once every table of the Runner has been checked. uri is only shown (in
// errors and logs), redacted by the caller.
func openSink(ctx context.Context, name, uri string, store storage.Store, msg protoreflect.MessageDescriptor, opts schema.Options, version string, wcfg writer.Config, clcfg commitlog.Config, logger *slog.Logger) (*sink, error) {
	return openRegistrySink(ctx, name, uri, store, msg, opts, version, regInfo{}, wcfg, clcfg, logger)
}

// openRegistrySink is openSink for a proto version that is registry
// schema reg (zero: none).
func openRegistrySink(ctx context.Context, name, uri string, store storage.Store, msg protoreflect.MessageDescriptor, opts schema.Options, version string, reg regInfo, wcfg writer.Config, clcfg commitlog.Config, logger *slog.Logger) (*sink, error) {
	fp, err := schema.Fingerprint(msg)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s: %w", msg.FullName(), err)
	}
	derived, err := schema.Derive(msg, opts)
	if err != nil {
		return nil, fmt.Errorf("derive the schema of %s: %w", msg.FullName(), err)
	}
	for _, w := range derived.Warnings {
		logger.Warn("schema warning", "table", name, "warning", w.String())
	}
	// A streaming writer commits every few seconds: checkpoints are written
	// in the background, so a commit costs the same at any table size.
	clcfg.BackgroundCheckpoints = true
	tbl, err := commitlog.Open(store, clcfg)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", uri, err)
	}
	s := &sink{name: name, uri: uri, store: store, log: tbl, msg: msg, opts: opts, wcfg: wcfg, reg: reg,
		pin: commitlog.ProtoPin{Message: string(msg.FullName()), Fingerprint: fp, Version: version}}
	snap, err := tbl.Snapshot(ctx)
	if errors.Is(err, commitlog.ErrNoTable) {
		s.st, s.missing = derived, true
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", uri, err)
	}
	if err := s.opened(ctx, snap, logger); err != nil {
		return nil, err
	}
	return s, nil
}

// create creates the table when openSink found none (another instance may
// have created it since: then it is checked again), archives the
// descriptors and builds the writer. It is the sink's first write.
func (s *sink) create(ctx context.Context, logger *slog.Logger) error {
	set, err := schema.CanonicalDescriptorSet(s.msg)
	if err != nil {
		return fmt.Errorf("descriptor set of %s: %w", s.msg.FullName(), err)
	}
	if s.missing {
		conf := s.reg.props()
		if conf == nil {
			conf = map[string]string{}
		}
		conf[commitlog.PropCheckpointInterval] = strconv.Itoa(StreamingCheckpointInterval)
		spec := commitlog.TableSpec{Name: s.name, SchemaString: s.st.SchemaString(), PartitionColumns: s.st.PartitionColumns, Proto: s.pin, Configuration: conf}
		spec.Proto.DescriptorSet = set
		snap, err := s.log.Create(ctx, spec)
		switch {
		case errors.Is(err, commitlog.ErrTableExists):
			if snap, err = s.log.Snapshot(ctx); err != nil {
				return fmt.Errorf("read table %s: %w", s.uri, err)
			}
			if err := s.opened(ctx, snap, logger); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("create table %s: %w", s.uri, err)
		default:
			logger.Info("created table", "table", s.name, "uri", s.uri, "message", s.pin.Message, "fingerprint", s.pin.Fingerprint)
			s.baseSchema, s.basePin = snap.Metadata().SchemaString, s.pin.Fingerprint
			s.snap.Store(snap)
		}
		s.missing = false
	}
	if err := s.log.ArchiveDescriptors(ctx, s.pin.Fingerprint, set); err != nil {
		return fmt.Errorf("archive descriptors of table %s: %w", s.uri, err)
	}
	if s.w, err = newShards(s.wcfg, s.st, s.dataStore(), s.shards); err != nil {
		return fmt.Errorf("writer for table %s: %w", s.uri, err)
	}
	return nil
}

// opened checks an existing table: its protocol, and whether s.msg can
// write to it (CheckTable); it sets s.st to the schema the writer writes.
func (s *sink) opened(ctx context.Context, snap *commitlog.Snapshot, logger *slog.Logger) error {
	if err := commitlog.CheckWritable(snap.Protocol(), snap.Metadata()); err != nil {
		return fmt.Errorf("table %s: %w", s.uri, err)
	}
	md := snap.Metadata()
	s.baseSchema, s.basePin = md.SchemaString, commitlog.PinOf(md).Fingerprint
	s.snap.Store(snap)
	c, err := CheckTable(ctx, s.log, md, s.msg, s.opts)
	var pe *schema.PartitioningError
	if errors.As(err, &pe) {
		return fmt.Errorf("table %s: %w", s.uri, err) // the configuration's, not the proto version's
	}
	if err != nil {
		return fmt.Errorf("table %s cannot take %s (fingerprint %s): %w", s.uri, s.msg.FullName(), s.pin.Fingerprint, err)
	}
	s.older = c.Older
	if c.Older {
		logger.Info("older proto version: writing the fields it knows, the table keeps its newer schema and pin",
			"table", s.name, "fingerprint", s.pin.Fingerprint, "tableFingerprint", c.Pin.Fingerprint, "tableVersion", c.Pin.Version)
	}
	if c.Pin.Fingerprint != s.pin.Fingerprint {
		for _, ch := range c.Evolution.Changes {
			logger.Info("schema change", "table", s.name, "change", ch.String())
		}
	}
	s.st = c.Evolution.Merged
	return nil
}

// metadataUpdate returns the metaData to commit when the table's schema or
// proto pin differs from what this sink writes, nil otherwise. When another
// writer changed the table since the sink opened (a rolling deploy runs two
// proto versions), the table's schema is merged with ours, never replaced
// by an older one, and its pin is left alone unless the schema must grow.
func (s *sink) metadataUpdate(ctx context.Context, md commitlog.Metadata, v sinkVersion) (*commitlog.Metadata, error) {
	if v.older {
		return nil, nil // the table's schema already holds every column we write
	}
	old := commitlog.PinOf(md)
	schemaString := v.st.SchemaString()
	if md.SchemaString != s.baseSchema && md.SchemaString != schemaString {
		stored, err := schema.ParseSchemaString(md.SchemaString)
		if err != nil {
			return nil, fmt.Errorf("table %s: parse its schema: %w", s.uri, err)
		}
		ev, err := schema.DiffSchema(stored, v.msg, s.opts)
		if err != nil {
			// Our version may be the older one: then the table's is a
			// compatible evolution of what we write, and our files are
			// valid under it as they are.
			newer, nerr := s.newerThanOurs(ctx, old, v)
			if nerr != nil {
				return nil, fmt.Errorf("table %s was changed by another writer (schema no longer %s's): %w", s.uri, v.msg.FullName(), nerr)
			}
			if newer {
				return nil, nil
			}
			return nil, fmt.Errorf("table %s was changed by another writer and cannot take %s any more: %w", s.uri, v.msg.FullName(), err)
		}
		if ev.Merged.SchemaString() == md.SchemaString {
			return nil, nil
		}
		schemaString = ev.Merged.SchemaString()
	} else if md.SchemaString == schemaString && old.Fingerprint != s.basePin && old.Fingerprint != v.pin.Fingerprint {
		return nil, nil // another writer re-pinned the table; do not flip it back
	}
	same := md.SchemaString == schemaString && old.Message == v.pin.Message && old.Fingerprint == v.pin.Fingerprint &&
		(v.pin.Version == "" || old.Version == v.pin.Version)
	for k, v := range v.reg.props() {
		same = same && md.Configuration[k] == v
	}
	if same {
		return nil, nil
	}
	nm := md
	nm.SchemaString = schemaString
	nm.Configuration = make(map[string]string, len(md.Configuration)+3)
	for k, v := range md.Configuration {
		nm.Configuration[k] = v
	}
	nm.Configuration[commitlog.PropProtoMessage] = v.pin.Message
	nm.Configuration[commitlog.PropProtoFingerprint] = v.pin.Fingerprint
	if v.pin.Version != "" {
		nm.Configuration[commitlog.PropProtoVersion] = v.pin.Version
	} else {
		delete(nm.Configuration, commitlog.PropProtoVersion)
	}
	for k, v := range v.reg.props() {
		nm.Configuration[k] = v
	}
	return &nm, nil
}

// newerThanOurs reports whether the table's current proto version (read from
// the descriptor archive) is a compatible evolution of the schema this sink
// writes. No pin or no archived descriptors is "no"; failing to read or
// parse the archive is an error, not a "no": the caller would otherwise
// report a transient read failure as an incompatible table.
func (s *sink) newerThanOurs(ctx context.Context, pin commitlog.ProtoPin, v sinkVersion) (bool, error) {
	if pin.Fingerprint == "" {
		return false, nil // not pinned by protolake: no archive to judge by
	}
	set, err := s.log.Descriptors(ctx, pin.Fingerprint)
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the descriptors of its proto version %s: %w", pin.Fingerprint, err)
	}
	files, err := schema.ParseDescriptorSet(set, commitlog.DescriptorKey(pin.Fingerprint))
	if err != nil {
		return false, fmt.Errorf("its proto version %s: %w", pin.Fingerprint, err)
	}
	theirs, err := schema.FindMessage(files, pin.Message, "archived descriptors")
	if err != nil {
		return false, fmt.Errorf("its proto version %s: %w", pin.Fingerprint, err)
	}
	_, err = schema.DiffSchema(v.st.Schema, theirs, s.opts)
	return err == nil, nil // an incompatible diff is the answer "no"
}

// resetWriter drops every buffered row and every uncommitted file (files
// already written stay in the store unreferenced, for vacuum).
func (s *sink) resetWriter() {
	s.w.Discard()
	s.files, s.fileFP = nil, nil
}

// commitResult is what a successful sink commit did.
type commitResult struct {
	version       int64
	rows, bytes   int64
	files         int
	evolved       bool
	alreadyThere  bool
	checkpointErr error
}

// sinkVersion is the proto version a sink writes (switchTo changes it in
// the poll loop): a batch keeps the one of its cut, so that its commit,
// made by the committer, reads no field the poll loop writes.
type sinkVersion struct {
	msg   protoreflect.MessageDescriptor
	pin   commitlog.ProtoPin
	reg   regInfo
	st    *schema.Table
	older bool
}

// version is what the sink writes now. Poll loop only.
func (s *sink) version() sinkVersion {
	return sinkVersion{msg: s.msg, pin: s.pin, reg: s.reg, st: s.st, older: s.older}
}

// takeFiles returns the finished files and the proto fingerprint each
// was written with, and forgets them. Poll loop only.
func (s *sink) takeFiles() ([]writer.File, []string) {
	files, fps := s.files, make([]string, len(s.files))
	for i, f := range files {
		fps[i] = s.pin.Fingerprint
		if old, ok := s.fileFP[f.Path]; ok {
			fps[i] = old
		}
	}
	s.files, s.fileFP = nil, nil
	return files, fps
}

// dataStore is the store the writer writes data files to: the uploader
// once the Runner set it.
func (s *sink) dataStore() storage.Store {
	if s.up != nil {
		return s.up
	}
	return s.store
}

// commit writes files (uploaded; fps[i] is the proto fingerprint files[i]
// was written with) and the offset ranges as one Delta commit, for proto
// version v. Called by the table's committer, without the Runner's mutex:
// it uses only v, the commit log and the fields only commits change
// (snap, snapStale, baseSchema, basePin).
// commitlog resolves ambiguous writes itself (by
// txnId); a commit whose outcome stays unknown is *AmbiguousCommitError, and
// the caller must then re-read its watermarks rather than retry.
func (s *sink) commit(ctx context.Context, group string, files []writer.File, fps []string, v sinkVersion, ranges []commitlog.OffsetRange, op string, params map[string]any) (commitResult, error) {
	var res commitResult
	for _, f := range files {
		res.rows += f.Rows
		res.bytes += f.Size
	}
	res.files = len(files)
	snap, err := s.snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("read table %s: %w", s.uri, err)
	}
	if err := commitlog.CheckWritable(snap.Protocol(), snap.Metadata()); err != nil {
		return res, fmt.Errorf("table %s: %w", s.uri, err)
	}
	tx := s.log.NewTransaction(snap)
	nm, err := s.metadataUpdate(ctx, snap.Metadata(), v)
	if err != nil {
		return res, err
	}
	if nm != nil {
		tx.UpdateMetadata(*nm)
		res.evolved = true
	}
	for i, f := range files {
		add, err := toAdd(f, fps[i])
		if err != nil {
			return res, fmt.Errorf("commit to %s: %w", s.uri, err)
		}
		tx.Add(add)
	}
	for _, r := range ranges {
		tx.AddKafkaOffsets(group, r)
	}
	tx.SetOperation(op, params)
	tx.SetMetrics(map[string]string{
		"numAddedFiles":  fmt.Sprint(res.files),
		"numOutputRows":  fmt.Sprint(res.rows),
		"numOutputBytes": fmt.Sprint(res.bytes),
	})
	cr, err := tx.Commit(ctx)
	if err != nil {
		s.snapStale = true
		return res, fmt.Errorf("commit to %s: %w", s.uri, err)
	}
	if cr.Snapshot != nil {
		s.snap.Store(cr.Snapshot)
	} else {
		s.snapStale = true // a concurrent commit was not read: Update next time
	}
	if nm != nil {
		// The table is at our version now: a later switchTo is ours to
		// commit, not another writer's change to leave alone.
		s.baseSchema, s.basePin = nm.SchemaString, v.pin.Fingerprint
	}
	res.version, res.alreadyThere = cr.Version, cr.AlreadyCommitted
	res.checkpointErr = cr.CheckpointErr
	return res, nil
}

// switchTo makes the sink write proto version msg (pin, registry schema
// reg) from now on, with the table schema merged (the table's merged with
// msg, a compatible evolution): the rows buffered so far become files under
// the old version, the descriptors are archived, and the next commit
// carries the merged metaData, exactly as a new descriptor given at start.
func (s *sink) switchTo(ctx context.Context, msg protoreflect.MessageDescriptor, pin commitlog.ProtoPin, reg regInfo, merged *schema.Table) error {
	set, err := schema.CanonicalDescriptorSet(msg)
	if err != nil {
		return fmt.Errorf("descriptor set of %s: %w", msg.FullName(), err)
	}
	if err := s.log.ArchiveDescriptors(ctx, pin.Fingerprint, set); err != nil {
		return fmt.Errorf("archive descriptors: %w", err)
	}
	w, err := newShards(s.wcfg, merged, s.dataStore(), len(s.w.ws))
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	files, err := s.w.Flush(ctx)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	s.files = append(s.files, files...)
	if s.fileFP == nil {
		s.fileFP = map[string]string{}
	}
	for _, f := range s.files {
		if _, ok := s.fileFP[f.Path]; !ok {
			s.fileFP[f.Path] = s.pin.Fingerprint
		}
	}
	s.w, s.msg, s.pin, s.reg, s.st = w, msg, pin, reg, merged
	// merged holds every column of the table and the new version's: the
	// next commit carries it, even if the sink started as an older version.
	s.older = false
	return nil
}

// snapshot returns the snapshot the next commit reads: the kept one, brought
// up to date with Table.Update (the newer commits only) after a failure.
// Other writers' commits it has not seen are read by the commit itself when
// it loses the race to them.
func (s *sink) snapshot(ctx context.Context) (*commitlog.Snapshot, error) {
	if snap := s.snap.Load(); snap != nil && !s.snapStale {
		return snap, nil
	}
	snap, err := s.log.Update(ctx, s.snap.Load())
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	s.snapStale = false
	return snap, nil
}

// latest returns the table's latest snapshot: snap brought up to date with
// Table.Update (the commits after it only, not a full load). It does not
// change snap, so any goroutine may call it.
func (s *sink) latest(ctx context.Context) (*commitlog.Snapshot, error) {
	return s.log.Update(ctx, s.snap.Load())
}

// toAdd turns a written file into its add action.
func toAdd(f writer.File, fingerprint string) (commitlog.Add, error) {
	stats := ""
	if f.Stats != nil {
		var err error
		if stats, err = f.Stats.JSON(); err != nil {
			return commitlog.Add{}, fmt.Errorf("stats of %s: %w", f.Path, err)
		}
	}
	return commitlog.Add{
		Path:             (&url.URL{Path: f.Path}).EscapedPath(),
		PartitionValues:  f.PartitionValues,
		Size:             f.Size,
		ModificationTime: f.ModificationTime.UnixMilli(),
		DataChange:       true,
		Stats:            stats,
		Tags:             map[string]string{commitlog.TagProtoFingerprint: fingerprint},
	}, nil
}
