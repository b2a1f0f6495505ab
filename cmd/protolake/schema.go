package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/registry"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/open"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const schemaUsage = `usage:
  protolake schema show (--descriptor-set FILE | [--proto-path DIR]... FILE.proto...) --message NAME
                        [--format delta|parquet|plan|fingerprint] [options]
  protolake schema show --registry URL --subject S [--version N] [--message NAME] [--format …] [options]
  protolake schema diff OLD NEW --message NAME [--proto-path DIR]... [options]
  protolake schema diff --registry URL --subject S OLD NEW [--message NAME] [options]
  protolake schema diff TABLE_URI NEW [--message NAME] [--registry URL --subject S] [options]

show prints the table schema derived from a protobuf message: the Delta
schemaString (pretty-printed), the Parquet schema of the data files, the
shredding plan, or the proto version's fingerprint.

diff compares two versions of a message (OLD: the table's, NEW: the
candidate). OLD and NEW are each a descriptor set (.binpb, .pb, .desc) or a
.proto file; a .proto file is compiled with the --proto-path directory that
holds it (else its own directory) first, so OLD and NEW may live in two
trees with the same relative names. It prints every change and exits 0 when
NEW is compatible, 1 when a change is breaking, 2 on error.

With --registry (a Confluent-compatible schema registry) the schema is the
subject's version N (--version, default the latest) for show, and for diff
OLD and NEW may be version numbers of the subject (or "latest"); references
are resolved. --message defaults to the schema's first message. Credentials:
--registry-user with --registry-password-env VAR, or --registry-token-env VAR.

With a table (a URI or a directory) as OLD, NEW is judged exactly as
'protolake run' judges it at start: against the table's stored schema (which
keeps removed fields' columns) and every proto version archived in the table
(_protolake/descriptors/: the pinned one and earlier pins), whose reserved
numbers and names, removed fields and enum values NEW must respect. An older
version of the pinned one is compatible (it writes the fields it knows).
--message defaults to the table's message; with --registry, NEW may be a
version number of the subject. The
options must be the table's config: a different --partition is a
configuration error (exit 2), not a breaking change.

options (the same as the table config keys):
  --enums string|int            enum columns hold names (default) or numbers
  --uint64 decimal|long         uint64/fixed64 as decimal(20,0) (default) or long bits
  --max-recursion-depth N       unroll recursive messages N levels (default 0: error)
  --no-kafka-meta               leave out the _kafka metadata column
  --no-unknown                  leave out the _unknown column
  --partition SPEC              a partition column (repeatable): FIELD, day(FIELD),
                                hour(FIELD), day(_kafka.timestamp), NAME=day(FIELD)…
`

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// schemaFlags are the flags both subcommands share.
type schemaFlags struct {
	fs         *flag.FlagSet
	message    string
	protoPaths multiFlag
	opts       schema.Options
	enums      string
	uint64     string
	partitions multiFlag

	registry registry.Config
	subject  string
}

func newSchemaFlags(name string, stderr io.Writer) *schemaFlags {
	f := &schemaFlags{fs: flag.NewFlagSet("schema "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() { fmt.Fprint(stderr, schemaUsage) }
	f.fs.StringVar(&f.message, "message", "", "full name of the message (e.g. adtrack.v1.AdImpression)")
	f.fs.Var(&f.protoPaths, "proto-path", "import path for .proto files (repeatable)")
	f.fs.StringVar(&f.enums, "enums", "string", "enum columns: string or int")
	f.fs.StringVar(&f.uint64, "uint64", "decimal", "uint64/fixed64 columns: decimal or long")
	f.fs.IntVar(&f.opts.MaxRecursionDepth, "max-recursion-depth", 0, "unroll recursive messages N levels (0: recursion is an error)")
	f.fs.BoolVar(&f.opts.NoKafkaMeta, "no-kafka-meta", false, "leave out the _kafka metadata column")
	f.fs.BoolVar(&f.opts.NoUnknown, "no-unknown", false, "leave out the _unknown column")
	f.fs.Var(&f.partitions, "partition", "partition column spec (repeatable)")
	f.fs.StringVar(&f.registry.URL, "registry", "", "schema registry URL (Confluent-compatible REST API)")
	f.fs.StringVar(&f.subject, "subject", "", "registry subject (with --registry), e.g. payments-value")
	f.fs.StringVar(&f.registry.Username, "registry-user", "", "registry basic-auth user")
	f.fs.StringVar(&f.registry.PasswordEnv, "registry-password-env", "", "environment variable holding the basic-auth password")
	f.fs.StringVar(&f.registry.BearerTokenEnv, "registry-token-env", "", "environment variable holding a bearer token")
	return f
}

// registryVersion loads version (-1: latest) of the subject from the
// registry and the message (default: the schema's first); label names it.
func (f *schemaFlags) registryVersion(ctx context.Context, version int) (md protoreflect.MessageDescriptor, label string, err error) {
	cl, err := registry.New(f.registry, registry.Options{})
	if err != nil {
		return nil, "", usageError{err}
	}
	sch, sv, err := cl.SubjectVersion(ctx, f.subject, version)
	if err != nil {
		return nil, "", err
	}
	label = fmt.Sprintf("%s version %d (schema id %d)", sv.Subject, sv.Version, sch.ID)
	if f.message == "" {
		md, err = sch.Message(nil)
	} else {
		md, err = schema.FindMessage(sch.Files, f.message, label)
	}
	if err != nil {
		return nil, "", err
	}
	return md, label, nil
}

// parse parses flags and positional arguments in any order.
func (f *schemaFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = f.fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	f.opts.Enums = schema.EnumMode(f.enums)
	f.opts.Uint64 = schema.Uint64Mode(f.uint64)
	f.opts.Partitions = f.partitions
	if err := f.opts.Validate(); err != nil {
		return nil, usageError{err}
	}
	if (f.registry.URL == "") != (f.subject == "") {
		return nil, usageError{errors.New("--registry URL and --subject S go together")}
	}
	if f.message == "" && f.registry.URL == "" {
		return nil, usageError{errors.New("--message NAME is required (the message's full name, e.g. adtrack.v1.AdImpression)")}
	}
	return pos, nil
}

func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, schemaUsage)
		return usageError{errors.New("schema: missing subcommand (show or diff)")}
	}
	switch args[0] {
	case "show":
		return runSchemaShow(ctx, args[1:], stdout, stderr)
	case "diff":
		return runSchemaDiff(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, schemaUsage)
		return nil
	}
	fmt.Fprint(stderr, schemaUsage)
	return usageError{fmt.Errorf("schema: unknown subcommand %q (want show or diff)", args[0])}
}

func runSchemaShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newSchemaFlags("show", stderr)
	var descSet, format string
	var version int
	f.fs.StringVar(&descSet, "descriptor-set", "", "binary FileDescriptorSet (protoc --include_imports -o, buf build -o)")
	f.fs.StringVar(&format, "format", "delta", "output: delta, parquet, plan or fingerprint")
	f.fs.IntVar(&version, "version", -1, "registry subject version (with --registry; default: the latest)")
	files, err := f.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch format {
	case "delta", "parquet", "plan", "fingerprint":
	default:
		return usageError{fmt.Errorf("--format %q: want delta, parquet, plan or fingerprint", format)}
	}
	var md protoreflect.MessageDescriptor
	if f.registry.URL != "" {
		if descSet != "" || len(files) > 0 {
			return usageError{errors.New("give --registry or descriptors (--descriptor-set, .proto files), not both")}
		}
		if version == 0 || version < -1 {
			return usageError{fmt.Errorf("--version %d: versions start at 1", version)}
		}
		var label string
		if md, label, err = f.registryVersion(ctx, version); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s: %s\n", label, md.FullName())
	} else {
		if descSet != "" && len(files) > 0 {
			return usageError{errors.New("give either --descriptor-set or .proto files, not both")}
		}
		if descSet == "" && len(files) == 0 {
			return usageError{errors.New("no descriptors: give --descriptor-set FILE or .proto files (with --proto-path DIR)")}
		}
		src := schema.Source{DescriptorSet: descSet, Files: files, ImportPaths: importPathsFor(f.protoPaths, files)}
		if md, err = schema.Load(ctx, src, f.message); err != nil {
			return err
		}
	}
	if format == "fingerprint" {
		fp, err := schema.Fingerprint(md)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, fp)
		return nil
	}
	t, err := schema.Derive(md, f.opts)
	if err != nil {
		return err
	}
	for _, w := range t.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	switch format {
	case "delta":
		b, err := t.DeltaJSON()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "parquet":
		_, err := io.WriteString(stdout, t.ParquetText())
		return err
	default:
		return t.WritePlan(stdout)
	}
}

func runSchemaDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newSchemaFlags("diff", stderr)
	pos, err := f.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError{fmt.Errorf("schema diff takes two arguments, OLD and NEW (descriptor sets or .proto files); got %d", len(pos))}
	}
	if isTableURI(pos[0]) {
		return diffTable(ctx, f, pos[0], pos[1], stdout)
	}
	oldMD, err := f.loadVersion(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("OLD %s: %w", pos[0], err)
	}
	newMD, err := f.loadVersion(ctx, pos[1])
	if err != nil {
		return fmt.Errorf("NEW %s: %w", pos[1], err)
	}
	if f.message == "" {
		f.message = string(newMD.FullName())
	}
	ev, err := schema.Diff(oldMD, newMD, f.opts)
	var inc *schema.IncompatibleError
	if err != nil && !errors.As(err, &inc) {
		return err
	}
	if inc != nil {
		fmt.Fprintf(stdout, "breaking: %s in %s cannot write to a table created with %s (%d breaking change(s))\n", f.message, pos[1], pos[0], len(inc.Changes))
	} else {
		fmt.Fprintf(stdout, "compatible: %s in %s can write to a table created with %s\n", f.message, pos[1], pos[0])
	}
	if len(ev.Changes) == 0 {
		fmt.Fprintln(stdout, "  no changes")
	}
	for _, c := range ev.Changes {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	if inc != nil {
		return exitError{code: 1}
	}
	return nil
}

// loadVersion loads a message from a registry version (with --registry:
// a number or "latest"), a descriptor set or a .proto file.
func (f *schemaFlags) loadVersion(ctx context.Context, arg string) (protoreflect.MessageDescriptor, error) {
	if f.registry.URL != "" {
		v, err := strconv.Atoi(arg)
		if arg == "latest" {
			v, err = -1, nil
		}
		if err == nil {
			if v < 1 && v != -1 {
				return nil, usageError{fmt.Errorf("version %d: versions start at 1", v)}
			}
			md, _, err := f.registryVersion(ctx, v)
			return md, err
		}
	}
	if f.message == "" {
		return nil, usageError{errors.New("--message NAME is required for a descriptor set or .proto file")}
	}
	return loadVersion(ctx, arg, f.protoPaths, f.message)
}

// isTableURI reports whether OLD names a table (a URL or a directory)
// rather than a descriptor set or .proto file.
func isTableURI(p string) bool {
	if strings.Contains(p, "://") {
		return true
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// diffTable is `schema diff TABLE_URI NEW`: NEW judged as `run` judges it at
// start, against everything the table has ever held (ingest.CheckTable).
func diffTable(ctx context.Context, f *schemaFlags, uri, newPath string, stdout io.Writer) error {
	shown := open.Redact(uri)
	store, err := openTableStore(ctx, uri)
	if err != nil {
		return fmt.Errorf("OLD %s: %w", shown, err)
	}
	defer open.Close(store)
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		return fmt.Errorf("OLD %s: %w", shown, err)
	}
	snap, err := tbl.Snapshot(ctx)
	if errors.Is(err, commitlog.ErrNoTable) {
		return fmt.Errorf("OLD %s: no Delta table there (no _delta_log entries)", shown)
	}
	if err != nil {
		return fmt.Errorf("OLD %s: %w", shown, err)
	}
	if f.message == "" {
		f.message = commitlog.PinOf(snap.Metadata()).Message // the table's message
	}
	newMD, err := f.loadVersion(ctx, newPath)
	if err != nil {
		return fmt.Errorf("NEW %s: %w", newPath, err)
	}
	c, err := ingest.CheckTable(ctx, tbl, snap.Metadata(), newMD, f.opts)
	var inc *schema.IncompatibleError
	var pe *schema.PartitioningError
	switch {
	case errors.As(err, &pe):
		return usageError{fmt.Errorf("table %s: %w", shown, err)}
	case err != nil && !errors.As(err, &inc):
		return fmt.Errorf("table %s: %w", shown, err)
	}
	pinned := "not pinned to a proto version"
	if p := c.Pin; p.Fingerprint != "" {
		pinned = "pinned to " + p.Message
		if p.Version != "" {
			pinned += " " + p.Version
		}
		pinned += ", fingerprint " + p.Fingerprint[:min(12, len(p.Fingerprint))]
	}
	switch {
	case inc != nil:
		fmt.Fprintf(stdout, "breaking: %s in %s cannot write to table %s (%s) (%d breaking change(s))\n", newMD.FullName(), newPath, shown, pinned, len(inc.Changes))
	case c.Older:
		fmt.Fprintf(stdout, "compatible: %s in %s is an older version of the one table %s is %s: it writes the fields it knows, the others read null; the table keeps its schema and pin\n", newMD.FullName(), newPath, shown, pinned)
	default:
		fmt.Fprintf(stdout, "compatible: %s in %s can write to table %s (%s)\n", newMD.FullName(), newPath, shown, pinned)
	}
	if n := len(c.Judged); n > 0 {
		fmt.Fprintf(stdout, "  judged against the table's schema and %d archived proto version(s)\n", n)
	}
	if len(c.Evolution.Changes) == 0 {
		fmt.Fprintln(stdout, "  no changes")
	}
	for _, ch := range c.Evolution.Changes {
		fmt.Fprintf(stdout, "  %s\n", ch)
	}
	if inc != nil {
		return exitError{code: 1}
	}
	return nil
}

// loadVersion loads a message from a descriptor set or a .proto file.
func loadVersion(ctx context.Context, path string, protoPaths []string, message string) (protoreflect.MessageDescriptor, error) {
	src := schema.Source{DescriptorSet: path}
	if strings.HasSuffix(path, ".proto") {
		src = schema.Source{Files: []string{path}, ImportPaths: importPathsFor(protoPaths, []string{path})}
	} else if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return schema.Load(ctx, src, message)
}

// importPathsFor orders the import paths so that the one holding the
// (single) file comes first — OLD and NEW may share relative names in
// different trees — and adds the file's directory when no path holds it.
func importPathsFor(paths, files []string) []string {
	if len(files) != 1 {
		return paths
	}
	file := filepath.Clean(files[0])
	if _, err := os.Stat(file); err != nil {
		return paths // a name relative to the import paths, as protoc takes it
	}
	for i, p := range paths {
		if r, err := filepath.Rel(filepath.Clean(p), file); err == nil && !strings.HasPrefix(r, "..") {
			out := append([]string{p}, paths[:i]...)
			return append(out, paths[i+1:]...)
		}
	}
	if len(paths) == 0 {
		return []string{filepath.Dir(file)}
	}
	return append([]string{filepath.Dir(file)}, paths...)
}
