package compact

import (
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// outputSchema is the schema new files are written with: the input file's
// schema (names, order, field ids, types, repetition) without the input's
// per-column compression and encodings, which parquet-go reports from the
// column chunk metadata and cannot always write (Spark lists RLE for INT64
// columns). Byte-array columns the input dictionary-encoded stay
// dictionary-encoded; every other column is PLAIN, and the writer's codec
// (zstd) applies to all.
func outputSchema(s *parquet.Schema) *parquet.Schema {
	return parquet.NewSchema(s.Name(), cleanNode{s})
}

type cleanNode struct{ parquet.Node }

func (n cleanNode) Encoding() encoding.Encoding { return cleanEncoding(n.Node) }

func (n cleanNode) Compression() compress.Codec { return nil }

func (n cleanNode) Fields() []parquet.Field {
	fs := n.Node.Fields()
	out := make([]parquet.Field, len(fs))
	for i, f := range fs {
		out[i] = cleanField{f}
	}
	return out
}

type cleanField struct{ parquet.Field }

func (f cleanField) Encoding() encoding.Encoding { return cleanEncoding(f.Field) }

func (f cleanField) Compression() compress.Codec { return nil }

func (f cleanField) Fields() []parquet.Field { return cleanNode{f.Field}.Fields() }

func cleanEncoding(n parquet.Node) encoding.Encoding {
	if !n.Leaf() {
		return nil
	}
	e := n.Encoding()
	if e == nil || n.Type().Kind() != parquet.ByteArray {
		return nil
	}
	switch e.Encoding() {
	//lint:ignore SA1019 Spark's parquet-mr 1.x still writes PLAIN_DICTIONARY; it is read here, not written.
	case format.RLEDictionary, format.PlainDictionary:
		return &parquet.RLEDictionary
	}
	return nil
}
