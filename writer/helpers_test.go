package writer

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

func loadMessage(t testing.TB, set, name string) protoreflect.MessageDescriptor {
	t.Helper()
	files, err := schema.ReadDescriptorSet(filepath.Join("..", "testdata", "proto", set))
	if err != nil {
		t.Fatal(err)
	}
	md, err := schema.FindMessage(files, name, set)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func deriveTable(t testing.TB, set, name string, opts schema.Options) *schema.Table {
	t.Helper()
	tab, err := schema.Derive(loadMessage(t, set, name), opts)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// newTableWriter derives message name of descriptor set set with default
// options and returns a Writer for it with cfg, on a memory store.
func newTableWriter(t testing.TB, set, name string, cfg Config) (*Writer, *mem.Store) {
	t.Helper()
	tab := deriveTable(t, set, name, schema.Options{})
	st := mem.New()
	w, err := NewTable(cfg, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

// flushRows flushes w and returns its files and every row of them as
// DuckDB reads them.
func flushRows(t testing.TB, w *Writer, st *mem.Store) ([]File, []map[string]any) {
	t.Helper()
	files, err := w.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return files, readRows(t, export(t, st, files))
}

// export copies the store's files to a temp dir for DuckDB and returns
// their local paths.
func export(t testing.TB, st *mem.Store, files []File) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, f := range files {
		r, err := st.Get(context.Background(), f.Path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != f.Size {
			t.Fatalf("%s: stored %d bytes, metadata says %d", f.Path, len(b), f.Size)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// parquetGoRows reads file b with parquet-go, a reader independent of
// DuckDB, and calls fn with each row's index and the values of the leaf
// columns at paths (v[k] is paths[k]'s; a path is the column's names from
// the top). It fails the test unless the file holds exactly n rows.
func parquetGoRows(t testing.TB, b []byte, n int, paths [][]string, fn func(i int, v []parquet.Value)) {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != int64(n) {
		t.Fatalf("parquet-go sees %d rows, want %d", pf.NumRows(), n)
	}
	cols := make([]int, len(paths))
	for k, p := range paths {
		c, ok := pf.Schema().Lookup(p...)
		if !ok {
			t.Fatalf("parquet-go: no column %v", p)
		}
		cols[k] = c.ColumnIndex
	}
	rr := parquet.NewReader(pf)
	defer rr.Close()
	buf := make([]parquet.Row, 1000)
	v := make([]parquet.Value, len(paths))
	for i := 0; ; {
		k, err := rr.ReadRows(buf)
		for _, row := range buf[:k] {
			clear(v)
			for _, x := range row {
				for j, c := range cols {
					if x.Column() == c {
						v[j] = x
					}
				}
			}
			fn(i, v)
			i++
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
