package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage/open"
)

const historyUsage = `usage: protolake history TABLE_URI [--limit N] [--json]

Prints the table's lineage, newest version first, one line per retained
commit: timestamp, operation, rows and files added and removed, the proto
version label and descriptor fingerprint the table was pinned to at that
version, and the Kafka offset ranges the commit holds (topic/partition:first-last)
— which proto version and which offsets produced the data.

Rows come from the commit's operationMetrics (numOutputRows, as protolake,
Spark and delta-rs write them); "?" when the writer recorded none. Versions
removed by log cleanup are not shown.

TABLE_URI is a path or a file://, s3://, hdfs:// URL (see README, Storage).

flags:
`

// historyEntry is one version in `protolake history --json`.
type historyEntry struct {
	Version             int64                   `json:"version"`
	Timestamp           *time.Time              `json:"timestamp"`
	Operation           string                  `json:"operation"`
	OperationParameters map[string]any          `json:"operationParameters,omitempty"`
	OperationMetrics    map[string]string       `json:"operationMetrics,omitempty"`
	ReadVersion         *int64                  `json:"readVersion,omitempty"`
	EngineInfo          string                  `json:"engineInfo,omitempty"`
	TxnID               string                  `json:"txnId,omitempty"`
	FilesAdded          int                     `json:"filesAdded"`
	FilesRemoved        int                     `json:"filesRemoved"`
	RowsAdded           *int64                  `json:"rowsAdded"`
	RowsRemoved         *int64                  `json:"rowsRemoved"`
	DataChange          bool                    `json:"dataChange"`
	Proto               inspectPin              `json:"proto"`
	ProtoChanged        bool                    `json:"protoChanged"`
	KafkaOffsets        []commitlog.OffsetRange `json:"kafkaOffsets"`
}

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := newMaintenance("history", historyUsage, stderr, false)
	fs := m.fs
	limit := fs.Int("limit", 0, "show only the newest N versions (0: all)")
	asJSON := fs.Bool("json", false, "print a JSON array instead of text")
	uri, err := m.parse(args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usageError{fmt.Errorf("history: --limit %d: want >= 0", *limit)}
	}
	tbl, closeStore, err := m.open(ctx, uri)
	if err != nil {
		return err
	}
	defer closeStore()
	entries, err := buildHistory(ctx, tbl, *limit)
	if err != nil {
		return noTable("history", open.Redact(uri), err)
	}
	// Newest first, as DESCRIBE HISTORY.
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	return printHistory(stdout, entries)
}

// buildHistory is the table's lineage as `history --json` prints it,
// oldest first.
func buildHistory(ctx context.Context, tbl *commitlog.Table, limit int) ([]historyEntry, error) {
	lineage, err := tbl.Lineage(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]historyEntry, 0, len(lineage))
	for _, c := range lineage {
		e := historyEntry{
			Version:      c.Version,
			FilesAdded:   c.NumAdds,
			FilesRemoved: c.NumRemoves,
			RowsAdded:    c.RowsAdded,
			RowsRemoved:  c.RowsRemoved,
			DataChange:   c.DataChange,
			Proto:        inspectPin{Message: c.Pin.Message, Fingerprint: c.Pin.Fingerprint, Version: c.Pin.Version},
			ProtoChanged: c.PinChanged,
			KafkaOffsets: []commitlog.OffsetRange{},
		}
		if ci := c.CommitInfo; ci != nil {
			if ci.Timestamp > 0 {
				ts := time.UnixMilli(ci.Timestamp).UTC()
				e.Timestamp = &ts
			}
			e.Operation = ci.Operation
			e.OperationParameters = ci.OperationParameters
			e.OperationMetrics = ci.OperationMetrics
			e.ReadVersion = ci.ReadVersion
			e.EngineInfo = ci.EngineInfo
			e.TxnID = ci.TxnID
			if len(ci.KafkaOffsets) > 0 {
				e.KafkaOffsets = ci.KafkaOffsets
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func printHistory(w io.Writer, entries []historyEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tTIMESTAMP\tOPERATION\tROWS +/-\tFILES +/-\tPROTO\tFINGERPRINT\tKAFKA OFFSETS")
	for _, e := range entries {
		ts := "-"
		if e.Timestamp != nil {
			ts = e.Timestamp.Format("2006-01-02T15:04:05.000Z")
		}
		op := e.Operation
		if op == "" {
			op = "-"
		}
		proto := e.Proto.Version
		if proto == "" {
			proto = "-"
		}
		if e.ProtoChanged {
			proto += "*"
		}
		fp := e.Proto.Fingerprint
		if len(fp) > 12 {
			fp = fp[:12]
		}
		if fp == "" {
			fp = "-"
		}
		var offs []string
		for _, r := range e.KafkaOffsets {
			offs = append(offs, fmt.Sprintf("%s/%d:%d-%d", r.Topic, r.Partition, r.First, r.Last))
		}
		kafka := strings.Join(offs, " ")
		if kafka == "" {
			kafka = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s/%s\t+%d/-%d\t%s\t%s\t%s\n", e.Version, ts, op, optInt(e.RowsAdded, "+"), optInt(e.RowsRemoved, "-"), e.FilesAdded, e.FilesRemoved, proto, fp, kafka)
	}
	return tw.Flush()
}

func optInt(v *int64, sign string) string {
	if v == nil {
		return sign + "?"
	}
	return sign + strconv.FormatInt(*v, 10)
}
