package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// k8sDocs decodes every YAML document of a deploy/ file.
func k8sDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, d)
	}
	return out
}

// dig walks maps and lists: dig(d, "spec", "containers", 0, "args").
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no element %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i] = toString(x)
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	}
	return ""
}

// TestDeployManifests checks the Kubernetes examples against the program:
// the ConfigMap's protolake.yaml is a valid run config; the Deployment runs
// it, probes /healthz and /readyz on the configured port, and waits longer
// than the shutdown deadline; the CronJobs' arguments are accepted by
// compact and vacuum (run against a local table).
func TestDeployManifests(t *testing.T) {
	cm := k8sDocs(t, "configmap.yaml")[0]
	conf := toString(dig(t, cm, "data", "protolake.yaml"))
	confFile := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadRunConfig([]string{"--config", confFile}, nil)
	if err != nil {
		t.Fatalf("deploy/configmap.yaml protolake.yaml: %v", err)
	}

	dep := k8sDocs(t, "deployment.yaml")[0]
	pod := dig(t, dep, "spec", "template", "spec")
	grace := dig(t, pod, "terminationGracePeriodSeconds").(int)
	if time.Duration(grace)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d <= shutdown_timeout %v", grace, cfg.ShutdownTimeout)
	}
	c := dig(t, pod, "containers", 0)
	args := strs(dig(t, c, "args"))
	if len(args) != 3 || args[0] != "run" || args[1] != "--config" {
		t.Fatalf("deployment args %v", args)
	}
	mount := toString(dig(t, c, "volumeMounts", 0, "mountPath"))
	if filepath.Dir(args[2]) != mount || filepath.Base(args[2]) != "protolake.yaml" || toString(dig(t, pod, "volumes", 0, "configMap", "name")) != toString(dig(t, cm, "metadata", "name")) {
		t.Errorf("--config %s is not the ConfigMap mounted at %s", args[2], mount)
	}
	_, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
	if got := strconv.Itoa(dig(t, c, "ports", 0, "containerPort").(int)); got != port {
		t.Errorf("containerPort %s, http.listen port %s", got, port)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := toString(dig(t, c, probe, "httpGet", "path")); got != path {
			t.Errorf("%s path %q, want %q", probe, got, path)
		}
	}

	for file, cmd := range map[string]string{"cronjob-compact.yaml": "compact", "cronjob-vacuum.yaml": "vacuum"} {
		cj := k8sDocs(t, file)[0]
		if dig(t, cj, "kind") != "CronJob" {
			t.Errorf("%s: kind %v", file, dig(t, cj, "kind"))
		}
		args := strs(dig(t, cj, "spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "args"))
		if len(args) < 2 || args[0] != cmd || !strings.HasPrefix(args[1], "s3://") || args[1] != cfg.Tables[0].URI {
			t.Fatalf("%s: args %v, want %s of the table in the ConfigMap (%s)", file, args, cmd, cfg.Tables[0].URI)
		}
		// The same flags against a local table.
		args[1] = copyTable(t, "deltars-simple_table_with_checkpoint")
		if _, stderr, code := runCLI(t, args...); code != 0 {
			t.Errorf("%s: %v: exit %d\n%s", file, args, code, stderr)
		}
	}
}
