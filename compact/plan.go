package compact

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/partpath"
)

// Plan is what a compaction will do, computed from one snapshot.
type Plan struct {
	// Version is the snapshot the plan was made from.
	Version int64
	// Partitions are the partitions that will be compacted, in partition
	// path order.
	Partitions []PartitionPlan
	// Skipped are the matching partitions left alone, with the reason.
	Skipped []SkippedPartition
	// Predicate is the canonical form of Config.Where ("" for none).
	Predicate string
}

// PartitionPlan is the work planned for one partition.
type PartitionPlan struct {
	// Path is the partition's Hive-style path ("" for an unpartitioned
	// table), e.g. "event_time_day=2026-11-20".
	Path string
	// Values are the partition values (nil = null).
	Values map[string]*string
	// Bins are the groups of files that each become one new file.
	Bins []Bin
	// SkippedDV counts small files left alone because they have deletion
	// vectors (rewriting them would need the vectors applied).
	SkippedDV int
}

// Bin is a group of input files rewritten into one file.
type Bin struct {
	Files []commitlog.Add
	// Bytes is the sum of the inputs' sizes.
	Bytes int64
}

// SkippedPartition is a partition matched by the predicate but not
// compacted.
type SkippedPartition struct {
	Path   string
	Reason string
}

// NumFiles is the number of input files of the partition's bins.
func (p PartitionPlan) NumFiles() int {
	n := 0
	for _, b := range p.Bins {
		n += len(b.Files)
	}
	return n
}

// Bytes is the size of the partition's input files.
func (p PartitionPlan) Bytes() int64 {
	var n int64
	for _, b := range p.Bins {
		n += b.Bytes
	}
	return n
}

// NumFiles is the number of input files of the whole plan.
func (p *Plan) NumFiles() int {
	n := 0
	for _, pp := range p.Partitions {
		n += pp.NumFiles()
	}
	return n
}

// Bytes is the size of all input files of the plan.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, pp := range p.Partitions {
		n += pp.Bytes()
	}
	return n
}

// partitionTypes maps each partition column to its Delta type.
func partitionTypes(md commitlog.Metadata) (map[string]string, error) {
	cols, err := commitlog.SchemaColumns(md.SchemaString)
	if err != nil {
		return nil, fmt.Errorf("table schema: %w", err)
	}
	types := map[string]string{}
	for _, pc := range md.PartitionColumns {
		types[pc] = "string"
		for _, c := range cols {
			if strings.EqualFold(c.Name, pc) {
				types[pc] = c.Type
			}
		}
	}
	return types, nil
}

// partitionPath renders partition values as the writer does:
// col=value/… with Hive escaping, in partition column order.
func partitionPath(cols []string, values map[string]*string) string {
	parts := make([]string, 0, len(cols))
	for _, c := range cols {
		v, _ := lookupFold(values, c)
		parts = append(parts, partpath.Segment(c, v))
	}
	return strings.Join(parts, "/")
}

// hasDeletionVector reports whether an add carries a deletion vector.
func hasDeletionVector(a commitlog.Add) bool {
	raw, ok := a.Extra["deletionVector"]
	return ok && string(raw) != "null"
}

// MakePlan plans a compaction of snapshot snap with cfg (defaults applied).
func MakePlan(snap *commitlog.Snapshot, cfg Config) (*Plan, error) {
	cfg = cfg.withDefaults()
	md := snap.Metadata()
	types, err := partitionTypes(md)
	if err != nil {
		return nil, err
	}
	var pred *Predicate
	if cfg.Where != "" {
		if pred, err = ParsePredicate(cfg.Where); err != nil {
			return nil, err
		}
		if err := pred.Check(types); err != nil {
			return nil, err
		}
	}
	plan := &Plan{Version: snap.Version(), Predicate: pred.String()}
	type part struct {
		values map[string]*string
		files  []commitlog.Add
		dv     int
	}
	parts := map[string]*part{}
	for _, f := range snap.Files() {
		if !pred.Match(f.PartitionValues, types) {
			continue
		}
		p := partitionPath(md.PartitionColumns, f.PartitionValues)
		pt := parts[p]
		if pt == nil {
			pt = &part{values: f.PartitionValues}
			parts[p] = pt
		}
		if f.Size >= cfg.TargetSize {
			continue
		}
		if hasDeletionVector(f) {
			pt.dv++
			continue
		}
		pt.files = append(pt.files, f)
	}
	paths := make([]string, 0, len(parts))
	for p := range parts {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		pt := parts[path]
		pp := PartitionPlan{Path: path, Values: pt.values, SkippedDV: pt.dv}
		if len(pt.files) < cfg.MinFiles {
			reason := fmt.Sprintf("%d small files < --min-files %d", len(pt.files), cfg.MinFiles)
			if pt.dv > 0 {
				reason += fmt.Sprintf(" (%d files with deletion vectors skipped)", pt.dv)
			}
			plan.Skipped = append(plan.Skipped, SkippedPartition{Path: path, Reason: reason})
			continue
		}
		pp.Bins = binPack(pt.files, cfg.TargetSize)
		if len(pp.Bins) == 0 {
			plan.Skipped = append(plan.Skipped, SkippedPartition{Path: path, Reason: "no two small files fit together under the target size"})
			continue
		}
		plan.Partitions = append(plan.Partitions, pp)
	}
	return plan, nil
}

// binPack groups files with identical tags, in log order (modification time,
// then path), into bins of at most target bytes; bins of one file are
// dropped (rewriting a file alone gains nothing).
func binPack(files []commitlog.Add, target int64) []Bin {
	groups := map[string][]commitlog.Add{}
	var keys []string
	for _, f := range files {
		k, _ := json.Marshal(f.Tags) // map keys are sorted: a canonical key
		if _, ok := groups[string(k)]; !ok {
			keys = append(keys, string(k))
		}
		groups[string(k)] = append(groups[string(k)], f)
	}
	sort.Strings(keys)
	var bins []Bin
	for _, k := range keys {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool {
			if g[i].ModificationTime != g[j].ModificationTime {
				return g[i].ModificationTime < g[j].ModificationTime
			}
			return g[i].Path < g[j].Path
		})
		var cur Bin
		flush := func() {
			if len(cur.Files) > 1 {
				bins = append(bins, cur)
			}
			cur = Bin{}
		}
		for _, f := range g {
			if len(cur.Files) > 0 && cur.Bytes+f.Size > target {
				flush()
			}
			cur.Files = append(cur.Files, f)
			cur.Bytes += f.Size
		}
		flush()
	}
	return bins
}

// storeKey is the store key of a file whose log path is URI-encoded.
func storeKey(logPath string) string {
	if d, err := url.PathUnescape(logPath); err == nil {
		return d
	}
	return logPath
}
