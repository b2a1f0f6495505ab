package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/storagetest"
)

func newStore(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t) })
}

// TestRootCreatedOnFirstWrite: New writes nothing (a table opened by a
// start that then fails leaves no directory behind); the first Put creates
// the root, reads before it see an empty store.
func TestRootCreatedOnFirstWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root() != dir {
		t.Fatalf("Root() = %q, want %q", s.Root(), dir)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Fatalf("New created %s: %v", filepath.Dir(dir), err)
	}
	if objs, err := s.List(t.Context(), ""); err != nil || len(objs) != 0 {
		t.Fatalf("List before any write = %v, %v", objs, err)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Get before any write = %v, want ErrNotExist", err)
	}
	if err := s.PutIfAbsent(t.Context(), "_delta_log/0.json", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "_delta_log", "0.json")); err != nil || fi.Size() != 1 {
		t.Fatalf("first write: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := local.New(file); err == nil {
		t.Error("New on a regular file succeeded")
	}
}

func TestFilesLandUnderRoot(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "_delta_log/00000000000000000000.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Root(), "_delta_log", "00000000000000000000.json"))
	if err != nil || string(got) != "{}" {
		t.Fatalf("file on disk = %q, %v; want {}", got, err)
	}
	// No temporary files are left next to it.
	ents, err := os.ReadDir(filepath.Join(s.Root(), "_delta_log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("_delta_log holds %d entries, want 1: %v", len(ents), ents)
	}
}

func TestListSkipsTempFilesAndDirectories(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	// A crash mid-write leaves a temporary file; an empty directory may stay
	// after deletes.
	if err := os.MkdirAll(filepath.Join(s.Root(), "p", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "p", ".protolake-tmp-123"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "p/real", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "p/real" {
		t.Fatalf("List = %v, want only p/real", objs)
	}
}

func TestPutOverDirectoryFails(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "d/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// A directory is not an object: neither "exists" nor writable.
	if err := s.PutIfAbsent(ctx, "d", strings.NewReader("y")); err == nil || errors.Is(err, storage.ErrExist) {
		t.Fatalf("PutIfAbsent over a directory = %v, want a plain error", err)
	}
	if err := s.Put(ctx, "d/x/y", strings.NewReader("y")); err == nil || errors.Is(err, storage.ErrExist) {
		t.Fatalf("Put below a file = %v, want a plain error", err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatalf("Delete of a directory key = %v, want nil (not an object)", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "d", "x")); err != nil {
		t.Fatalf("Delete of directory key removed data: %v", err)
	}
}

// Two stores on the same directory behave like two processes.
func TestPutIfAbsentAcrossStores(t *testing.T) {
	dir := t.TempDir()
	a, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.PutIfAbsent(ctx, "k", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.PutIfAbsent(ctx, "k", strings.NewReader("b")); !errors.Is(err, storage.ErrExist) {
		t.Fatalf("second store's PutIfAbsent = %v, want ErrExist", err)
	}
}

// TestSymlinkedDirectoryLeavingRoot: a partition directory that is a
// symlink out of the table (as an operator's mistake or an attacker with
// write access to the table could leave) is not followed by any write:
// Put, PutIfAbsent, Delete and Stat fail naming the escape, nothing is created
// or removed outside, and List does not return the outside files. A
// symlink that stays below the root is followed as before.
func TestSymlinkedDirectoryLeavingRoot(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "inside/x", strings.NewReader("in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.Root(), "day=2026-12-01")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("inside", filepath.Join(s.Root(), "alias")); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"Put":             func() error { return s.Put(ctx, "day=2026-12-01/part-1.parquet", strings.NewReader("data")) },
		"Put over":        func() error { return s.Put(ctx, "day=2026-12-01/victim", strings.NewReader("data")) },
		"PutIfAbsent":     func() error { return s.PutIfAbsent(ctx, "day=2026-12-01/part-2.parquet", strings.NewReader("data")) },
		"Put in a subdir": func() error { return s.Put(ctx, "day=2026-12-01/sub/part-3.parquet", strings.NewReader("data")) },
		"Delete":          func() error { return s.Delete(ctx, "day=2026-12-01/victim") },
		"Stat": func() error {
			_, err := s.Stat(ctx, "day=2026-12-01/victim")
			if errors.Is(err, storage.ErrNotExist) {
				return nil // a plain "absent" would hide the escape
			}
			return err
		},
		"List": func() error {
			objs, err := s.List(ctx, "day=2026-12-01/")
			if err == nil && len(objs) > 0 {
				t.Errorf("List returned files outside the root: %v", objs)
			}
			return err
		},
	} {
		if err := op(); err == nil {
			t.Errorf("%s through a symlink leaving the root succeeded", name)
		}
	}
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "victim" {
		t.Errorf("outside directory now holds %v, want only victim", ents)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "victim")); err != nil || string(b) != "keep" {
		t.Errorf("outside file = %q, %v; want it untouched", b, err)
	}
	// A symlink that stays below the root is followed.
	if err := s.PutIfAbsent(ctx, "alias/y", strings.NewReader("y")); err != nil {
		t.Fatalf("PutIfAbsent through a symlink inside the root: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root(), "inside", "y")); err != nil || string(b) != "y" {
		t.Fatalf("inside/y = %q, %v", b, err)
	}
	if err := s.Delete(ctx, "alias/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "inside", "y")); !os.IsNotExist(err) {
		t.Fatalf("Delete through an inside symlink left inside/y: %v", err)
	}
}
