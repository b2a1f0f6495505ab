package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolake/protolake/registry"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestSchemaRegistry runs schema show and diff against a fake registry
// (franz-go's srfake, the documented REST API) with a reference across
// subjects.
func TestSchemaRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	must := func(subject, text string, refs ...sr.SchemaReference) {
		if _, _, err := reg.RegisterSchema(subject, sr.Schema{Schema: text, Type: sr.TypeProtobuf, References: refs}); err != nil {
			t.Fatal(err)
		}
	}
	must("money", `syntax = "proto3"; package c; message Money { int64 units = 1; }`)
	ref := sr.SchemaReference{Name: "c/money.proto", Subject: "money", Version: 1}
	must("pay-value", `syntax = "proto3"; package p; import "c/money.proto"; message Pay { string id = 1; c.Money amount = 2; }`, ref)
	must("pay-value", `syntax = "proto3"; package p; import "c/money.proto"; message Pay { string id = 1; c.Money amount = 2; string method = 3; }`, ref)
	must("pay-value", `syntax = "proto3"; package p; import "c/money.proto"; message Pay { int64 id = 1; c.Money amount = 2; string method = 3; }`, ref)
	r := []string{"--registry", reg.URL(), "--subject", "pay-value"}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"show latest", append([]string{"schema", "show"}, r...), 0, []string{`"name": "method"`, `"name": "units"`, `"type": "long"`}, []string{"pay-value version 3 (schema id 4): p.Pay"}},
		{"show version 1", append([]string{"schema", "show", "--version", "1", "--format", "parquet"}, r...), 0, []string{"units"}, []string{"pay-value version 1"}},
		{"show message", append([]string{"schema", "show", "--message", "c.Money", "--version", "2"}, r...), 0, []string{`"name": "units"`}, nil},
		{"diff compatible", append([]string{"schema", "diff", "1", "2"}, r...), 0, []string{"compatible", "method"}, nil},
		{"diff breaking", append([]string{"schema", "diff", "2", "latest"}, r...), 1, []string{"breaking", "id (field 1)"}, nil},
		{"unknown version", append([]string{"schema", "show", "--version", "9"}, r...), 2, nil, []string{"not found in the schema registry"}},
		{"subject without registry", []string{"schema", "show", "--subject", "x"}, 2, nil, []string{"go together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			wantOutput(t, out, errOut, tc.stdout, tc.stderr)
		})
	}
}

const registryRunYAML = `
kafka:
  brokers: [%s]
  group_id: lake
tables:
  - uri: %s
    topics: [pay]
    schema_registry:
      url: %s
      timeout: 5s
    flush:
      commit_interval: 30s
http:
  listen: "off"
log:
  format: text
`

// TestRunWithRegistry is the "done when" from the command line: a
// config with a registry URL (and the default subject pay-value), no
// descriptor file; the producer moves from version 1 to 2 between two runs;
// `history` shows the subject and version each commit was written with.
func TestRunWithRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	v1 := `syntax = "proto3"; package p; message Pay { string id = 1; }`
	v2 := `syntax = "proto3"; package p; message Pay { string id = 1; string method = 2; }`
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "pay"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl, err := registry.New(registry.Config{URL: reg.URL()}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	produce := func(text string, from, to int) {
		id, _, err := reg.RegisterSchema("pay-value", sr.Schema{Schema: text, Type: sr.TypeProtobuf})
		if err != nil {
			t.Fatal(err)
		}
		sch, err := cl.Schema(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := sch.Message(nil)
		for i := from; i < to; i++ {
			m := dynamicpb.NewMessage(md)
			m.Set(md.Fields().ByName("id"), protoreflect.ValueOfString(fmt.Sprint("p-", i)))
			if f := md.Fields().ByName("method"); f != nil {
				m.Set(f, protoreflect.ValueOfString("card"))
			}
			v, err := sr.Encode(m, &sr.ConfluentHeader{}, id, []int{0}, func(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) })
			if err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "pay", Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "pay")
	cfgPath := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, registryRunYAML, c.ListenAddrs()[0], dir, reg.URL()), 0o644); err != nil {
		t.Fatal(err)
	}
	produce(v1, 0, 10)
	if _, errOut, code := runCLI(t, "run", "--config", cfgPath, "--until-caught-up"); code != 0 {
		t.Fatalf("run 1: exit %d\n%s", code, errOut)
	}
	produce(v2, 10, 20)
	if _, errOut, code := runCLI(t, "run", "--config", cfgPath, "--until-caught-up"); code != 0 {
		t.Fatalf("run 2: exit %d\n%s", code, errOut)
	}
	out, errOut, code := runCLI(t, "history", dir)
	if code != 0 {
		t.Fatalf("history: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "pay-value/1") || !strings.Contains(out, "pay-value/2*") {
		t.Fatalf("history does not show the registry versions:\n%s", out)
	}
	t.Logf("history:\n%s", out)
}
