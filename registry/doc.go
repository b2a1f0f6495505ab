// Package registry resolves Confluent Schema Registry schema ids to compiled
// protobuf descriptors, for topics whose records are framed by a
// schema-registry serializer (magic byte 0, a 4-byte schema id, the
// message-index path, then the message).
//
// A Client fetches a schema by id with franz-go's pkg/sr (basic auth, bearer
// token, TLS), resolves its references recursively (imports of other
// subjects' schemas, by subject and version), compiles the text with
// protocompile (schema.CompileSources) and picks the message a record's
// message-index path names.
//
// Guarantees:
//   - A schema id names immutable text in every Confluent-compatible
//     registry, so compiled schemas are cached by id and referenced schemas by
//     (subject, version) in bounded LRU caches (Config.CacheSize entries
//     each); the same id never compiles twice while it is cached.
//   - Errors fall into three classes callers branch on: ErrNotFound (the
//     registry answered and has no such id, subject or version — the
//     record's fault), *SchemaError (the registry's text is not a protobuf
//     schema protolake can compile — the producer's fault) and
//     ErrUnavailable (the registry could not be asked: connection refused,
//     timeouts, 5xx, 429, or a rejected credential — nobody's record is at
//     fault, so callers wait and retry). A not-found answer is cached for
//     Config.NegativeTTL so a stream of records with an unknown id does not
//     ask the registry once per record.
//   - Nothing panics on the registry's answers: compiler failures on
//     malformed text are errors.
package registry
