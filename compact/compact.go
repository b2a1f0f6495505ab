package compact

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/protolake/protolake/commitlog"
	"golang.org/x/sync/errgroup"
)

// ErrPartitionsFailed is wrapped by Result.Err when some partitions could
// not be compacted.
var ErrPartitionsFailed = errors.New("some partitions were not compacted")

// ErrSortBy is wrapped by the error of Run when Config.SortBy names no
// sortable column of the table; nothing has been read or written then.
var ErrSortBy = errors.New("invalid sort column")

// checkSortBy validates Config.SortBy against the table's schema before
// any file is read: it must name (case-insensitively, as Delta does) a
// top-level primitive column stored in the data files, i.e. not a partition
// column, struct, array or map.
func checkSortBy(md commitlog.Metadata, sortBy string) error {
	if sortBy == "" {
		return nil
	}
	partition := map[string]bool{}
	for _, c := range md.PartitionColumns {
		partition[strings.ToLower(c)] = true
	}
	leaves, err := leafTypes(md.SchemaString)
	if err != nil {
		return err
	}
	var sortable []string
	for name := range leaves {
		if !strings.Contains(name, ".") && !partition[strings.ToLower(name)] {
			sortable = append(sortable, name)
		}
	}
	sort.Strings(sortable)
	for _, name := range sortable {
		if strings.EqualFold(name, sortBy) {
			return nil
		}
	}
	why := "no such column"
	for _, c := range md.PartitionColumns {
		if strings.EqualFold(c, sortBy) {
			why = "a partition column (one value per partition, nothing to sort)"
		}
	}
	for name := range leaves {
		if first, _, nested := strings.Cut(name, "."); nested && strings.EqualFold(first, sortBy) {
			why = "a struct (sort by a top-level primitive column)"
		}
	}
	if why == "no such column" && strings.Contains(md.SchemaString, `"name":"`+sortBy+`"`) {
		why = "not a primitive column (arrays and maps cannot be sorted by)"
	}
	return fmt.Errorf("%w %q: %s; sortable columns: %s", ErrSortBy, sortBy, why, strings.Join(sortable, ", "))
}

// Result is the outcome of Run.
type Result struct {
	// Plan is the plan made from the first snapshot.
	Plan *Plan
	// Partitions holds one entry per planned partition, in plan order
	// (empty for a dry run).
	Partitions []PartitionResult
}

// PartitionResult is the outcome of one partition.
type PartitionResult struct {
	// Path is the partition path ("" for an unpartitioned table).
	Path string
	// Version is the OPTIMIZE commit's version, -1 when nothing was
	// committed.
	Version int64
	// Attempts is how many times the partition was rewritten (more than
	// one after conflicts with another compaction).
	Attempts int
	// RemovedFiles, RemovedBytes, AddedFiles, AddedBytes describe the
	// commit; Rows is the number of rows rewritten.
	RemovedFiles, AddedFiles int
	RemovedBytes, AddedBytes int64
	Rows                     int64
	// Err is why the partition was not compacted, nil on success. After a
	// conflict that outlasted Config.MaxAttempts it wraps
	// commitlog.ErrConflict.
	Err error
}

// PartitionError is one failed partition, as joined in Result.Err.
type PartitionError struct {
	Path string
	Err  error
}

// Error names the partition.
func (e *PartitionError) Error() string {
	p := e.Path
	if p == "" {
		p = "(unpartitioned)"
	}
	return fmt.Sprintf("compact partition %s: %v", p, e.Err)
}

// Unwrap returns the partition's error.
func (e *PartitionError) Unwrap() error { return e.Err }

// Err returns nil when every planned partition was compacted, else an error
// wrapping ErrPartitionsFailed and one *PartitionError per failure.
func (r *Result) Err() error {
	var errs []error
	for _, p := range r.Partitions {
		if p.Err != nil {
			errs = append(errs, &PartitionError{Path: p.Path, Err: p.Err})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w (%d of %d): %w", ErrPartitionsFailed, len(errs), len(r.Partitions), errors.Join(errs...))
}

// Run compacts the table: it plans from the latest snapshot and rewrites
// the planned partitions, up to Config.MaxConcurrent at a time, each in its
// own OPTIMIZE commit. The error is for failures of the whole run (invalid
// config, unreadable or unwritable table); per-partition failures are in the
// Result (see Result.Err).
func Run(ctx context.Context, tbl *commitlog.Table, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	cfg = cfg.withDefaults()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	if err := commitlog.CheckWritable(snap.Protocol(), snap.Metadata()); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	if err := checkSortBy(snap.Metadata(), cfg.SortBy); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	plan, err := MakePlan(snap, cfg)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	res := &Result{Plan: plan}
	if cfg.DryRun || len(plan.Partitions) == 0 {
		return res, nil
	}
	types, err := leafTypes(snap.Metadata().SchemaString)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	pr := &progress{cfg: cfg, start: cfg.Now(), p: Progress{FilesTotal: plan.NumFiles(), BytesTotal: plan.Bytes(), PartitionsTotal: len(plan.Partitions)}}
	res.Partitions = make([]PartitionResult, len(plan.Partitions))
	// Partitions report through res.Partitions, never through the group:
	// one failed partition does not stop the others.
	var g errgroup.Group
	g.SetLimit(cfg.MaxConcurrent)
	for i, pp := range plan.Partitions {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				res.Partitions[i] = PartitionResult{Path: pp.Path, Version: -1, Err: err}
				return nil
			}
			r := compactPartition(ctx, tbl, snap, pp, cfg, types, pr)
			res.Partitions[i] = r
			pr.partitionDone()
			log := cfg.Logger.With("partition", displayPath(pp.Path), "attempts", r.Attempts)
			if r.Err != nil {
				log.Error("compaction of partition failed", "err", r.Err)
			} else if r.Version >= 0 {
				log.Info("partition compacted", "version", r.Version, "removed_files", r.RemovedFiles, "added_files", r.AddedFiles, "removed_bytes", r.RemovedBytes, "added_bytes", r.AddedBytes, "rows", r.Rows)
			} else {
				log.Info("partition left alone: nothing left to compact after a concurrent compaction")
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through res.Partitions
	return res, nil
}

func displayPath(p string) string {
	if p == "" {
		return "(unpartitioned)"
	}
	return p
}

// compactPartition rewrites and commits one partition, planning again from
// a fresh snapshot after a conflict.
func compactPartition(ctx context.Context, tbl *commitlog.Table, snap *commitlog.Snapshot, pp PartitionPlan, cfg Config, types map[string]string, pr *progress) PartitionResult {
	res := PartitionResult{Path: pp.Path, Version: -1}
	for {
		res.Attempts++
		rw := &rewriter{store: tbl.Store(), cfg: cfg, partPath: pp.Path, partValues: pp.Values, types: types, onInput: pr.input}
		var outs []output
		var err error
		for _, b := range pp.Bins {
			var o []output
			o, err = rw.rewriteBin(ctx, b)
			outs = append(outs, o...)
			if err != nil {
				break
			}
		}
		if err == nil {
			var cr commitlog.CommitResult
			cr, err = commitPartition(ctx, tbl, snap, pp, outs, cfg)
			if err == nil {
				res.Version = cr.Version
				for _, b := range pp.Bins {
					res.RemovedFiles += len(b.Files)
					res.RemovedBytes += b.Bytes
				}
				for _, o := range outs {
					res.AddedFiles++
					res.AddedBytes += o.add.Size
					res.Rows += o.rows
				}
				return res
			}
		}
		// Delete the new files only when the commit provably did not land:
		// commitlog reports every failure after which it may have landed
		// as *AmbiguousCommitError (then they may be live; vacuum removes
		// them later if not).
		if !errors.Is(err, commitlog.ErrAmbiguousCommit) {
			for _, o := range outs {
				if derr := tbl.Store().Delete(context.WithoutCancel(ctx), o.key); derr != nil {
					cfg.Logger.Warn("could not delete an uncommitted compacted file; vacuum will", "file", o.key, "err", derr)
				}
			}
		}
		if !errors.Is(err, commitlog.ErrConflict) || res.Attempts >= cfg.MaxAttempts || ctx.Err() != nil {
			res.Err = err
			return res
		}
		cfg.Logger.Warn("compaction conflicted with a concurrent commit that removed some of its files; planning the partition again", "partition", displayPath(pp.Path), "attempt", res.Attempts, "err", err)
		fresh, serr := tbl.Snapshot(ctx)
		if serr != nil {
			res.Err = serr
			return res
		}
		plan, perr := MakePlan(fresh, cfg)
		if perr != nil {
			res.Err = perr
			return res
		}
		found := false
		for _, np := range plan.Partitions {
			if np.Path == pp.Path {
				pp, found = np, true
				break
			}
		}
		if !found {
			return res // another compaction did the work
		}
		snap = fresh
	}
}

// commitPartition writes the OPTIMIZE commit of one partition.
func commitPartition(ctx context.Context, tbl *commitlog.Table, snap *commitlog.Snapshot, pp PartitionPlan, outs []output, cfg Config) (commitlog.CommitResult, error) {
	tx := tbl.NewTransaction(snap)
	var removedBytes, addedBytes int64
	removed := 0
	for _, o := range outs {
		for _, in := range o.inputs {
			tx.Remove(in.ToRemove(false))
			removedBytes += in.Size
			removed++
		}
	}
	sizes := make([]int64, 0, len(outs))
	for _, o := range outs {
		tx.Add(o.add)
		addedBytes += o.add.Size
		sizes = append(sizes, o.add.Size)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	pred := "[]"
	if where := partitionPredicate(snap.Metadata().PartitionColumns, pp.Values); where != "" {
		pred = `["` + strings.ReplaceAll(where, `"`, `\"`) + `"]`
	}
	tx.SetOperation(commitlog.OpOptimize, map[string]any{
		"predicate": pred,
		"zOrderBy":  "[]",
		"clusterBy": "[]",
		"auto":      "false",
	})
	pct := func(p int) string {
		if len(sizes) == 0 {
			return "0"
		}
		return strconv.FormatInt(sizes[(len(sizes)-1)*p/100], 10)
	}
	tx.SetMetrics(map[string]string{
		"numRemovedFiles":        strconv.Itoa(removed),
		"numRemovedBytes":        strconv.FormatInt(removedBytes, 10),
		"numAddedFiles":          strconv.Itoa(len(outs)),
		"numAddedBytes":          strconv.FormatInt(addedBytes, 10),
		"minFileSize":            pct(0),
		"p25FileSize":            pct(25),
		"p50FileSize":            pct(50),
		"p75FileSize":            pct(75),
		"maxFileSize":            pct(100),
		"numBatches":             strconv.Itoa(len(pp.Bins)),
		"totalConsideredFiles":   strconv.Itoa(removed + pp.SkippedDV),
		"totalFilesSkipped":      strconv.Itoa(pp.SkippedDV),
		"preserveInsertionOrder": strconv.FormatBool(cfg.SortBy == ""),
	})
	cr, err := tx.Commit(ctx)
	if err != nil {
		return cr, fmt.Errorf("commit: %w", err)
	}
	return cr, nil
}

// partitionPredicate renders a partition's values as Spark's OPTIMIZE
// predicate, e.g. (dt = '2026-11-01').
func partitionPredicate(cols []string, values map[string]*string) string {
	var parts []string
	for _, c := range cols {
		v, _ := lookupFold(values, c)
		if v == nil {
			parts = append(parts, fmt.Sprintf("(%s IS NULL)", c))
		} else {
			parts = append(parts, fmt.Sprintf("(%s = %s)", c, quote(*v)))
		}
	}
	return strings.Join(parts, " AND ")
}

// progress serializes Progress callbacks.
type progress struct {
	mu    sync.Mutex
	cfg   Config
	start time.Time
	p     Progress
}

func (pr *progress) input(bytes int64) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.p.FilesDone++
	pr.p.BytesDone += bytes
	pr.emit()
}

func (pr *progress) partitionDone() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.p.PartitionsDone++
	pr.emit()
}

func (pr *progress) emit() {
	if pr.cfg.Progress == nil {
		return
	}
	p := pr.p
	p.Elapsed = pr.cfg.Now().Sub(pr.start)
	pr.cfg.Progress(p)
}
