// Command protolake turns Kafka topics of protobuf messages into Delta Lake
// tables and maintains them. See the README for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is the protolake release, stamped with -ldflags at build time
// (-X main.version=v1.2.3); "dev" otherwise. versionInfo adds the module
// version and VCS revision the Go toolchain recorded.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"run":        {"consume Kafka topics into Delta tables, exactly once", runRun},
		"schema":     {"derive and compare table schemas from protobuf descriptors", runSchema},
		"inspect":    {"show a Delta table's snapshot: version, schema, files, watermarks", runInspect},
		"compact":    {"rewrite small files of partitions into large ones (OPTIMIZE)", runCompact},
		"vacuum":     {"delete data files no longer referenced, past a retention", runVacuum},
		"checkpoint": {"write a checkpoint of the latest version now", runCheckpoint},
		"history":    {"show a table's versions: operations, rows, proto versions, Kafka offsets", runHistory},
		"demo":       {"run the whole pipeline in one process with no setup", runDemo},
		"version":    {"print the protolake version", runVersion},
	}
}

// order is the order subcommands are listed in the usage text.
var order = []string{"run", "demo", "schema", "inspect", "history", "compact", "vacuum", "checkpoint", "version"}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return usageError{errors.New("no command given")}
		}
		return nil
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		usage(stderr)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: protolake <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	cmds := commands()
	for _, name := range order {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'protolake <command> -h' for a command's flags.")
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, "usage: protolake version (or protolake --version): the release, module version, VCS revision and Go version of this binary")
		return nil
	}
	if len(args) > 0 {
		return usageError{fmt.Errorf("version takes no arguments, got %q", args)}
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionInfo(version, bi))
	return nil
}

// versionInfo renders the version line: the release (or the module version
// when no release was stamped), the module path, the VCS revision and time
// and whether the tree was modified, and the Go version. A binary built
// without VCS stamping (go run, -buildvcs=false) says so instead of a
// revision.
func versionInfo(release string, bi *debug.BuildInfo) string {
	if bi == nil {
		return "protolake " + release + " (no build information)"
	}
	modVersion := bi.Main.Version
	if modVersion == "" {
		modVersion = "(devel)"
	}
	if release == "dev" && modVersion != "(devel)" {
		release = modVersion
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "protolake %s (module %s %s", release, bi.Main.Path, modVersion)
	if rev != "" {
		fmt.Fprintf(&b, ", revision %s", rev)
		if at != "" {
			fmt.Fprintf(&b, " %s", at)
		}
		b.WriteString(modified)
	} else {
		b.WriteString(", revision unknown: built without VCS stamping (make build stamps it)")
	}
	fmt.Fprintf(&b, ", %s)", bi.GoVersion)
	return b.String()
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an explicit exit status, e.g. 1 for "schema diff" when the
// change is breaking. A nil err means nothing more is printed.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// exitCode prints err (if any) and maps it to the process exit status:
// 0 success, 2 usage errors and failures, or the code an exitError carries.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "protolake:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "protolake:", err)
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 2
}
