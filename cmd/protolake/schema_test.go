package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const testProto = "../../testdata/proto"

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// wantOutput reports every substring of stdout that out lacks and every
// substring of stderr that errOut lacks.
func wantOutput(t *testing.T, out, errOut string, stdout, stderr []string) {
	t.Helper()
	for _, w := range stdout {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	for _, w := range stderr {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
}

func TestSchemaShow(t *testing.T) {
	adSet := testProto + "/adtrack/v1/adtrack.binpb"
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string
		validate func(t *testing.T, out string)
	}{
		{name: "delta from descriptor set", args: []string{"schema", "show", "--descriptor-set", adSet, "--message", "adtrack.v1.AdImpression"},
			stdout: []string{`"type": "struct"`, `"name": "user_id_hash"`, `"type": "decimal(20,0)"`, `"protolake.field_number": 6`, `"name": "_kafka"`},
			validate: func(t *testing.T, out string) {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Errorf("delta output is not JSON: %v", err)
				}
			}},
		{name: "parquet from sources, flags after the file", args: []string{"schema", "show", "--proto-path", testProto, testProto + "/adtrack/v1/adtrack.proto", "--message", "adtrack.v1.AdClick", "--format", "parquet"},
			stdout: []string{"message adtrack.v1.AdClick {", "optional int64 click_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)) = 3;", "optional group utm (MAP) = 8"}},
		{name: "relative file name", args: []string{"schema", "show", "--proto-path", testProto, "adtrack/v1/adtrack.proto", "--message", "adtrack.v1.Geo", "--format", "parquet"},
			stdout: []string{"message adtrack.v1.Geo {"}},
		{name: "plan with options", args: []string{"schema", "show", "--descriptor-set", adSet, "--message", "adtrack.v1.AdImpression", "--format", "plan",
			"--enums", "int", "--uint64", "long", "--no-kafka-meta", "--no-unknown", "--partition", "day(event_time)", "--partition", "campaign_id"},
			stdout: []string{"plan for adtrack.v1.AdImpression", "conv=uint64→int64 bits", "conv=enum→int32", "partition 0: event_time_day = day(event_time) as date", "partition 1: campaign_id = identity(campaign_id) as string"}},
		{name: "fingerprint", args: []string{"schema", "show", "--descriptor-set", adSet, "--message", "adtrack.v1.AdImpression", "--format", "fingerprint"},
			validate: func(t *testing.T, out string) {
				if len(strings.TrimSpace(out)) != 64 {
					t.Errorf("fingerprint %q", out)
				}
			}},
		{name: "warnings go to stderr", args: []string{"schema", "show", "--descriptor-set", testProto + "/edge/edge.binpb", "--message", "edge.WithEmpty"},
			stderr: []string{"warning: nothing: message edge.Nothing has no fields"}},
		{name: "recursion depth", args: []string{"schema", "show", "--descriptor-set", testProto + "/edge/edge.binpb", "--message", "edge.TreeNode", "--max-recursion-depth", "1", "--format", "parquet"},
			stdout: []string{"optional group children (LIST) = 3", "required binary element;"}},
		{name: "recursion error", args: []string{"schema", "show", "--descriptor-set", testProto + "/edge/edge.binpb", "--message", "edge.TreeNode"},
			code: 2, stderr: []string{"edge.TreeNode.children → edge.TreeNode", "--max-recursion-depth"}},
		{name: "unknown message", args: []string{"schema", "show", "--descriptor-set", adSet, "--message", "AdImpression"},
			code: 2, stderr: []string{"did you mean adtrack.v1.AdImpression?"}},
		{name: "missing message flag", args: []string{"schema", "show", "--descriptor-set", adSet}, code: 2, stderr: []string{"--message NAME is required"}},
		{name: "no descriptors", args: []string{"schema", "show", "--message", "a.B"}, code: 2, stderr: []string{"no descriptors"}},
		{name: "bad format", args: []string{"schema", "show", "--descriptor-set", adSet, "--message", "a.B", "--format", "xml"}, code: 2, stderr: []string{`--format "xml"`}},
		{name: "bad enums", args: []string{"schema", "show", "--descriptor-set", adSet, "--message", "a.B", "--enums", "names"}, code: 2, stderr: []string{`option enums: "names"`}},
		{name: "unknown flag", args: []string{"schema", "show", "--nope"}, code: 2, stderr: []string{"flag provided but not defined: -nope"}},
		{name: "no subcommand", args: []string{"schema"}, code: 2, stderr: []string{"missing subcommand"}},
		{name: "unknown subcommand", args: []string{"schema", "shw"}, code: 2, stderr: []string{`unknown subcommand "shw"`}},
		{name: "help", args: []string{"schema", "show", "-h"}, code: 0, stderr: []string{"protolake schema show"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			wantOutput(t, out, errOut, tt.stdout, tt.stderr)
			if tt.validate != nil {
				tt.validate(t, out)
			}
		})
	}
}

func TestSchemaDiff(t *testing.T) {
	ev := testProto + "/evolution"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "compatible sets", args: []string{"schema", "diff", ev + "/v1/order.binpb", ev + "/v2/order.binpb", "--message", "shop.Order"},
			stdout: []string{"compatible: shop.Order", "field renamed", "lines[].currency (field 4): field added", "coupon (field 8): field removed: number reserved"}},
		{name: "breaking sources", args: []string{"schema", "diff", "--message", "shop.Order", ev + "/v1/shop/order.proto", ev + "/v3/shop/order.proto"},
			code: 1, stdout: []string{"breaking: shop.Order", "5 breaking change(s)", "BREAKING: lines[].quantity (field 2): type changed: int32 → string", "BREAKING: attributes (field 6): cardinality changed: map → repeated"}},
		{name: "sources under import paths", args: []string{"schema", "diff", "--proto-path", ev + "/v1", "--proto-path", ev + "/v3", ev + "/v1/shop/order.proto", ev + "/v3/shop/order.proto", "--message", "shop.Order"},
			code: 1, stdout: []string{"BREAKING: total_cents (field 7): type changed: int64 → double"}},
		{name: "mixed set and source", args: []string{"schema", "diff", ev + "/v1/order.binpb", ev + "/v2/shop/order.proto", "--message", "shop.Order"},
			stdout: []string{"compatible"}},
		{name: "same version", args: []string{"schema", "diff", ev + "/v1/order.binpb", ev + "/v1/order.binpb", "--message", "shop.Order"},
			stdout: []string{"compatible", "no changes"}},
		{name: "options apply to both versions", args: []string{"schema", "diff", ev + "/v1/order.binpb", ev + "/v1/order.binpb", "--message", "shop.Order", "--enums", "int"},
			stdout: []string{"compatible"}},
		{name: "one argument", args: []string{"schema", "diff", ev + "/v1/order.binpb", "--message", "shop.Order"}, code: 2, stderr: []string{"two arguments"}},
		{name: "missing file", args: []string{"schema", "diff", ev + "/v1/order.binpb", "/nonexistent.binpb", "--message", "shop.Order"}, code: 2, stderr: []string{"NEW /nonexistent.binpb"}},
		{name: "unknown message", args: []string{"schema", "diff", ev + "/v1/order.binpb", ev + "/v2/order.binpb", "--message", "shop.Ordr"}, code: 2, stderr: []string{"OLD", "did you mean shop.Order?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			wantOutput(t, out, errOut, tt.stdout, tt.stderr)
		})
	}
	// A breaking diff is an exitError{1} carrying no message of its own.
	var out bytes.Buffer
	err := run(context.Background(), []string{"schema", "diff", ev + "/v1/order.binpb", ev + "/v3/order.binpb", "--message", "shop.Order"}, &out, &out)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || ee.err != nil {
		t.Errorf("breaking diff returned %#v", err)
	}
}

// newTable creates the table at dir with `run`'s start-up (it archives the
// descriptor set it opens with).
func newTable(t *testing.T, dir, descriptorSet string, extra ...string) {
	t.Helper()
	yaml := fmt.Sprintf("kafka: {brokers: [\"127.0.0.1:1\"], group_id: lake}\nhttp: {listen: \"off\"}\ntables:\n  - uri: %s\n    topics: [orders]\n    message: shop.Order\n    descriptor_set: %s\n%s", dir, descriptorSet, strings.Join(extra, "\n"))
	cfg, err := ingest.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.NewRunner(context.Background(), cfg, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaDiffTable: `schema diff TABLE_URI NEW` judges NEW as run does,
// against the table's schema and every archived proto version.
func TestSchemaDiffTable(t *testing.T) {
	ev := testProto + "/evolution"
	v2src, err := os.ReadFile(ev + "/v2/shop/order.proto")
	if err != nil {
		t.Fatal(err)
	}
	// v4: v2 without `reserved 8; reserved "coupon";`, reusing the number.
	v4 := filepath.Join(t.TempDir(), "shop", "order.proto")
	if err := os.MkdirAll(filepath.Dir(v4), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v4, []byte(strings.Replace(string(v2src), "reserved 8; // coupon was removed\n  reserved \"coupon\";", "int64 coupon = 8;", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	byV1, byV2, byV1V2 := filepath.Join(t.TempDir(), "orders"), filepath.Join(t.TempDir(), "orders"), filepath.Join(t.TempDir(), "orders")
	newTable(t, byV1, ev+"/v1/order.binpb")
	newTable(t, byV2, ev+"/v2/order.binpb")
	newTable(t, byV1V2, ev+"/v1/order.binpb")
	newTable(t, byV1V2, ev+"/v2/order.binpb") // archived; the pin stays v1 until a commit
	evolved := filepath.Join(t.TempDir(), "orders")
	newTable(t, evolved, ev+"/v1/order.binpb")
	evolveTable(t, evolved, ev+"/v1/order.binpb", ev+"/v2/order.binpb")

	reservedReuse := "BREAKING: coupon (field 8): reserved number reused: 8 is reserved in shop.Order (a removed field's number: old data and old producers use it with its old meaning); give the field a new number"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // lines, each exactly present
		stderr string
	}{
		{name: "compatible", args: []string{byV1, ev + "/v2/order.binpb"}, stdout: []string{
			"compatible: shop.Order in " + ev + "/v2/order.binpb can write to table " + byV1 + " (pinned to shop.Order, fingerprint 6cede90ddd47)",
			"  judged against the table's schema and 1 archived proto version(s)",
			"  compatible: customer_id (field 3): field renamed (column keeps its name): customer_id → buyer_id; the column keeps the name customer_id",
			"  compatible: state (field 4): enum value added: STATE_CANCELLED = 3",
		}},
		{name: "breaking", args: []string{byV1, ev + "/v3/order.binpb"}, code: 1, stdout: []string{
			"  BREAKING: lines[].quantity (field 2): type changed: int32 → string",
			"  BREAKING: total_cents (field 7): type changed: int64 → double",
		}},
		// The table v2 created never had a coupon column: only v2's
		// archived descriptor knows that 8 and "coupon" are reserved.
		{name: "reserved number of the pinned version", args: []string{byV2, v4}, code: 1, stdout: []string{
			"breaking: shop.Order in " + v4 + " cannot write to table " + byV2 + " (pinned to shop.Order, fingerprint 2126be5541b1) (2 breaking change(s))",
			"  " + reservedReuse,
			`  BREAKING: coupon (field 8): reserved name reused: "coupon" is reserved in shop.Order (a removed field's name); give the field another name`,
		}},
		// v1 then v2 archived: the stored schema's coupon column (string)
		// and v2's reservations both speak.
		{name: "everything the table held", args: []string{byV1V2, v4}, code: 1, stdout: []string{
			"breaking: shop.Order in " + v4 + " cannot write to table " + byV1V2 + " (pinned to shop.Order, fingerprint 6cede90ddd47) (3 breaking change(s))",
			"  judged against the table's schema and 2 archived proto version(s)",
			"  BREAKING: coupon (field 8): type changed: string → int64",
			"  " + reservedReuse,
		}},
		// Mid-rollout: v2 archived its descriptor but has not committed;
		// a v1 replica restarting is not held to v2 (archived after it).
		{name: "old replica mid-rollout", args: []string{byV1V2, ev + "/v1/order.binpb"}, stdout: []string{
			"compatible: shop.Order in " + ev + "/v1/order.binpb can write to table " + byV1V2 + " (pinned to shop.Order, fingerprint 6cede90ddd47)",
			"  no changes",
		}},
		{name: "new replica mid-rollout", args: []string{byV1V2, ev + "/v2/order.binpb"}, stdout: []string{
			"  judged against the table's schema and 1 archived proto version(s)",
			"  compatible: notes (field 10): field added: repeated string as array<string>",
		}},
		{name: "older version", args: []string{evolved, ev + "/v1/order.binpb"}, stdout: []string{
			"compatible: shop.Order in " + ev + "/v1/order.binpb is an older version of the one table " + evolved + " is pinned to shop.Order v2, fingerprint 2126be5541b1: it writes the fields it knows, the others read null; the table keeps its schema and pin",
			"  compatible: lines[].currency (field 4): column not written by this version: this older version does not know the field; its rows read null",
			"  compatible: shipping (field 9): column not written by this version: this older version does not know the field; its rows read null",
			"  compatible: notes (field 10): column not written by this version: this older version does not know the field; its rows read null",
		}},
		// A table v2 created has no column for v1's coupon: v1 would lose it.
		{name: "older version with a field the table lacks", args: []string{byV2, ev + "/v1/order.binpb"}, code: 1, stdout: []string{
			"breaking: shop.Order in " + ev + "/v1/order.binpb cannot write to table " + byV2 + " (pinned to shop.Order, fingerprint 2126be5541b1) (1 breaking change(s))",
			"  compatible: shipping (field 9): column not written by this version: this older version does not know the field; its rows read null",
			"  BREAKING: coupon (field 8): field added: the table has no column for this field of the older version (a newer version removed it before the table held it), so its values would be lost",
		}},
		{name: "partitioning is configuration", args: []string{byV1, ev + "/v2/order.binpb", "--partition", "day(created_at)"}, code: 2,
			stderr: "protolake: table " + byV1 + ": configured partitioning [created_at_day=day(created_at)] differs from the table's []: a table's partitioning cannot change; configure the table's partitioning (partition_by in the table config, --partition for schema), or write to a new table\n"},
		{name: "no table", args: []string{t.TempDir(), ev + "/v2/order.binpb"}, code: 2, stderr: "no Delta table there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"schema", "diff", "--message", "shop.Order"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			lines := strings.Split(out, "\n")
			for _, w := range tt.stdout {
				if !slices.Contains(lines, w) {
					t.Errorf("stdout lacks the line %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.stderr)
			}
		})
	}
}

// evolveTable commits the merged schema and pin of newSet to the table at
// dir, as the first commit of an instance on that version would.
func evolveTable(t *testing.T, dir, oldSet, newSet string) {
	t.Helper()
	ctx := context.Background()
	load := func(p string) protoreflect.MessageDescriptor {
		md, err := schema.Load(ctx, schema.Source{DescriptorSet: p}, "shop.Order")
		if err != nil {
			t.Fatal(err)
		}
		return md
	}
	oldMD, newMD := load(oldSet), load(newSet)
	ev, err := schema.Diff(oldMD, newMD, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := schema.Fingerprint(newMD)
	if err != nil {
		t.Fatal(err)
	}
	set, err := schema.CanonicalDescriptorSet(newMD)
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.ArchiveDescriptors(ctx, fp, set); err != nil {
		t.Fatal(err)
	}
	md := snap.Metadata()
	md.SchemaString = ev.Merged.SchemaString()
	md.Configuration = map[string]string{commitlog.PropProtoMessage: "shop.Order", commitlog.PropProtoFingerprint: fp, commitlog.PropProtoVersion: "v2"}
	tx := tbl.NewTransaction(snap)
	tx.UpdateMetadata(md)
	tx.SetOperation("SET TBLPROPERTIES", nil)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
