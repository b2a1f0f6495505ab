package commitlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/protolake/protolake/storage"
)

// The checkpoint row types reproduce the Parquet layout Spark (Delta 3.x)
// writes for classic checkpoints, column for column, so that every Delta
// reader finds the columns it expects. Fields we never set (deletion
// vectors, row tracking) are written as nulls, as Spark does.

type cpDeletionVector struct {
	StorageType    *string `parquet:"storageType,optional"`
	PathOrInlineDv *string `parquet:"pathOrInlineDv,optional"`
	Offset         *int32  `parquet:"offset,optional"`
	SizeInBytes    *int32  `parquet:"sizeInBytes,optional"`
	Cardinality    *int64  `parquet:"cardinality,optional"`
	MaxRowIndex    *int64  `parquet:"maxRowIndex,optional"`
}

type cpTxn struct {
	AppID       *string `parquet:"appId,optional"`
	Version     *int64  `parquet:"version,optional"`
	LastUpdated *int64  `parquet:"lastUpdated,optional"`
}

type cpAdd struct {
	Path                    *string            `parquet:"path,optional"`
	PartitionValues         map[string]*string `parquet:"partitionValues,optional"`
	Size                    *int64             `parquet:"size,optional"`
	ModificationTime        *int64             `parquet:"modificationTime,optional"`
	DataChange              *bool              `parquet:"dataChange,optional"`
	Tags                    map[string]*string `parquet:"tags,optional"`
	DeletionVector          *cpDeletionVector  `parquet:"deletionVector,optional"`
	BaseRowID               *int64             `parquet:"baseRowId,optional"`
	DefaultRowCommitVersion *int64             `parquet:"defaultRowCommitVersion,optional"`
	Stats                   *string            `parquet:"stats,optional"`
}

type cpRemove struct {
	Path                    *string            `parquet:"path,optional"`
	DeletionTimestamp       *int64             `parquet:"deletionTimestamp,optional"`
	DataChange              *bool              `parquet:"dataChange,optional"`
	ExtendedFileMetadata    *bool              `parquet:"extendedFileMetadata,optional"`
	PartitionValues         map[string]*string `parquet:"partitionValues,optional"`
	Size                    *int64             `parquet:"size,optional"`
	DeletionVector          *cpDeletionVector  `parquet:"deletionVector,optional"`
	BaseRowID               *int64             `parquet:"baseRowId,optional"`
	DefaultRowCommitVersion *int64             `parquet:"defaultRowCommitVersion,optional"`
}

type cpFormat struct {
	Provider *string            `parquet:"provider,optional"`
	Options  map[string]*string `parquet:"options,optional"`
}

type cpMetadata struct {
	ID               *string            `parquet:"id,optional"`
	Name             *string            `parquet:"name,optional"`
	Description      *string            `parquet:"description,optional"`
	Format           *cpFormat          `parquet:"format,optional"`
	SchemaString     *string            `parquet:"schemaString,optional"`
	PartitionColumns []*string          `parquet:"partitionColumns,optional,list"`
	Configuration    map[string]*string `parquet:"configuration,optional"`
	CreatedTime      *int64             `parquet:"createdTime,optional"`
}

type cpProtocol struct {
	MinReaderVersion *int32    `parquet:"minReaderVersion,optional"`
	MinWriterVersion *int32    `parquet:"minWriterVersion,optional"`
	ReaderFeatures   []*string `parquet:"readerFeatures,optional,list"`
	WriterFeatures   []*string `parquet:"writerFeatures,optional,list"`
}

type cpDomainMetadata struct {
	Domain        *string `parquet:"domain,optional"`
	Configuration *string `parquet:"configuration,optional"`
	Removed       *bool   `parquet:"removed,optional"`
}

type cpRow struct {
	Txn            *cpTxn            `parquet:"txn,optional"`
	Add            *cpAdd            `parquet:"add,optional"`
	Remove         *cpRemove         `parquet:"remove,optional"`
	MetaData       *cpMetadata       `parquet:"metaData,optional"`
	Protocol       *cpProtocol       `parquet:"protocol,optional"`
	DomainMetadata *cpDomainMetadata `parquet:"domainMetadata,optional"`
}

// size approximates the bytes a row holds: its strings (the statistics,
// above all) plus a fixed amount for everything else.
func (r *cpRow) size() int {
	n := 64
	str := func(p *string) {
		if p != nil {
			n += len(*p)
		}
	}
	strs := func(m map[string]*string) {
		for k, v := range m {
			n += len(k)
			str(v)
		}
	}
	switch {
	case r.Add != nil:
		str(r.Add.Path)
		str(r.Add.Stats)
		strs(r.Add.PartitionValues)
		strs(r.Add.Tags)
	case r.Remove != nil:
		str(r.Remove.Path)
		strs(r.Remove.PartitionValues)
	case r.MetaData != nil:
		str(r.MetaData.SchemaString)
		strs(r.MetaData.Configuration)
	case r.DomainMetadata != nil:
		str(r.DomainMetadata.Configuration)
	case r.Txn != nil:
		str(r.Txn.AppID)
	}
	return n
}

// CheckpointSchema is the Parquet schema of the checkpoints protolake
// writes (Spark's layout).
func CheckpointSchema() *parquet.Schema {
	return parquet.NewSchema("spark_schema", parquet.SchemaOf(new(cpRow)))
}

func ptr[T any](v T) *T { return &v }

func strMap(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = ptr(v)
	}
	return out
}

func strList(s []string) []*string {
	out := make([]*string, len(s))
	for i, v := range s {
		out[i] = ptr(v)
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CheckpointInfo describes a written checkpoint, as in _last_checkpoint.
type CheckpointInfo struct {
	Version       int64 `json:"version"`
	Size          int64 `json:"size"`
	SizeInBytes   int64 `json:"sizeInBytes"`
	NumOfAddFiles int64 `json:"numOfAddFiles"`
}

// CheckpointRowGroupRows bounds the rows of one checkpoint row group, so
// that no column chunk of a checkpoint of millions of files grows past what
// readers (protolake's included) accept in one piece. Spark writes row
// groups of about 128 MiB; 50,000 actions of protolake's tables are about
// 10-25 MiB.
const CheckpointRowGroupRows = 50_000

// checkpointRowGroupRows is CheckpointRowGroupRows; tests lower it.
var checkpointRowGroupRows = CheckpointRowGroupRows

// CheckpointRowGroupBytes bounds a checkpoint row group by the size of its
// actions' strings (paths, statistics, partition values, tags) as well:
// the Parquet writer holds a row group's values until the group is
// complete, so this, not the checkpoint's size, bounds the memory of
// writing one. 50,000 files with 3 KB of statistics each would be 150 MB.
const CheckpointRowGroupBytes = 32 << 20

// checkpointRowGroupBytes is CheckpointRowGroupBytes; tests lower it.
var checkpointRowGroupBytes = CheckpointRowGroupBytes

// checkpointBatch is how many rows are handed to the Parquet writer at a
// time: the rows of a checkpoint are never all materialized at once.
const checkpointBatch = 1024

// EncodeCheckpoint renders snapshot s as a classic single-file checkpoint:
// protocol, metaData, txns, live domain metadata, every active file (with
// dataChange false) and the tombstones deleted after tombstoneCutoff
// (older ones have expired and are dropped, as Spark does). Row groups hold
// at most CheckpointRowGroupRows rows and about CheckpointRowGroupBytes of
// strings.
func EncodeCheckpoint(s *Snapshot, tombstoneCutoff time.Time) ([]byte, CheckpointInfo, error) {
	var buf bytes.Buffer
	info, err := WriteCheckpoint(&buf, s, tombstoneCutoff)
	if err != nil {
		return nil, info, err
	}
	return buf.Bytes(), info, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteCheckpoint is EncodeCheckpoint writing to w as it encodes: memory
// stays bounded by one row group, whatever the number of files.
func WriteCheckpoint(w io.Writer, s *Snapshot, tombstoneCutoff time.Time) (CheckpointInfo, error) {
	info := CheckpointInfo{Version: s.Version()}
	cw := &countingWriter{w: w}
	pw := parquet.NewGenericWriter[cpRow](cw, CheckpointSchema(), parquet.Compression(&snappy.Codec{}),
		parquet.KeyValueMetadata("org.apache.spark.version", "3.5.0"),
		parquet.CreatedBy("protolake", "", ""),
		parquet.MaxRowsPerRowGroup(int64(checkpointRowGroupRows)))
	rows := make([]cpRow, 0, checkpointBatch)
	sizes := make([]int, 0, checkpointBatch)
	inGroup, groupBytes := 0, 0
	flush := func() error {
		for done := 0; done < len(rows); {
			// The rows up to the first bound this batch reaches.
			n := 0
			for done+n < len(rows) && inGroup+n < checkpointRowGroupRows && groupBytes < checkpointRowGroupBytes {
				groupBytes += sizes[done+n]
				n++
			}
			if _, err := pw.Write(rows[done : done+n]); err != nil {
				return err
			}
			done += n
			inGroup += n
			if inGroup == checkpointRowGroupRows || groupBytes >= checkpointRowGroupBytes {
				if err := pw.Flush(); err != nil {
					return err
				}
				inGroup, groupBytes = 0, 0
			}
		}
		clear(rows)
		rows, sizes = rows[:0], sizes[:0]
		return nil
	}
	emit := func(r cpRow) error {
		rows = append(rows, r)
		sizes = append(sizes, r.size())
		info.Size++
		if len(rows) == checkpointBatch {
			return flush()
		}
		return nil
	}
	fail := func(err error) (CheckpointInfo, error) {
		return info, fmt.Errorf("encode checkpoint: %w", err)
	}
	p := s.Protocol()
	cpP := &cpProtocol{MinReaderVersion: ptr(int32(p.MinReaderVersion)), MinWriterVersion: ptr(int32(p.MinWriterVersion))}
	if p.ReaderFeatures != nil {
		cpP.ReaderFeatures = strList(p.ReaderFeatures)
	}
	if p.WriterFeatures != nil {
		cpP.WriterFeatures = strList(p.WriterFeatures)
	}
	if err := emit(cpRow{Protocol: cpP}); err != nil {
		return fail(err)
	}
	md := s.Metadata()
	format := md.Format
	if format.Provider == "" {
		format.Provider = "parquet"
	}
	if err := emit(cpRow{MetaData: &cpMetadata{
		ID:               ptr(md.ID),
		Name:             optString(md.Name),
		Description:      optString(md.Description),
		Format:           &cpFormat{Provider: ptr(format.Provider), Options: strMap(format.Options)},
		SchemaString:     ptr(md.SchemaString),
		PartitionColumns: strList(md.PartitionColumns),
		Configuration:    strMap(md.Configuration),
		CreatedTime:      md.CreatedTime,
	}}); err != nil {
		return fail(err)
	}
	appIDs := keys(s.txns)
	sort.Strings(appIDs)
	for _, id := range appIDs {
		tx := s.txns[id]
		if err := emit(cpRow{Txn: &cpTxn{AppID: ptr(tx.AppID), Version: ptr(tx.Version), LastUpdated: tx.LastUpdated}}); err != nil {
			return fail(err)
		}
	}
	for _, d := range s.DomainMetadata() {
		var dm struct {
			Domain        string `json:"domain"`
			Configuration string `json:"configuration"`
			Removed       bool   `json:"removed"`
		}
		if err := json.Unmarshal(d.JSON, &dm); err != nil {
			return info, fmt.Errorf("domainMetadata: %w", err)
		}
		if err := emit(cpRow{DomainMetadata: &cpDomainMetadata{Domain: ptr(dm.Domain), Configuration: ptr(dm.Configuration), Removed: ptr(false)}}); err != nil {
			return fail(err)
		}
	}
	for _, a := range s.sortedFiles() {
		var tags map[string]*string
		if a.Tags != nil {
			tags = strMap(a.Tags)
		}
		pv := a.PartitionValues
		if pv == nil {
			pv = map[string]*string{}
		}
		if err := emit(cpRow{Add: &cpAdd{
			Path:             ptr(a.Path),
			PartitionValues:  pv,
			Size:             ptr(a.Size),
			ModificationTime: ptr(a.ModificationTime),
			DataChange:       ptr(false),
			Tags:             tags,
			Stats:            optString(a.Stats),
		}}); err != nil {
			return fail(err)
		}
		info.NumOfAddFiles++
	}
	cut := tombstoneCutoff.UnixMilli()
	for _, r := range s.sortedTombstones() {
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cut {
			continue
		}
		if err := emit(cpRow{Remove: &cpRemove{
			Path:                 ptr(r.Path),
			DeletionTimestamp:    r.DeletionTimestamp,
			DataChange:           ptr(false),
			ExtendedFileMetadata: r.ExtendedFileMetadata,
			PartitionValues:      r.PartitionValues,
			Size:                 r.Size,
		}}); err != nil {
			return fail(err)
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	info.SizeInBytes = cw.n
	return info, nil
}

// HasCheckpoint reports whether a classic checkpoint of version v exists.
// A store that can describe a key (storage.Statter) is asked for it; any
// other has the checkpoint opened (and closed unread).
func (t *Table) HasCheckpoint(ctx context.Context, v int64) (bool, error) {
	if st, ok := t.store.(storage.Statter); ok {
		_, err := st.Stat(ctx, CheckpointKey(v))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, storage.ErrNotExist):
			return false, nil
		case !errors.Is(err, errors.ErrUnsupported):
			return false, fmt.Errorf("look for %s: %w", CheckpointKey(v), err)
		}
	}
	rc, err := t.store.Get(ctx, CheckpointKey(v))
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for %s: %w", CheckpointKey(v), err)
	}
	rc.Close()
	return true, nil
}

// Checkpoint writes a classic checkpoint for version v (Latest for the
// newest) and updates _last_checkpoint. The checkpoint is written with a
// plain Put, streamed as it is encoded (bounded memory on every store, a
// multipart upload on S3), and replaces a checkpoint of v that is already
// there with an equivalent one: every complete checkpoint of a version holds
// the same state, and a Put is all-or-nothing, so readers see one whole
// checkpoint or the other. Callers that want to skip existing checkpoints
// check HasCheckpoint first (protolake checkpoint does).
func (t *Table) Checkpoint(ctx context.Context, v int64) (CheckpointInfo, error) {
	s, err := t.SnapshotAt(ctx, v)
	if err != nil {
		return CheckpointInfo{}, fmt.Errorf("checkpoint: %w", err)
	}
	return t.writeCheckpoint(ctx, s)
}

func (t *Table) writeCheckpoint(ctx context.Context, s *Snapshot) (CheckpointInfo, error) {
	// Not PutIfAbsent: S3's conditional put is one PutObject of the whole
	// object in memory, and a checkpoint needs no exclusivity (see
	// Checkpoint and docs/log-format.md).
	info, err := t.streamCheckpoint(ctx, s, t.store.Put)
	if err != nil {
		return info, err
	}
	// Never move the hint backwards.
	if lc, err := ReadLastCheckpoint(ctx, t.store); err == nil && lc.Version > info.Version {
		return info, nil
	}
	hint, _ := json.Marshal(info)
	if err := t.store.Put(ctx, lastCheckpointKey, bytes.NewReader(hint)); err != nil {
		return info, fmt.Errorf("checkpoint: write %s: %w", lastCheckpointKey, err)
	}
	t.cfg.Logger.Info("wrote checkpoint", "version", info.Version, "actions", info.Size, "files", info.NumOfAddFiles)
	return info, nil
}

// streamCheckpoint encodes the checkpoint of s straight into write (a
// pipe), so memory holds one row group and whatever write buffers (on S3,
// one upload part), not the file. An encoding error fails the write, so
// nothing is stored.
func (t *Table) streamCheckpoint(ctx context.Context, s *Snapshot, write func(ctx context.Context, key string, r io.Reader) error) (CheckpointInfo, error) {
	retention := durationProp(s.Metadata().Configuration, PropDeletedFileRetentionDuration, DefaultDeletedFileRetention)
	key := CheckpointKey(s.Version())
	pr, pw := io.Pipe()
	type encoded struct {
		info CheckpointInfo
		err  error
	}
	enc := make(chan encoded, 1)
	go func() {
		info, err := WriteCheckpoint(pw, s, t.cfg.Now().Add(-retention))
		pw.CloseWithError(err)
		enc <- encoded{info, err}
	}()
	err := write(ctx, key, pr)
	pr.CloseWithError(errWriteEnded) // unblocks the encoder if the write stopped reading
	e := <-enc
	info := e.info
	if e.err != nil && !errors.Is(e.err, errWriteEnded) {
		return info, fmt.Errorf("checkpoint version %d: %w", s.Version(), e.err)
	}
	if e.err != nil && err == nil {
		return info, fmt.Errorf("checkpoint version %d: the store took the checkpoint before it was complete", s.Version())
	}
	if err != nil {
		return info, fmt.Errorf("checkpoint: write %s: %w", key, err)
	}
	return info, nil
}

// errWriteEnded tells the checkpoint encoder that the store stopped reading.
var errWriteEnded = errors.New("checkpoint write ended")

// checkpointAndClean runs after a commit at a checkpoint interval; base is
// a snapshot at or below v to advance from.
func (t *Table) checkpointAndClean(ctx context.Context, base *Snapshot, v int64) error {
	s, err := t.advanceTo(ctx, base, v)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := t.writeCheckpoint(ctx, s); err != nil {
		return err
	}
	if t.cfg.DisableLogCleanup || s.Metadata().Configuration[PropEnableExpiredLogCleanup] == "false" || !t.cleanupDue() {
		return nil
	}
	retention := durationProp(s.Metadata().Configuration, PropLogRetentionDuration, DefaultLogRetention)
	if _, err := t.cleanupLogBefore(ctx, t.cfg.Now().Add(-retention), s.Version()); err != nil {
		return fmt.Errorf("log cleanup: %w", err)
	}
	return nil
}

// advanceTo returns the snapshot at version v, replaying only the commits
// after base when it can.
func (t *Table) advanceTo(ctx context.Context, base *Snapshot, v int64) (*Snapshot, error) {
	if base == nil || base.version > v {
		return t.SnapshotAt(ctx, v)
	}
	if base.version == v {
		return base, nil
	}
	l, err := listLogFrom(ctx, t.store, base.version)
	if err != nil {
		return nil, err
	}
	if l.latest < v || firstMissing(l, base.version+1, v) >= 0 {
		return t.SnapshotAt(ctx, v)
	}
	n := base.clone()
	if err := replayCommits(ctx, t.store, base.version+1, v, n, 0); err != nil {
		return nil, err
	}
	n.version = v
	return n.freeze(), nil
}
