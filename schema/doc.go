// Package schema compiles a protobuf message descriptor into a table schema
// and judges whether a new proto version is compatible with a table.
//
// Derive turns a message descriptor into a *Table holding, in one value, the
// Delta schemaString (Spark StructType JSON), the Parquet schema of the data
// files, and the shredding Plan that a decoder follows to write protobuf
// wire bytes straight into Parquet column buffers. The mapping is documented
// in docs/type-mapping.md.
//
// Guarantees:
//   - Derivation is deterministic: the same descriptor and Options give
//     byte-identical schemaString, Parquet schema and plan. Column order is
//     proto declaration order; Parquet field_id is the proto field number.
//   - Derivation never panics on input. Descriptors it cannot map (recursion
//     without max_recursion_depth, names colliding ignoring case, names Delta
//     rejects) yield typed errors naming the field path and what to do;
//     fields it drops (empty messages) are listed in Table.Warnings.
//   - Nothing on the wire is lost silently: unknown top-level fields and
//     extensions go to the _unknown column (when enabled), recursion beyond
//     max_recursion_depth is kept as serialized bytes.
//   - Diff accepts only additive changes; everything else is an
//     *IncompatibleError listing each breaking change with its field path.
//     Columns are matched by field number, so renamed fields keep their
//     column name.
//   - Fingerprint depends only on the message's file and its transitive
//     imports in canonical form, not on file order, unrelated files, comments
//     or code-generation options.
package schema
