package ducktest

import "testing"

func TestOpenAndQuery(t *testing.T) {
	db := Open(t)
	got := Rows(t, db, "SELECT 1 + 1, NULL, 'a''b'")
	if len(got) != 1 || got[0][0] != "2" || got[0][1] != "NULL" || got[0][2] != "a'b" {
		t.Fatalf("got %v, want [[2 NULL a'b]]", got)
	}
	if q := ReadParquet("x'y.parquet"); q != "read_parquet(['x''y.parquet'])" {
		t.Fatalf("ReadParquet = %s", q)
	}
}
