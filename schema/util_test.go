package schema

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

const protoDir = "../testdata/proto"

var (
	setsMu sync.Mutex
	sets   = map[string]*protoregistry.Files{}
)

// loadSet reads a committed descriptor set under testdata/proto.
func loadSet(t testing.TB, rel string) *protoregistry.Files {
	t.Helper()
	setsMu.Lock()
	defer setsMu.Unlock()
	if f, ok := sets[rel]; ok {
		return f
	}
	f, err := ReadDescriptorSet(filepath.Join(protoDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	sets[rel] = f
	return f
}

func msg(t testing.TB, set, name string) protoreflect.MessageDescriptor {
	t.Helper()
	md, err := FindMessage(loadSet(t, set), name, set)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./schema -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./schema -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
