package commitlog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/protolake/protolake/storage"
)

// CommitEntry summarises one retained commit file.
type CommitEntry struct {
	// Version is the commit's version.
	Version int64
	// CommitInfo is the commit's provenance, nil if it has none.
	CommitInfo *CommitInfo
	// Metadata and Protocol are set when the commit changed them.
	Metadata *Metadata
	Protocol *Protocol
	// NumAdds and NumRemoves count the file actions.
	NumAdds, NumRemoves int
}

// History reads the retained commits with versions <= to (Latest for all),
// oldest first. Commits removed by log cleanup are absent.
func (t *Table) History(ctx context.Context, to int64) ([]CommitEntry, error) {
	l, err := listLog(ctx, t.store)
	if err != nil {
		return nil, err
	}
	if l.latest < 0 {
		return nil, ErrNoTable
	}
	if to == Latest || to > l.latest {
		to = l.latest
	}
	var versions []int64
	for v := range l.commits {
		if v <= to {
			versions = append(versions, v)
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	out := make([]CommitEntry, 0, len(versions))
	for _, v := range versions {
		actions, err := readCommit(ctx, t.store, v)
		if errors.Is(err, storage.ErrNotExist) {
			continue // cleaned up while we listed
		}
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		out = append(out, commitEntry(v, actions))
	}
	return out, nil
}

// HistoryRange reads the commits with versions from..to, oldest first, one
// GET each and no listing: for a bounded look at recent history (the
// commits after a snapshot's checkpoint, which a snapshot load reads
// anyway). A missing version in the range is an error wrapping
// storage.ErrNotExist.
func (t *Table) HistoryRange(ctx context.Context, from, to int64) ([]CommitEntry, error) {
	out := make([]CommitEntry, 0, max(to-from+1, 0))
	for v := max(from, 0); v <= to; v++ {
		e, err := t.Entry(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Entry reads the commit of version v alone, as History summarises it; a
// cleaned-up or missing version is an error wrapping storage.ErrNotExist.
func (t *Table) Entry(ctx context.Context, v int64) (CommitEntry, error) {
	actions, err := readCommit(ctx, t.store, v)
	if err != nil {
		return CommitEntry{}, fmt.Errorf("read version %d: %w", v, err)
	}
	return commitEntry(v, actions), nil
}

func commitEntry(v int64, actions []Action) CommitEntry {
	e := CommitEntry{Version: v}
	for _, a := range actions {
		switch {
		case a.CommitInfo != nil:
			e.CommitInfo = a.CommitInfo
		case a.Metadata != nil:
			e.Metadata = a.Metadata
		case a.Protocol != nil:
			e.Protocol = a.Protocol
		case a.Add != nil:
			e.NumAdds++
		case a.Remove != nil:
			e.NumRemoves++
		}
	}
	return e
}

// PinChange is a version at which the table's proto pin was set or changed.
type PinChange struct {
	// Version is the commit that wrote the metaData.
	Version int64
	// Timestamp is commitInfo.timestamp (ms since the epoch), 0 if unknown.
	Timestamp int64
	// Pin is the pin from that version on (DescriptorSet not loaded).
	Pin ProtoPin
}

// PinHistory returns the changes of the proto pin among the given commits
// (from History), oldest first.
func PinHistory(entries []CommitEntry) []PinChange {
	var out []PinChange
	var last ProtoPin
	for _, e := range entries {
		if e.Metadata == nil {
			continue
		}
		p := PinOf(*e.Metadata)
		if len(out) > 0 && p.Message == last.Message && p.Fingerprint == last.Fingerprint && p.Version == last.Version {
			continue
		}
		pc := PinChange{Version: e.Version, Pin: p}
		if e.CommitInfo != nil {
			pc.Timestamp = e.CommitInfo.Timestamp
		}
		out = append(out, pc)
		last = p
	}
	return out
}

// LineageEntry is one retained commit with the proto pin in force at it:
// which proto version and which offsets produced the data.
type LineageEntry struct {
	CommitEntry
	// Pin is the proto pin in force at this version (DescriptorSet not
	// loaded); zero when the metaData that set it is no longer retained.
	Pin ProtoPin
	// PinChanged is true when this commit set or changed the pin.
	PinChanged bool
	// RowsAdded and RowsRemoved come from operationMetrics under the names
	// protolake, Spark and delta-rs write (numOutputRows, numDeletedRows…);
	// nil when the writer recorded none.
	RowsAdded, RowsRemoved *int64
	// DataChange is true when the commit added or removed files and is not
	// a compaction (OPTIMIZE).
	DataChange bool
}

// Lineage reads the retained commits, oldest first, and follows the proto
// pin through them. With limit > 0 only the newest limit versions are read
// (a 30-day log of a streaming table holds tens of thousands of commits,
// and no listing is needed), and the pin in force before them comes from a
// snapshot. A table without retained commits is ErrNoTable.
func (t *Table) Lineage(ctx context.Context, limit int) ([]LineageEntry, error) {
	var commits []CommitEntry
	if limit > 0 {
		snap, err := t.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		for v := max(0, snap.Version()-int64(limit)+1); v <= snap.Version(); v++ {
			e, err := t.Entry(ctx, v)
			if errors.Is(err, storage.ErrNotExist) {
				continue // cleaned up
			}
			if err != nil {
				return nil, err
			}
			commits = append(commits, e)
		}
	} else {
		var err error
		if commits, err = t.History(ctx, Latest); err != nil {
			return nil, err
		}
	}
	if len(commits) == 0 {
		return nil, ErrNoTable
	}
	// The pin in force before the first commit shown.
	var pin ProtoPin
	if first := commits[0].Version; first > 0 {
		if snap, err := t.SnapshotAt(ctx, first-1); err == nil {
			pin = PinOf(snap.Metadata())
		} else if !errors.Is(err, ErrVersionNotFound) {
			return nil, err
		} else if commits[0].Metadata == nil {
			// Cleaned up below the first retained version: take its own.
			if snap, err := t.SnapshotAt(ctx, first); err == nil {
				pin = PinOf(snap.Metadata())
			}
		}
	}
	out := make([]LineageEntry, 0, len(commits))
	for _, c := range commits {
		e := LineageEntry{CommitEntry: c}
		if c.Metadata != nil {
			np := PinOf(*c.Metadata)
			e.PinChanged = np.Fingerprint != pin.Fingerprint || np.Version != pin.Version || np.Message != pin.Message
			pin = np
		}
		e.Pin = pin
		op := ""
		if ci := c.CommitInfo; ci != nil {
			op = ci.Operation
			e.RowsAdded = metric(ci.OperationMetrics, "numOutputRows", "numTargetRowsInserted")
			e.RowsRemoved = metric(ci.OperationMetrics, "numDeletedRows", "numTargetRowsDeleted")
		}
		e.DataChange = op != OpOptimize && (c.NumAdds > 0 || c.NumRemoves > 0)
		out = append(out, e)
	}
	return out, nil
}

// metric returns the first of the named operationMetrics that is a number.
func metric(m Metrics, names ...string) *int64 {
	for _, n := range names {
		if v, err := strconv.ParseInt(m[n], 10, 64); err == nil {
			return &v
		}
	}
	return nil
}
