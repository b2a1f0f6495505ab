package commitlog

import (
	"strings"
	"testing"

	"github.com/protolake/protolake/schema"
)

// TestSchemaDepthAgreesWithSchema: the log's schema parser and
// schema.ParseSchemaString accept exactly schema.MaxTypeDepth levels, the
// limit schema.Derive enforces.
func TestSchemaDepthAgreesWithSchema(t *testing.T) {
	if maxTypeDepth != schema.MaxTypeDepth {
		t.Fatalf("commitlog reads %d levels, schema derives up to %d", maxTypeDepth, schema.MaxTypeDepth)
	}
	nested := func(depth int) string {
		typ := `"long"`
		for range depth {
			typ = `{"type":"struct","fields":[{"name":"a","type":` + typ + `,"nullable":true,"metadata":{}}]}`
		}
		return `{"type":"struct","fields":[{"name":"c","type":` + typ + `,"nullable":true,"metadata":{}}]}`
	}
	for _, depth := range []int{schema.MaxTypeDepth, schema.MaxTypeDepth + 1} {
		s := nested(depth)
		_, errLog := SchemaColumns(s)
		_, errSchema := schema.ParseSchemaString(s)
		ok := depth <= schema.MaxTypeDepth
		if (errLog == nil) != ok || (errSchema == nil) != ok {
			t.Errorf("depth %d: commitlog %v, schema %v; want both to accept: %v", depth, errLog, errSchema, ok)
		}
		if !ok && !strings.Contains(errLog.Error(), "deeper than") {
			t.Errorf("depth %d: %v", depth, errLog)
		}
	}
}
