package writer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/internal/partpath"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage"
)

// Kafka holds the coordinates of a record, written to the `_kafka` column
// and used for Kafka-timestamp partitions.
type Kafka struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's timestamp.
	Timestamp time.Time
}

// File describes a finished data file, stored with Put.
type File struct {
	// Path is the key in the store, relative to the table root:
	// "<partition path>/part-<uuid>.c000.zstd.parquet", partition values
	// Hive-escaped ("a/b" → "a%2Fb"). A Delta add action's path is a URI:
	// escape this key for it (the '%' itself becomes "%25").
	Path string
	// Size is the file's length in bytes.
	Size int64
	// PartitionValues maps each partition column to its value in Delta's
	// serialization (dates "2006-01-02", timestamps "2006-01-02 15:04:05",
	// numbers in decimal); nil means null, which an empty string or bytes
	// value also becomes.
	PartitionValues map[string]*string
	// Stats are the Delta statistics of the file.
	Stats *Stats
	// Rows is the number of rows (= Stats.NumRecords).
	Rows int64
	// ModificationTime is when the file was written.
	ModificationTime time.Time
}

// Writer decodes protobuf messages of one table into per-partition
// buffers and writes full buffers as Parquet files. A Writer is not safe for
// concurrent use; run one per goroutine.
type Writer struct {
	cfg    Config
	plan   *schema.Plan
	prog   *mprog
	layout *layout
	store  storage.Store
	enc    encoder
	dec    decoder

	files    map[string]*openFile
	order    []*openFile // open files in creation order (deterministic flushing)
	finished []File
	keyBuf   []byte
	pvalBuf  []byte
	pvalPos  []pvalPos
	// last is the file the last routed record went to, with its partition
	// values (route); nil when that file is gone.
	last      *openFile
	lastVals  []byte
	lastPos   []pvalPos
	ptime     []timeText // per partition column: the last day or hour formatted
	now       func() time.Time
	peakRows  int64
	peakBuf   int64
	peakChunk int64
	spares    []spare // finished files' buffers, reused by the next opens (recycle)
	spareCap  int     // the spares' capBytes in all
	// direct: records decode in one pass (decoder.direct) when they can,
	// as the table's program allows it and no partition value comes from
	// the message (the row's file must be known before its first field is
	// written).
	direct bool
	// nested: when a record is decoded in two passes from the start (not
	// direct), its message fields still decode in one pass each.
	nested bool
	// records counts the records Write began (column.rec).
	records uint64
}

// spare is a finished file's buffers, emptied, and their capBytes.
type spare struct {
	f   *openFile
	cap int
}

// recycle keeps f's buffers for a next file. A commit's Flush finishes
// every open file and the next records open the same partitions again:
// with one spare only, all but one of a day-partitioned table's ten files
// regrew every buffer from nothing each commit. The spares' capacity stays
// within Config.MaxBytes (a full file's) in all; past that, f replaces
// smaller spares, and one spare is always kept (the largest: the last file
// finished is often a partition's few late rows), as before the pool.
// HeldBytes counts the spares, so a process-wide memory limit bounds them
// (FlushLargest drops them first). lent says the store kept the file's
// segments (SegmentStore): the columns' chunk buffers are the store's now
// and the spare goes without them.
func (w *Writer) recycle(f *openFile, lent bool) {
	for _, c := range f.cols {
		if lent {
			c.chunk = nil
		}
		c.reset(w.enc.keep)
	}
	*f = openFile{cols: f.cols, arrNull: f.arrNull}
	clear(f.arrNull)
	n := f.capBytes()
	w.spares = append(w.spares, spare{f: f, cap: n})
	w.spareCap += n
	w.settleSpares()
}

// settleSpares drops the smallest spares while they hold more than
// Config.MaxBytes of capacity in all. The largest spare is never dropped.
func (w *Writer) settleSpares() {
	for len(w.spares) > 1 && int64(w.spareCap) > w.cfg.MaxBytes {
		w.takeSpare(w.spareAt(false))
	}
}

// spareAt returns the index of the largest spare (the smallest when not
// largest); there must be one.
func (w *Writer) spareAt(largest bool) int {
	k := 0
	for i, s := range w.spares {
		if largest && s.cap > w.spares[k].cap || !largest && s.cap < w.spares[k].cap {
			k = i
		}
	}
	return k
}

// takeSpare removes spare i from the spares and returns its file.
func (w *Writer) takeSpare(i int) *openFile {
	s := w.spares[i]
	w.spares = slices.Delete(w.spares, i, i+1)
	w.spareCap -= s.cap
	return s.f
}

// SegmentStore is a storage.Store that takes a data file as the segments
// the Writer encoded it into, and keeps them: the Writer never reads or
// writes them again (it opens its next files with other buffers), so the
// store may upload them in the background without copying the file. segs
// hold size bytes in all, in order. A Writer whose store is a SegmentStore
// calls PutSegments instead of Put for its data files.
type SegmentStore interface {
	PutSegments(ctx context.Context, key string, segs [][]byte, size int64) error
}

// New returns a Writer for the table described by plan, whose data files
// have the Parquet schema root (schema.Table's Parquet schema; its leaf
// columns must be plan.Columns in order), storing files in store.
func New(cfg Config, plan *schema.Plan, root parquet.Node, store storage.Store) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("writer config: %w", err)
	}
	if plan == nil || plan.Root == nil || root == nil || store == nil {
		return nil, errors.New("writer: plan, Parquet schema and store are required")
	}
	cfg = cfg.withDefaults()
	l, err := newLayout(root, cfg.StatsLeafLimit)
	if err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	if len(l.cols) != len(plan.Columns) {
		return nil, fmt.Errorf("writer: the Parquet schema has %d leaf columns, the plan %d", len(l.cols), len(plan.Columns))
	}
	for i, c := range plan.Columns {
		if !slices.Equal(c.Path, l.cols[i].path) {
			return nil, fmt.Errorf("writer: leaf column %d is %v in the Parquet schema but %v in the plan", i, l.cols[i].path, c.Path)
		}
		if c.MaxDefLevel != int(l.cols[i].maxDef) || c.MaxRepLevel != int(l.cols[i].maxRep) {
			return nil, fmt.Errorf("writer: column %v: levels differ between plan and Parquet schema", c.Path)
		}
		if cfg.NoDictionary {
			l.cols[i].dict = false
		}
	}
	prog, err := compilePlan(plan)
	if err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	cd, err := newCodec(cfg.Compression, cfg.ZstdLevel)
	if err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	w := &Writer{
		cfg: cfg, plan: plan, prog: prog, layout: l, store: store,
		files: map[string]*openFile{}, now: time.Now,
	}
	w.enc.codec = cd
	w.enc.keep = max(1<<20, 4*cfg.PageBytes)
	w.dec.root = prog
	w.direct, w.nested = prog.direct, true
	for _, p := range plan.Partitions {
		w.direct = w.direct && p.KafkaTimestamp
	}
	return w, nil
}

// Write decodes one message (its wire bytes) with its Kafka coordinates and
// appends it as a row to its partition's buffer. msg is not retained. A
// message that cannot be decoded returns a *DecodeError and leaves no trace;
// the Writer stays usable. When the row fills its buffer (MaxRows,
// MaxBytes) or the buffer is older than MaxAge, the file is written to the
// store; finished files are returned by Flush and TakeFinished. Any other
// error (storage) is returned wrapped; the failed file's rows are lost and
// the caller must restart from its last commit.
func (w *Writer) Write(ctx context.Context, msg []byte, k Kafka) error {
	d := &w.dec
	defer d.release(w.enc.keep)
	d.buf = msg
	d.start(w.cfg.MaxRecordBytes)
	w.records++
	var f *openFile
	if w.direct {
		var err error
		if f, err = w.writeDirect(msg, k); err != nil {
			return err
		}
	}
	if f == nil {
		root := w.prog
		fr := d.pushFrame(root)
		if err := d.scan(root, fr, 0, len(msg), 0, true, false, 1); err != nil {
			return err
		}
		var err error
		if f, err = w.route(fr, k); err != nil {
			return err
		}
		d.cols = f.cols
		if err := w.emitNested(f, fr); err != nil {
			return err
		}
	}
	if kc := w.plan.Kafka; kc != nil {
		d.cols[kc.Topic].byteArray(0, 2, unsafeString(k.Topic))
		d.cols[kc.Partition].int32(0, 2, k.Partition)
		d.cols[kc.Offset].int64(0, 2, k.Offset)
		d.cols[kc.Timestamp].int64(0, 2, k.Timestamp.UnixMicro())
	}
	if u := w.plan.Unknown; u >= 0 {
		if len(d.unknown) > 0 {
			d.cols[u].byteArray(0, 1, d.unknown)
		} else {
			d.cols[u].null(0, 0)
		}
	}
	if f.rows == 0 {
		f.created = w.now().UnixNano()
	}
	if err := f.commitRow(w, len(msg)); err != nil {
		return w.abandon(f, err)
	}
	// The size is summed over the columns every pageCheckRows rows, like
	// the page sizes; a file overshoots MaxBytes by a few rows at most.
	if (w.cfg.MaxRows > 0 && f.rows >= w.cfg.MaxRows) ||
		((f.rows&(pageCheckRows-1) == 0 || len(msg) >= w.cfg.PageBytes/4) && f.bufferedBytes() >= w.cfg.MaxBytes) ||
		(w.cfg.MaxAge > 0 && w.now().UnixNano()-f.created >= int64(w.cfg.MaxAge)) {
		return w.finishFile(ctx, f)
	}
	return nil
}

// writeDirect decodes msg into its file in one pass and returns the file.
// It returns a nil file, with nothing of msg left in any column, when the
// record must be decoded in two passes: when the pass fell back
// (errFallback) or failed, so that the error is the one the two passes
// give. A record over Config.MaxRecordBytes is the exception: decoding it
// again would allocate its buffers twice, so its error is returned.
func (w *Writer) writeDirect(msg []byte, k Kafka) (*openFile, error) {
	d := &w.dec
	f, err := w.route(-1, k) // the partition values are the Kafka timestamp's
	if err != nil {
		return nil, nil // the two passes route again and fail the same way
	}
	d.cols, d.fast = f.cols, true
	err = d.direct(w.prog, 0, len(msg), 0, true, 1)
	d.fast = false
	if err != nil {
		f.rollbackRow(w.enc.keep)
		if errors.Is(err, ErrRecordTooLarge) {
			return nil, err
		}
		d.start(w.cfg.MaxRecordBytes)
		d.twoPass++
		return nil, nil
	}
	return f, nil
}

// emitNested is phase two for the table's message: its fields are written
// from the frame's slots, and, when the record was not tried in one pass
// (a table partitioned by a field), its message fields in one pass each
// (decoder.direct). If that falls back or fails, the row is rolled back and
// written again with every level in two passes, which gives the error.
func (w *Writer) emitNested(f *openFile, fr int) error {
	d := &w.dec
	d.fast = w.nested && !w.direct
	// What phase one left, for a second phase two.
	occs, slots, maps, cost := len(d.occs), len(d.slots), len(d.mapStack), d.cost
	err := d.emit(w.prog, fr, 0, 1)
	if err != nil && d.fast && !errors.Is(err, ErrRecordTooLarge) {
		f.rollbackRow(w.enc.keep)
		d.occs, d.slots, d.mapStack, d.cost, d.fast = d.occs[:occs], d.slots[:slots], d.mapStack[:maps], cost, false
		d.twoPass++
		err = d.emit(w.prog, fr, 0, 1)
	}
	d.fast = false
	if err != nil {
		f.rollbackRow(w.enc.keep)
	}
	return err
}

// start empties the decoder's per-record state.
func (d *decoder) start(maxCost int64) {
	d.slots = d.slots[:0]
	d.occs = d.occs[:0]
	d.unknown = d.unknown[:0]
	d.mapStack = d.mapStack[:0]
	d.cost, d.maxCost = 0, maxCost
}

// release drops the decoder's hold on the message (msg is not retained)
// and the scratch buffers a large record grew beyond keep bytes: they are
// not buffered rows, so memory_limit does not see them.
func (d *decoder) release(keep int) {
	d.buf = nil
	sz := int(unsafe.Sizeof(slot{}))
	if cap(d.slots)*sz > keep {
		d.slots = nil
	}
	if cap(d.occs)*int(unsafe.Sizeof(occ{})) > keep {
		d.occs = nil
	}
	d.unknown, d.scratch, d.jsonBuf = trim(d.unknown, keep), trim(d.scratch, keep), trim(d.jsonBuf, keep)
}

func (w *Writer) abandon(f *openFile, err error) error {
	w.drop(f)
	return fmt.Errorf("write row: %w", err)
}

func (w *Writer) drop(f *openFile) {
	if w.last == f {
		w.last = nil
	}
	delete(w.files, f.key)
	w.order = slices.DeleteFunc(w.order, func(o *openFile) bool { return o == f })
}

// finishFile writes f to the store and records its metadata.
func (w *Writer) finishFile(ctx context.Context, f *openFile) error {
	w.drop(f)
	if f.rows == 0 {
		return nil
	}
	if b := f.bufferedBytes(); b > w.peakBuf {
		w.peakBuf, w.peakRows, w.peakChunk = b, f.rows, 0
		for _, c := range f.cols {
			w.peakChunk += int64(c.chunkLen())
		}
	}
	segs, size, err := f.finish(w)
	if err != nil {
		return fmt.Errorf("encode file: %w", err)
	}
	name := "part-" + uuid.NewString() + ".c000." + string(w.cfg.Compression) + ".parquet"
	if w.cfg.Compression == CompressionNone {
		name = "part-" + uuid.NewString() + ".c000.parquet"
	}
	path := name
	if f.key != "" {
		path = partpath.Dir(f.key) + "/" + name
	}
	ss, lend := w.store.(SegmentStore)
	if lend {
		err = ss.PutSegments(ctx, path, segs, size)
	} else {
		err = w.store.Put(ctx, path, SegmentsReader(segs, size))
	}
	if err != nil {
		return fmt.Errorf("store data file %s: %w", path, err)
	}
	defer w.recycle(f, lend)
	pv := map[string]*string{}
	for i, p := range w.plan.Partitions {
		pv[p.Name] = f.values[i]
	}
	w.finished = append(w.finished, File{
		Path: path, Size: size, PartitionValues: pv, Stats: w.fileStats(f), Rows: f.rows,
		ModificationTime: w.now(),
	})
	return nil
}

// Flush writes every open buffer as a file and returns all files finished
// since the last Flush or TakeFinished, in the order they were finished.
// Call it before a commit, on rebalance and at shutdown.
func (w *Writer) Flush(ctx context.Context) ([]File, error) {
	for len(w.order) > 0 {
		if err := w.finishFile(ctx, w.order[0]); err != nil {
			return nil, err
		}
	}
	return w.TakeFinished(), nil
}

// FlushExpired writes the buffers whose first row is older than MaxAge
// (none when MaxAge is 0).
func (w *Writer) FlushExpired(ctx context.Context) error {
	if w.cfg.MaxAge <= 0 {
		return nil
	}
	now := w.now().UnixNano()
	for _, f := range slices.Clone(w.order) {
		if now-f.created >= int64(w.cfg.MaxAge) {
			if err := w.finishFile(ctx, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// FlushLargest writes the largest buffers as files until the Writer holds
// at most target bytes (HeldBytes), for a process-wide memory limit.
// Memory is short, so the spares go first: all but the largest, and the
// largest too unless it fits in target; of the finished files' buffers
// only what fits in target is kept for the next files.
func (w *Writer) FlushLargest(ctx context.Context, target int64) error {
	for len(w.spares) > 1 {
		w.takeSpare(w.spareAt(false))
	}
	w.trimSpares(target)
	for len(w.order) > 0 && w.openHeld() > target {
		sort.SliceStable(w.order, func(i, j int) bool { return w.order[i].heldBytes() > w.order[j].heldBytes() })
		if err := w.finishFile(ctx, w.order[0]); err != nil {
			w.trimSpares(target)
			return err
		}
	}
	w.trimSpares(target)
	return nil
}

// trimSpares drops the smallest spares while the Writer holds more than
// target bytes.
func (w *Writer) trimSpares(target int64) {
	for len(w.spares) > 0 && w.HeldBytes() > target {
		w.takeSpare(w.spareAt(false))
	}
}

// TakeFinished returns the files finished since the last call (by MaxRows,
// MaxBytes, MaxAge or FlushLargest) and forgets them.
func (w *Writer) TakeFinished() []File {
	out := w.finished
	w.finished = nil
	return out
}

// BufferedBytes is the bytes in open buffers: compressed pages, raw
// current pages and dictionaries, by their length (what the files are
// cut by). HeldBytes is the memory they take.
func (w *Writer) BufferedBytes() int64 {
	var n int64
	for _, f := range w.order {
		n += f.bufferedBytes()
	}
	return n
}

// HeldBytes is the memory the Writer's buffers take, for a process-wide
// memory limit: the open files' buffers by their capacity (at least
// BufferedBytes; a file opened with a spare's buffers holds their capacity
// from its first row) and the spares' capacity.
func (w *Writer) HeldBytes() int64 {
	return w.openHeld() + int64(w.spareCap)
}

// openHeld is the open files' part of HeldBytes.
func (w *Writer) openHeld() int64 {
	var n int64
	for _, f := range w.order {
		n += f.heldBytes()
	}
	return n
}

// BufferedRows is the number of rows in open buffers.
func (w *Writer) BufferedRows() int64 {
	var n int64
	for _, f := range w.order {
		n += f.rows
	}
	return n
}

// OpenFiles is the number of open partition buffers.
func (w *Writer) OpenFiles() int { return len(w.order) }

// NewTable is New for a derived table: New(cfg, t.Plan, t.Parquet, store).
func NewTable(cfg Config, t *schema.Table, store storage.Store) (*Writer, error) {
	if t == nil {
		return nil, errors.New("writer: table is required")
	}
	return New(cfg, t.Plan, t.Parquet, store)
}

// Discard drops every open buffer and every finished file not yet taken,
// without writing anything: for when this instance lost its Kafka partitions
// and another one will write the rows again. Files already stored stay in
// the store unreferenced (vacuum removes them).
func (w *Writer) Discard() {
	for _, f := range w.order {
		delete(w.files, f.key)
	}
	w.last = nil
	w.order = w.order[:0]
	w.finished = nil
}
