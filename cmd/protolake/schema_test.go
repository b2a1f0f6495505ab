package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const testProto = "../../testdata/proto"

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
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
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
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
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
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
