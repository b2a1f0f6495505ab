package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/open"
)

// inspectReport is the JSON form of `protolake inspect --json`.
type inspectReport struct {
	Table             string             `json:"table"`
	Version           int64              `json:"version"`
	CheckpointVersion *int64             `json:"checkpointVersion"`
	Protocol          commitlog.Protocol `json:"protocol"`
	ID                string             `json:"id"`
	Name              string             `json:"name,omitempty"`
	Description       string             `json:"description,omitempty"`
	CreatedTime       *int64             `json:"createdTime,omitempty"`
	Schema            []commitlog.Column `json:"schema"`
	PartitionColumns  []string           `json:"partitionColumns"`
	Configuration     map[string]string  `json:"configuration"`
	Proto             inspectPin         `json:"proto"`
	ProtoHistory      []inspectPinChange `json:"protoHistory"`
	// ProtoHistoryFrom is the version from which ProtoHistory lists every
	// pin change: the snapshot's checkpoint by default (its first entry is
	// then the pin in force at the checkpoint), the oldest retained commit
	// with --history.
	ProtoHistoryFrom int64              `json:"protoHistoryFrom"`
	NumFiles         int                `json:"numFiles"`
	TotalSize        int64              `json:"totalSize"`
	NumRecords       *int64             `json:"numRecords"`
	Partitions       []inspectPartition `json:"partitions"`
	Txns             map[string]int64   `json:"txns"`
	NumTombstones    int                `json:"numTombstones"`
}

type inspectPin struct {
	Message     string `json:"message"`
	Fingerprint string `json:"fingerprint"`
	Version     string `json:"version"`
}

type inspectPinChange struct {
	Version   int64      `json:"version"`
	Timestamp int64      `json:"timestamp"`
	Pin       inspectPin `json:"pin"`
}

type inspectPartition struct {
	Values    map[string]*string `json:"values"`
	NumFiles  int                `json:"numFiles"`
	TotalSize int64              `json:"totalSize"`
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	atVersion := fs.Int64("version", -1, "inspect this table version instead of the latest")
	asJSON := fs.Bool("json", false, "print a JSON document instead of text")
	fullHistory := fs.Bool("history", false, "build the proto pin history from every retained commit (one read per commit: slow on a long log) instead of from the snapshot's checkpoint on")
	asFiles := fs.Bool("files", false, "print only the active data files' locations, one per line (for readers such as DuckDB's read_parquet)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: protolake inspect TABLE_URI [--version N] [--history] [--json | --files]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Shows a Delta table's snapshot: version, protocol, schema, partition")
		fmt.Fprintln(stderr, "columns, proto pin and its history, files, and txn watermarks.")
		fmt.Fprintln(stderr, "TABLE_URI is a path or a file://, s3://, hdfs:// URL (see README, Storage).")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	uri, err := parseWithURI(fs, args, "inspect")
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *asJSON && *asFiles {
		return usageError{errors.New("inspect: --json and --files exclude each other (--files prints only the data files' locations, one per line)")}
	}
	if *atVersion < -1 {
		return usageError{fmt.Errorf("inspect: --version %d: want a version >= 0", *atVersion)}
	}
	store, err := openTableStore(ctx, uri)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", open.Redact(uri), err)
	}
	defer open.Close(store)
	tbl, err := commitlog.Open(store, commitlog.Config{EngineInfo: "protolake/" + version})
	if err != nil {
		return fmt.Errorf("inspect %s: %w", open.Redact(uri), err)
	}
	snap, err := tbl.SnapshotAt(ctx, *atVersion)
	if err != nil {
		if errors.Is(err, commitlog.ErrNoTable) {
			return fmt.Errorf("inspect %s: no Delta table there (no _delta_log entries)", open.Redact(uri))
		}
		return fmt.Errorf("inspect %s: %w", open.Redact(uri), err)
	}
	if *asFiles {
		return printFiles(stdout, uri, snap)
	}
	history, from, err := pinHistory(ctx, tbl, snap, *fullHistory)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", open.Redact(uri), err)
	}
	rep, err := buildInspectReport(uri, snap, history)
	if rep != nil {
		rep.ProtoHistoryFrom = from
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", open.Redact(uri), err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printInspect(stdout, rep)
}

// printFiles prints the location of every active file of snap, sorted: the
// table URI (without its query) joined with the file's decoded path.
func printFiles(w io.Writer, uri string, snap *commitlog.Snapshot) error {
	base, _, _ := strings.Cut(uri, "?")
	base = strings.TrimRight(base, "/")
	var locs []string
	for _, f := range snap.Files() {
		p, err := url.PathUnescape(f.Path)
		if err != nil {
			return fmt.Errorf("inspect %s: file path %q: %w", open.Redact(uri), f.Path, err)
		}
		locs = append(locs, base+"/"+p)
	}
	sort.Strings(locs)
	for _, l := range locs {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

// openTableStore resolves a table URI with storage/open. A local table
// must exist: the local store creates missing directories, and inspecting
// must not.
func openTableStore(ctx context.Context, uri string) (storage.Store, error) {
	path, isLocal, err := open.LocalPath(uri)
	if err != nil {
		return nil, err
	}
	if isLocal {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("no table directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", path)
		}
	}
	return open.Open(ctx, uri)
}

// pinHistory returns the commits to build the proto pin history from, and
// the version from which it is complete. By default that is the snapshot's
// checkpoint: its metaData (the pin in force then) and the commits after it,
// which are bounded by the checkpoint interval, so inspect answers in
// seconds on a log of months. With full, every retained commit is read.
func pinHistory(ctx context.Context, tbl *commitlog.Table, snap *commitlog.Snapshot, full bool) ([]commitlog.CommitEntry, int64, error) {
	cp := snap.CheckpointVersion()
	md, ok := snap.CheckpointMetadata()
	if full || cp < 0 || !ok {
		h, err := tbl.History(ctx, snap.Version())
		if err != nil {
			return nil, 0, err
		}
		from := int64(0)
		if len(h) > 0 {
			from = h[0].Version
		}
		return h, from, nil
	}
	h, err := tbl.HistoryRange(ctx, cp+1, snap.Version())
	if err != nil {
		return nil, 0, err
	}
	return append([]commitlog.CommitEntry{{Version: cp, Metadata: &md}}, h...), cp, nil
}

func buildInspectReport(uri string, snap *commitlog.Snapshot, history []commitlog.CommitEntry) (*inspectReport, error) {
	md := snap.Metadata()
	cols, err := commitlog.SchemaColumns(md.SchemaString)
	if err != nil {
		return nil, err
	}
	pin := commitlog.PinOf(md)
	rep := &inspectReport{
		Table:            uri,
		Version:          snap.Version(),
		Protocol:         snap.Protocol(),
		ID:               md.ID,
		Name:             md.Name,
		Description:      md.Description,
		CreatedTime:      md.CreatedTime,
		Schema:           cols,
		PartitionColumns: append([]string{}, md.PartitionColumns...),
		Configuration:    md.Configuration,
		Proto:            inspectPin{pin.Message, pin.Fingerprint, pin.Version},
		ProtoHistory:     []inspectPinChange{},
		NumFiles:         snap.NumFiles(),
		TotalSize:        snap.TotalSize(),
		Txns:             snap.Txns(),
		NumTombstones:    len(snap.Tombstones()),
		Partitions:       []inspectPartition{},
	}
	if rep.Configuration == nil {
		rep.Configuration = map[string]string{}
	}
	if cp := snap.CheckpointVersion(); cp >= 0 {
		rep.CheckpointVersion = &cp
	}
	if n, ok := snap.NumRecords(); ok {
		rep.NumRecords = &n
	}
	for _, c := range commitlog.PinHistory(history) {
		if c.Pin.Message == "" && c.Pin.Fingerprint == "" && c.Pin.Version == "" {
			continue
		}
		rep.ProtoHistory = append(rep.ProtoHistory, inspectPinChange{c.Version, c.Timestamp, inspectPin{c.Pin.Message, c.Pin.Fingerprint, c.Pin.Version}})
	}
	parts := map[string]*inspectPartition{}
	for _, f := range snap.Files() {
		k, _ := json.Marshal(f.PartitionValues)
		p := parts[string(k)]
		if p == nil {
			vals := f.PartitionValues
			if vals == nil {
				vals = map[string]*string{}
			}
			p = &inspectPartition{Values: vals}
			parts[string(k)] = p
		}
		p.NumFiles++
		p.TotalSize += f.Size
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rep.Partitions = append(rep.Partitions, *parts[k])
	}
	return rep, nil
}

func printInspect(w io.Writer, r *inspectReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "table:\t%s\n", r.Table)
	if r.CheckpointVersion != nil {
		fmt.Fprintf(tw, "version:\t%d (from checkpoint %d)\n", r.Version, *r.CheckpointVersion)
	} else {
		fmt.Fprintf(tw, "version:\t%d\n", r.Version)
	}
	proto := fmt.Sprintf("reader %d, writer %d", r.Protocol.MinReaderVersion, r.Protocol.MinWriterVersion)
	if len(r.Protocol.ReaderFeatures) > 0 {
		proto += ", reader features " + strings.Join(r.Protocol.ReaderFeatures, ",")
	}
	if len(r.Protocol.WriterFeatures) > 0 {
		proto += ", writer features " + strings.Join(r.Protocol.WriterFeatures, ",")
	}
	fmt.Fprintf(tw, "protocol:\t%s\n", proto)
	fmt.Fprintf(tw, "id:\t%s\n", r.ID)
	if r.Name != "" {
		fmt.Fprintf(tw, "name:\t%s\n", r.Name)
	}
	if r.CreatedTime != nil {
		fmt.Fprintf(tw, "created:\t%s\n", time.UnixMilli(*r.CreatedTime).UTC().Format(time.RFC3339))
	}
	pcs := "(none)"
	if len(r.PartitionColumns) > 0 {
		pcs = strings.Join(r.PartitionColumns, ", ")
	}
	fmt.Fprintf(tw, "partition columns:\t%s\n", pcs)
	if r.Proto.Message != "" || r.Proto.Fingerprint != "" {
		fmt.Fprintf(tw, "proto message:\t%s\n", r.Proto.Message)
		fmt.Fprintf(tw, "proto fingerprint:\t%s\n", r.Proto.Fingerprint)
		if r.Proto.Version != "" {
			fmt.Fprintf(tw, "proto version:\t%s\n", r.Proto.Version)
		}
	} else {
		fmt.Fprintf(tw, "proto pin:\t(none: not written by protolake)\n")
	}
	recs := "records unknown: not every file has stats"
	if r.NumRecords != nil {
		recs = fmt.Sprintf("%d records", *r.NumRecords)
	}
	fmt.Fprintf(tw, "files:\t%d (%d bytes, %s)\n", r.NumFiles, r.TotalSize, recs)
	fmt.Fprintf(tw, "tombstones:\t%d\n", r.NumTombstones)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nschema:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range r.Schema {
		null := ""
		if !c.Nullable {
			null = " (not null)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", c.Name, c.Type, null)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.ProtoHistory) > 0 {
		if r.CheckpointVersion != nil && r.ProtoHistoryFrom == *r.CheckpointVersion && r.ProtoHistoryFrom > 0 {
			fmt.Fprintf(w, "\nproto pin history (from the checkpoint at v%d on; --history reads every retained commit):\n", r.ProtoHistoryFrom)
		} else {
			fmt.Fprintln(w, "\nproto pin history:")
		}
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, h := range r.ProtoHistory {
			label := h.Pin.Version
			if label == "" {
				label = "-"
			}
			when := "-"
			if h.Timestamp != 0 {
				when = time.UnixMilli(h.Timestamp).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  v%d\t%s\t%s\t%s\t%s\n", h.Version, when, h.Pin.Message, h.Pin.Fingerprint, label)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.PartitionColumns) > 0 {
		fmt.Fprintln(w, "\nfiles per partition:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range r.Partitions {
			var parts []string
			for _, c := range r.PartitionColumns {
				v := "null"
				if s := p.Values[c]; s != nil {
					v = *s
				}
				parts = append(parts, c+"="+v)
			}
			fmt.Fprintf(tw, "  %s\t%d file(s)\t%d bytes\n", strings.Join(parts, "/"), p.NumFiles, p.TotalSize)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\ntxn watermarks:")
	if len(r.Txns) == 0 {
		fmt.Fprintln(w, "  (none)")
		return nil
	}
	ids := make([]string, 0, len(r.Txns))
	for id := range r.Txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, id := range ids {
		fmt.Fprintf(tw, "  %s\t%d\n", id, r.Txns[id])
	}
	return tw.Flush()
}
