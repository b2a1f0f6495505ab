package commitlog

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Writer protocol support: protolake writes protocol 1/2 tables. Version 2
// brings delta.appendOnly (enforced: removes are refused) and column
// invariants (refused when the schema declares any, since they are not
// checked). Tables with writer version 7 are writable when every listed
// writer feature is one of these.
var supportedWriterFeatures = map[string]bool{"appendOnly": true, "invariants": true}

// CheckWritable returns an *UnsupportedProtocolError when protolake cannot
// write a table with this protocol and metadata without breaking it, and an
// error wrapping ErrNoSchema when the metadata has no schemaString.
func CheckWritable(p Protocol, md Metadata) error {
	var missing []string
	if p.MinReaderVersion > 1 && !(p.MinReaderVersion == 3 && len(p.ReaderFeatures) == 0) {
		if p.MinReaderVersion == 3 {
			missing = append(missing, p.ReaderFeatures...)
		} else {
			missing = append(missing, fmt.Sprintf("minReaderVersion %d", p.MinReaderVersion))
		}
	}
	switch {
	case p.MinWriterVersion <= 2:
	case p.MinWriterVersion == 7:
		for _, f := range p.WriterFeatures {
			if !supportedWriterFeatures[f] {
				missing = append(missing, f)
			}
		}
	default:
		missing = append(missing, fmt.Sprintf("minWriterVersion %d", p.MinWriterVersion))
	}
	if p.MinWriterVersion >= 2 && strings.Contains(md.SchemaString, `"delta.invariants"`) {
		missing = append(missing, "column invariants (delta.invariants in the schema)")
	}
	if len(missing) == 0 {
		if md.SchemaString == "" {
			return fmt.Errorf("%w: protolake refuses to write to a table without a schema", ErrNoSchema)
		}
		return nil
	}
	sort.Strings(missing)
	missing = dedupe(missing)
	return &UnsupportedProtocolError{Protocol: p, Missing: missing}
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// UnsupportedProtocolError reports a table whose protocol needs versions or
// features protolake does not implement; writing it could corrupt it.
type UnsupportedProtocolError struct {
	// Protocol is the table's protocol.
	Protocol Protocol
	// Missing names each version or feature not implemented.
	Missing []string
}

// Error names what is missing and what to do.
func (e *UnsupportedProtocolError) Error() string {
	b, _ := json.Marshal(e.Protocol)
	return fmt.Sprintf("table protocol %s needs %s, which protolake does not implement; refusing to write (use the engine that upgraded the table)",
		b, strings.Join(e.Missing, ", "))
}

// Is makes errors.Is(err, ErrUnsupportedProtocol) true.
func (e *UnsupportedProtocolError) Is(target error) bool { return target == ErrUnsupportedProtocol }
