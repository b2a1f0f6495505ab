package commitlog

import (
	"context"
	"errors"
	"fmt"
	"sort"

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
