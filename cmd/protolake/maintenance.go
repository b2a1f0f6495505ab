package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/config"
	"github.com/protolake/protolake/storage/open"
)

// maintenance is what the maintenance commands (compact, vacuum, history,
// checkpoint) share: a flag set whose flags may come before or after the
// one TABLE_URI, --log-format when the command logs, and opening the table.
type maintenance struct {
	name      string
	fs        *flag.FlagSet
	stderr    io.Writer
	logFormat *string // nil: the command does not log
}

// newMaintenance returns the flag set of command name (usage printed, then
// the flags, on -h); withLog adds --log-format.
func newMaintenance(name, usage string, stderr io.Writer, withLog bool) *maintenance {
	m := &maintenance{name: name, fs: flag.NewFlagSet(name, flag.ContinueOnError), stderr: stderr}
	m.fs.SetOutput(stderr)
	if withLog {
		m.logFormat = m.fs.String("log-format", "text", "log format on stderr: text or json")
	}
	m.fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		m.fs.PrintDefaults()
	}
	return m
}

// parse parses args and returns the TABLE_URI: errHelp after -h, a
// usageError for bad flags, a missing or second URI or a bad --log-format.
func (m *maintenance) parse(args []string) (string, error) {
	uri, err := parseWithURI(m.fs, args, m.name)
	if err != nil {
		return "", err
	}
	if m.logFormat != nil {
		if err := checkLogFormat(m.name, *m.logFormat); err != nil {
			return "", err
		}
	}
	return uri, nil
}

// logger is the command's logger on stderr at info, nil for a command
// without --log-format.
func (m *maintenance) logger() *slog.Logger {
	if m.logFormat == nil {
		return nil
	}
	return config.LogConfig{Level: "info", Format: *m.logFormat}.Logger(m.stderr)
}

// open opens the table at uri with the command's logger; the error names
// the command and the (redacted) URI. The caller calls the returned close.
func (m *maintenance) open(ctx context.Context, uri string) (*commitlog.Table, func(), error) {
	tbl, closeStore, err := openTable(ctx, uri, m.logger())
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", m.name, open.Redact(uri), err)
	}
	return tbl, closeStore, nil
}

// parseWithURI parses flags that may come before or after one TABLE_URI
// and returns the URI.
func parseWithURI(fs *flag.FlagSet, args []string, name string) (string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", errHelp
			}
			return "", usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return "", usageError{fmt.Errorf("%s: want exactly one TABLE_URI, got %d", name, len(positional))}
	}
	return positional[0], nil
}

// checkLogFormat refuses a --log-format other than text or json.
func checkLogFormat(cmd, f string) error {
	if f != "text" && f != "json" {
		return usageError{fmt.Errorf("%s: --log-format %q: want text or json", cmd, f)}
	}
	return nil
}

// openTable opens the table at uri; the caller closes the store.
func openTable(ctx context.Context, uri string, logger *slog.Logger) (*commitlog.Table, func(), error) {
	store, err := openTableStore(ctx, uri)
	if err != nil {
		return nil, nil, err
	}
	tbl, err := commitlog.Open(store, commitlog.Config{EngineInfo: "protolake/" + version, Logger: logger})
	if err != nil {
		open.Close(store)
		return nil, nil, err
	}
	return tbl, func() { open.Close(store) }, nil
}

// noTable rewrites ErrNoTable into a message naming the location.
func noTable(cmd, uri string, err error) error {
	if errors.Is(err, commitlog.ErrNoTable) {
		return fmt.Errorf("%s %s: no Delta table there (no _delta_log entries)", cmd, uri)
	}
	return fmt.Errorf("%s %s: %w", cmd, uri, err)
}
