package compact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/parquetmeta"
	"github.com/protolake/protolake/internal/partpath"
)

// output is one new file and the inputs whose rows it holds.
type output struct {
	add    commitlog.Add
	key    string
	inputs []commitlog.Add
	rows   int64
}

// rewriter turns bins into new files in one store.
type rewriter struct {
	store      commitlog.Store
	cfg        Config
	partPath   string
	partValues map[string]*string
	types      map[string]string
	// onInput is called after each input file was copied.
	onInput func(bytes int64)
}

// rewriteBin writes the rows of a bin as new files (one, or one per run of
// inputs with the same Parquet schema) and returns them. On error the files
// already written are returned too, so the caller can delete them.
func (rw *rewriter) rewriteBin(ctx context.Context, b Bin) (outs []output, err error) {
	var (
		cur    *fileBuilder
		curIns []commitlog.Add
	)
	defer func() {
		if cur != nil && err != nil {
			cur.abort(err) // its upload leaves nothing behind
		}
	}()
	finish := func() error {
		if cur == nil {
			return nil
		}
		o, err := rw.finish(ctx, cur, curIns)
		cur, curIns = nil, nil
		if err != nil {
			return err
		}
		outs = append(outs, o)
		return nil
	}
	for _, in := range b.Files {
		if err := ctx.Err(); err != nil {
			return outs, err
		}
		data, err := rw.read(ctx, in)
		if err != nil {
			return outs, err
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)), parquet.SkipBloomFilters(true))
		if err != nil {
			return outs, fmt.Errorf("read parquet file %s: %w", in.Path, err)
		}
		if cur != nil && !parquet.EqualNodes(cur.schema, f.Schema()) {
			if err := finish(); err != nil {
				return outs, err
			}
		}
		if cur == nil {
			if cur, err = rw.newBuilder(ctx, f.Schema()); err != nil {
				return outs, err
			}
		}
		if err := cur.copyFile(f, in.Path); err != nil {
			return outs, err
		}
		curIns = append(curIns, in)
		if rw.onInput != nil {
			rw.onInput(in.Size)
		}
	}
	return outs, finish()
}

// read loads one input file into one buffer of its logged size (+1 byte to
// see that it ends there). Inputs are smaller than the target size, which
// bounds the memory; a file larger than its logged size is refused.
func (rw *rewriter) read(ctx context.Context, in commitlog.Add) ([]byte, error) {
	rc, err := rw.store.Get(ctx, storeKey(in.Path))
	if err != nil {
		return nil, fmt.Errorf("read data file %s: %w", in.Path, err)
	}
	defer rc.Close()
	limit := in.Size
	if limit <= 0 || limit > rw.cfg.TargetSize {
		limit = rw.cfg.TargetSize
	}
	buf := make([]byte, limit+1)
	n, err := io.ReadFull(rc, buf)
	switch {
	case err == nil:
		return nil, fmt.Errorf("read data file %s: larger than its logged size %d (or the target size); refusing to compact it", in.Path, in.Size)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return buf[:n], nil
	}
	return nil, fmt.Errorf("read data file %s: %w", in.Path, err)
}

// fileBuilder writes one new file, streamed to the store as it is encoded:
// the Parquet writer writes into a pipe that a store.Put started with the
// builder reads (S3 uploads it in parts), so memory holds the row group
// being encoded, not the file.
type fileBuilder struct {
	schema  *parquet.Schema
	key     string
	out     *io.PipeWriter
	size    int64      // bytes written to out
	putDone chan error // the result of the upload, sent once
	putErr  error      // that result, once received
	waited  bool
	w       *parquet.GenericWriter[any]
	sortBuf *parquet.Buffer // with SortBy: every row, sorted at the end
	pending int64           // input bytes since the last row group flush
	// pendingFiles are the inputs (held in memory) of the next row group.
	pendingFiles []*parquet.File
	pendingNames []string
	rgBytes      int64
	rows         int64
}

func (rw *rewriter) newBuilder(ctx context.Context, s *parquet.Schema) (*fileBuilder, error) {
	// Checked before the upload starts: nothing would end it.
	var sortCol string
	if rw.cfg.SortBy != "" {
		col, ok := findLeaf(s, rw.cfg.SortBy)
		if !ok {
			return nil, fmt.Errorf("--sort-by %s: no such top-level primitive column in the data files (columns: %s)", rw.cfg.SortBy, strings.Join(leafNames(s), ", "))
		}
		sortCol = col
	}
	name := "part-" + uuid.NewString() + ".c000.zstd.parquet"
	key := name
	if rw.partPath != "" {
		key = partpath.Dir(rw.partPath) + "/" + name
	}
	pr, pw := io.Pipe()
	fb := &fileBuilder{schema: s, key: key, out: pw, putDone: make(chan error, 1), rgBytes: rw.cfg.RowGroupBytes}
	go func() {
		err := rw.store.Put(ctx, key, pr)
		pr.CloseWithError(fmt.Errorf("upload ended: %w", err)) // a failed upload fails the writes
		fb.putDone <- err
	}()
	out := outputSchema(s)
	fb.w = parquet.NewGenericWriter[any](writerFunc(func(p []byte) (int, error) {
		n, err := pw.Write(p)
		fb.size += int64(n)
		return n, err
	}), out,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.CreatedBy("protolake", "compact", ""),
		parquet.KeyValueMetadata(parquetmeta.SparkVersionKey, parquetmeta.SparkVersion),
	)
	if sortCol != "" {
		fb.sortBuf = parquet.NewBuffer(out, parquet.SortingRowGroupConfig(parquet.SortingColumns(parquet.NullsFirst(parquet.Ascending(sortCol)))))
	}
	return fb, nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// abort ends the upload with err, if it still runs: the store keeps
// nothing of it.
func (fb *fileBuilder) abort(err error) {
	fb.out.CloseWithError(err)
	fb.wait()
}

// wait returns the upload's result.
func (fb *fileBuilder) wait() error {
	if !fb.waited {
		fb.putErr, fb.waited = <-fb.putDone, true
	}
	return fb.putErr
}

func findLeaf(s *parquet.Schema, name string) (string, bool) {
	for _, f := range s.Fields() {
		if strings.EqualFold(f.Name(), name) && f.Leaf() && !f.Repeated() {
			return f.Name(), true
		}
	}
	return "", false
}

func leafNames(s *parquet.Schema) []string {
	var out []string
	for _, f := range s.Fields() {
		if f.Leaf() && !f.Repeated() {
			out = append(out, f.Name())
		}
	}
	return out
}

// copyFile adds the rows of f to the file. Without sorting, inputs are
// kept open until RowGroupBytes of them are pending, then written as one
// output row group column by column (parquet-go re-encodes each column
// across the inputs without assembling rows); with SortBy, rows go to the
// sort buffer.
func (fb *fileBuilder) copyFile(f *parquet.File, name string) error {
	if fb.sortBuf != nil {
		for i, rg := range f.RowGroups() {
			rows := rg.Rows()
			n, err := parquet.CopyRows(fb.sortBuf, rows)
			rows.Close()
			if err != nil {
				return fmt.Errorf("copy row group %d of %s: %w", i, name, err)
			}
			fb.rows += n
		}
		return nil
	}
	fb.pendingFiles = append(fb.pendingFiles, f)
	fb.pendingNames = append(fb.pendingNames, name)
	fb.pending += f.Size()
	if fb.pending >= fb.rgBytes {
		return fb.flushPending()
	}
	return nil
}

// flushPending writes the pending inputs as one row group.
func (fb *fileBuilder) flushPending() error {
	if len(fb.pendingFiles) == 0 {
		return nil
	}
	var rgs []parquet.RowGroup
	for _, f := range fb.pendingFiles {
		for _, rg := range f.RowGroups() {
			if rg.NumRows() > 0 {
				rgs = append(rgs, rg)
			}
		}
	}
	names := strings.Join(fb.pendingNames, ", ")
	fb.pendingFiles, fb.pendingNames, fb.pending = nil, nil, 0
	if len(rgs) == 0 {
		return nil
	}
	merged, err := parquet.MergeRowGroups(rgs, fb.w.Schema())
	if err != nil {
		return fmt.Errorf("merge row groups of %s: %w", names, err)
	}
	n, err := fb.w.WriteRowGroup(merged)
	if err != nil {
		return fmt.Errorf("copy rows of %s: %w", names, err)
	}
	fb.rows += n
	return nil
}

// close finishes the Parquet file and waits for its upload.
func (fb *fileBuilder) close() error {
	if err := fb.flushPending(); err != nil {
		return err
	}
	if fb.sortBuf != nil {
		sort.Sort(fb.sortBuf)
		if _, err := fb.w.WriteRowGroup(fb.sortBuf); err != nil {
			return fmt.Errorf("write sorted rows: %w", err)
		}
	}
	if err := fb.w.Close(); err != nil {
		return fmt.Errorf("close parquet writer: %w", err)
	}
	fb.out.Close()
	return fb.wait()
}

// finish closes the builder, stores the file and builds its add action.
func (rw *rewriter) finish(ctx context.Context, fb *fileBuilder, inputs []commitlog.Add) (output, error) {
	key := fb.key
	if err := fb.close(); err != nil {
		fb.abort(err) // if the upload still runs
		return output{}, fmt.Errorf("write compacted file %s: %w", key, err)
	}
	var tags map[string]string
	if len(inputs) > 0 && len(inputs[0].Tags) > 0 {
		tags = map[string]string{}
		for k, v := range inputs[0].Tags {
			tags[k] = v
		}
	}
	add := commitlog.Add{
		Path:             (&url.URL{Path: key}).EscapedPath(),
		PartitionValues:  rw.partValues,
		Size:             fb.size,
		ModificationTime: rw.cfg.Now().UnixMilli(),
		DataChange:       false,
		Stats:            mergeStats(inputs, fb.rows, rw.types),
		Tags:             tags,
	}
	return output{add: add, key: key, inputs: inputs, rows: fb.rows}, nil
}
