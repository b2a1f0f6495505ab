// Package ducktest opens DuckDB, an independent Parquet reader, for tests
// that check what protolake writes. DuckDB cannot download extensions here, so
// Delta tables are read by passing a snapshot's file list to read_parquet.
package ducktest

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
)

// Open returns an in-memory DuckDB database closed when the test ends.
func Open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ReadParquet returns the SQL table expression that reads the given local
// files with DuckDB's read_parquet, e.g. "read_parquet(['a.parquet'])".
func ReadParquet(paths ...string) string {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
	}
	return fmt.Sprintf("read_parquet([%s])", strings.Join(quoted, ", "))
}

// Rows runs query and returns every row as strings (NULL as "NULL"), in the
// order DuckDB returns them; add ORDER BY for a deterministic order.
func Rows(t testing.TB, db *sql.DB, query string, args ...any) [][]string {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("duckdb query %q: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatalf("duckdb columns: %v", err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("duckdb scan: %v", err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else if b, ok := v.([]byte); ok {
				row[i] = fmt.Sprintf("%x", b)
			} else {
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("duckdb rows: %v", err)
	}
	return out
}
