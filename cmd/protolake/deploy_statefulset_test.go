package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStatefulSetStaticMembership: deploy/statefulset.yaml runs the same
// config as the Deployment and sets PROTOLAKE_KAFKA_INSTANCE_ID from the pod
// name, which becomes kafka.instance_id.
func TestStatefulSetStaticMembership(t *testing.T) {
	ss := k8sDocs(t, "statefulset.yaml")[0]
	if dig(t, ss, "kind") != "StatefulSet" {
		t.Fatalf("kind %v", dig(t, ss, "kind"))
	}
	c := dig(t, ss, "spec", "template", "spec", "containers", 0)
	env := dig(t, c, "env").([]any)
	found := false
	for i := range env {
		if toString(dig(t, env, i, "name")) == "PROTOLAKE_KAFKA_INSTANCE_ID" {
			found = true
			if got := toString(dig(t, env, i, "valueFrom", "fieldRef", "fieldPath")); got != "metadata.name" {
				t.Errorf("PROTOLAKE_KAFKA_INSTANCE_ID from %q, want metadata.name", got)
			}
		}
	}
	if !found {
		t.Fatal("no PROTOLAKE_KAFKA_INSTANCE_ID in the StatefulSet")
	}
	dep := dig(t, k8sDocs(t, "deployment.yaml")[0], "spec", "template", "spec", "containers", 0)
	if a, b := strs(dig(t, c, "args")), strs(dig(t, dep, "args")); len(a) != len(b) || a[len(a)-1] != b[len(b)-1] {
		t.Errorf("StatefulSet args %v, Deployment args %v", a, b)
	}
	conf := toString(dig(t, k8sDocs(t, "configmap.yaml")[0], "data", "protolake.yaml"))
	confFile := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadRunConfig([]string{"--config", confFile}, []string{"PROTOLAKE_KAFKA_INSTANCE_ID=protolake-1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.InstanceID != "protolake-1" {
		t.Errorf("kafka.instance_id = %q from the pod name, want protolake-1", cfg.Kafka.InstanceID)
	}
}
