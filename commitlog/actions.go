package commitlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Protocol is the protocol action: the reader and writer versions (and, from
// reader version 3 / writer version 7, the named features) a client must
// implement to read or write the table.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
	// Extra holds fields this package does not model, preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Format is metaData.format: the data file format, always parquet.
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is the metaData action: the table's identity, schema, partition
// columns and configuration.
type Metadata struct {
	ID               string            `json:"id"`
	Name             string            `json:"name,omitempty"`
	Description      string            `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	// CreatedTime is milliseconds since the epoch, nil when not recorded.
	CreatedTime *int64 `json:"createdTime,omitempty"`
	// Extra holds fields this package does not model, preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Add is the add action: a data file that becomes part of the table.
type Add struct {
	// Path is the file's path relative to the table root, URI-encoded as
	// the Delta protocol requires, exactly as written in the log.
	Path string `json:"path"`
	// PartitionValues maps each partition column to its value as a string;
	// nil means the null partition. The files of a loaded snapshot share
	// equal maps (here and in Tags): treat them as read-only.
	PartitionValues  map[string]*string `json:"partitionValues"`
	Size             int64              `json:"size"`
	ModificationTime int64              `json:"modificationTime"`
	// DataChange is false for files that only rearrange existing data
	// (compaction).
	DataChange bool `json:"dataChange"`
	// Stats is the JSON-encoded statistics string, empty when absent.
	Stats string            `json:"stats,omitempty"`
	Tags  map[string]string `json:"tags,omitempty"`
	// Extra holds fields this package does not model (deletionVector,
	// baseRowId…), preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Remove is the remove action: a data file that stops being part of the
// table (a tombstone until vacuumed).
type Remove struct {
	Path string `json:"path"`
	// DeletionTimestamp is milliseconds since the epoch, nil when absent.
	DeletionTimestamp    *int64             `json:"deletionTimestamp,omitempty"`
	DataChange           bool               `json:"dataChange"`
	ExtendedFileMetadata *bool              `json:"extendedFileMetadata,omitempty"`
	PartitionValues      map[string]*string `json:"partitionValues,omitempty"`
	Size                 *int64             `json:"size,omitempty"`
	Tags                 map[string]string  `json:"tags,omitempty"`
	// Extra holds fields this package does not model, preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// ToRemove returns the remove action for this file with the extended file
// metadata (partition values, size, tags) Delta readers use; the deletion
// timestamp is set at commit. dataChange is false for compaction.
func (a Add) ToRemove(dataChange bool) Remove {
	size := a.Size
	ext := true
	return Remove{
		Path:                 a.Path,
		DataChange:           dataChange,
		ExtendedFileMetadata: &ext,
		PartitionValues:      a.PartitionValues,
		Size:                 &size,
		Tags:                 a.Tags,
	}
}

// Txn is the txn (SetTransaction) action: the last version an application
// committed, used for exactly-once delivery.
type Txn struct {
	AppID   string `json:"appId"`
	Version int64  `json:"version"`
	// LastUpdated is milliseconds since the epoch, nil when absent.
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
	// Extra holds fields this package does not model, preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// OffsetRange is one Kafka partition's offsets committed by a protolake
// commit, recorded in commitInfo for audits.
type OffsetRange struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// First and Last are the first and last offsets included, inclusive.
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// Metrics are a commit's operationMetrics. Spark writes every value as a
// string; other engines (delta-rs) write numbers, so any JSON value is read,
// a scalar as its literal text (123, true) and an object or array as its
// JSON, and written back as strings like Spark does.
type Metrics map[string]string

// UnmarshalJSON implements json.Unmarshaler, accepting any JSON value.
func (m *Metrics) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*m = nil
		return nil
	}
	out := make(Metrics, len(raw))
	for k, v := range raw {
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("operationMetrics %q: %w", k, err)
			}
		case string(v) == "null":
			continue
		default:
			s = string(v)
		}
		out[k] = s
	}
	*m = out
	return nil
}

// CommitInfo is the commitInfo action: provenance of a commit. protolake
// adds txnId (to resolve ambiguous commits) and kafkaOffsets.
type CommitInfo struct {
	Timestamp           int64          `json:"timestamp"`
	Operation           string         `json:"operation,omitempty"`
	OperationParameters map[string]any `json:"operationParameters,omitempty"`
	ReadVersion         *int64         `json:"readVersion,omitempty"`
	IsolationLevel      string         `json:"isolationLevel,omitempty"`
	IsBlindAppend       *bool          `json:"isBlindAppend,omitempty"`
	OperationMetrics    Metrics        `json:"operationMetrics,omitempty"`
	EngineInfo          string         `json:"engineInfo,omitempty"`
	TxnID               string         `json:"txnId,omitempty"`
	KafkaOffsets        []OffsetRange  `json:"kafkaOffsets,omitempty"`
	// Extra holds fields this package does not model, preserved verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// RawAction is an action this package does not model (cdc,
// domainMetadata, checkpointMetadata, sidecar…), kept verbatim.
type RawAction struct {
	// Name is the action's key, e.g. "domainMetadata".
	Name string
	// JSON is the action's value.
	JSON json.RawMessage
}

// Action is one line of a commit file: exactly one of its fields is set.
type Action struct {
	Protocol   *Protocol
	Metadata   *Metadata
	Add        *Add
	Remove     *Remove
	Txn        *Txn
	CommitInfo *CommitInfo
	Other      *RawAction
}

// MarshalJSON encodes the action as a single-key object, the form of a log
// line.
func (a Action) MarshalJSON() ([]byte, error) {
	var key string
	var v any
	switch {
	case a.CommitInfo != nil:
		key, v = "commitInfo", a.CommitInfo
	case a.Protocol != nil:
		key, v = "protocol", a.Protocol
	case a.Metadata != nil:
		key, v = "metaData", a.Metadata
	case a.Txn != nil:
		key, v = "txn", a.Txn
	case a.Remove != nil:
		key, v = "remove", a.Remove
	case a.Add != nil:
		key, v = "add", a.Add
	case a.Other != nil:
		if a.Other.Name == "" || !json.Valid(a.Other.JSON) {
			return nil, fmt.Errorf("encode action %q: invalid raw action", a.Other.Name)
		}
		key, v = a.Other.Name, a.Other.JSON
	default:
		return nil, fmt.Errorf("encode action: empty action")
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s action: %w", key, err)
	}
	k, _ := json.Marshal(key)
	out := make([]byte, 0, len(body)+len(k)+3)
	out = append(out, '{')
	out = append(out, k...)
	out = append(out, ':')
	out = append(out, body...)
	return append(out, '}'), nil
}

// ParseCommit parses a commit file (newline-delimited JSON actions). It
// returns an error naming the line for malformed input and never panics.
// Blank lines are skipped; unknown action kinds are kept as RawAction.
func ParseCommit(data []byte) ([]Action, error) {
	var actions []Action
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		as, err := parseActionLine(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		actions = append(actions, as...)
	}
	return actions, nil
}

// parseActionLine decodes one JSON object; every key is one action.
func parseActionLine(l []byte) ([]Action, error) {
	if k, raw, ok := singleAction(l); ok {
		a, err := decodeAction(k, raw)
		if err != nil {
			return nil, err
		}
		return []Action{a}, nil
	}
	return parseActionLineGeneric(l)
}

// parseActionLineGeneric is parseActionLine for any line: the object
// decoded into a map of raw values, each key decoded as an action.
func parseActionLineGeneric(l []byte) ([]Action, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(l, &obj); err != nil {
		return nil, fmt.Errorf("invalid JSON action: %w", err)
	}
	if obj == nil {
		return nil, fmt.Errorf("action is null, want an object")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Action
	for _, k := range keys {
		raw := obj[k]
		if k == "" {
			return nil, fmt.Errorf("action with an empty name")
		}
		if isJSONNull(raw) {
			continue
		}
		a, err := decodeAction(k, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func decodeAction(kind string, raw json.RawMessage) (Action, error) {
	var a Action
	var err error
	switch kind {
	case "protocol":
		a.Protocol = new(Protocol)
		err = a.Protocol.UnmarshalJSON(raw)
	case "metaData":
		a.Metadata = new(Metadata)
		err = a.Metadata.UnmarshalJSON(raw)
	case "add":
		a.Add = new(Add)
		err = a.Add.UnmarshalJSON(raw)
		if err == nil && a.Add.Path == "" {
			err = fmt.Errorf("add action without a path")
		}
		if err == nil {
			err = checkFilePath(a.Add.Path)
		}
	case "remove":
		a.Remove = new(Remove)
		err = a.Remove.UnmarshalJSON(raw)
		if err == nil && a.Remove.Path == "" {
			err = fmt.Errorf("remove action without a path")
		}
		if err == nil {
			err = checkFilePath(a.Remove.Path)
		}
	case "txn":
		a.Txn = new(Txn)
		err = a.Txn.UnmarshalJSON(raw)
		if err == nil && a.Txn.AppID == "" {
			err = fmt.Errorf("txn action without an appId")
		}
	case "commitInfo":
		a.CommitInfo = new(CommitInfo)
		err = a.CommitInfo.UnmarshalJSON(raw)
	default:
		a.Other = &RawAction{Name: kind, JSON: append(json.RawMessage(nil), raw...)}
	}
	if err != nil {
		return Action{}, fmt.Errorf("%s action: %w", kind, err)
	}
	return a, nil
}

// singleAction recognizes the common line, one object of one action that
// decodeAction validates whole ({"add":{…}}), and returns its name and
// value as a slice of l, saving the copy of every line a generic decode
// into a map of raw values makes. ok is false for anything else (several
// keys, escapes in the key, an action kept verbatim, a null); the caller
// then decodes the line generically.
func singleAction(l []byte) (kind string, raw []byte, ok bool) {
	i := skipSpace(l, 0)
	if i >= len(l) || l[i] != '{' {
		return "", nil, false
	}
	i = skipSpace(l, i+1)
	if i >= len(l) || l[i] != '"' {
		return "", nil, false
	}
	j := i + 1
	for j < len(l) && l[j] != '"' && l[j] != '\\' {
		j++
	}
	if j >= len(l) || l[j] != '"' {
		return "", nil, false
	}
	switch string(l[i+1 : j]) {
	case "add", "remove", "txn", "commitInfo", "protocol", "metaData":
		kind = string(l[i+1 : j])
	default:
		return "", nil, false
	}
	i = skipSpace(l, j+1)
	if i >= len(l) || l[i] != ':' {
		return "", nil, false
	}
	start := skipSpace(l, i+1)
	if start >= len(l) || l[start] != '{' {
		return "", nil, false
	}
	end := skipValue(l, start)
	if end < 0 {
		return "", nil, false
	}
	if i = skipSpace(l, end); i >= len(l) || l[i] != '}' || skipSpace(l, i+1) != len(l) {
		return "", nil, false
	}
	return kind, l[start:end], true
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// The per-type JSON methods keep unknown fields in Extra so that actions
// read from another engine's log round-trip without loss.

type (
	protocolJSON   Protocol
	metadataJSON   Metadata
	addJSON        Add
	removeJSON     Remove
	txnJSON        Txn
	commitInfoJSON CommitInfo
)

// UnmarshalJSON implements json.Unmarshaler, keeping unknown fields.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*protocolJSON)(p), &p.Extra)
}

// MarshalJSON implements json.Marshaler, writing Extra back.
func (p Protocol) MarshalJSON() ([]byte, error) { return marshalExtra(protocolJSON(p), p.Extra) }

// UnmarshalJSON implements json.Unmarshaler, keeping unknown fields.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*metadataJSON)(m), &m.Extra)
}

// MarshalJSON implements json.Marshaler, writing Extra back.
func (m Metadata) MarshalJSON() ([]byte, error) {
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	return marshalExtra(metadataJSON(m), m.Extra)
}

// UnmarshalJSON implements json.Unmarshaler, keeping unknown fields.
func (a *Add) UnmarshalJSON(b []byte) error { return unmarshalExtra(b, (*addJSON)(a), &a.Extra) }

// MarshalJSON implements json.Marshaler, writing Extra back.
func (a Add) MarshalJSON() ([]byte, error) {
	if a.PartitionValues == nil {
		a.PartitionValues = map[string]*string{}
	}
	return marshalExtra(addJSON(a), a.Extra)
}

// UnmarshalJSON implements json.Unmarshaler, keeping unknown fields.
func (r *Remove) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*removeJSON)(r), &r.Extra)
}

// MarshalJSON implements json.Marshaler, writing Extra back.
func (r Remove) MarshalJSON() ([]byte, error) { return marshalExtra(removeJSON(r), r.Extra) }

// UnmarshalJSON implements json.Unmarshaler, keeping unknown fields.
func (t *Txn) UnmarshalJSON(b []byte) error { return unmarshalExtra(b, (*txnJSON)(t), &t.Extra) }

// MarshalJSON implements json.Marshaler, writing Extra back.
func (t Txn) MarshalJSON() ([]byte, error) { return marshalExtra(txnJSON(t), t.Extra) }

// UnmarshalJSON implements json.Unmarshaler, keeping unknown fields.
func (c *CommitInfo) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*commitInfoJSON)(c), &c.Extra)
}

// MarshalJSON implements json.Marshaler, writing Extra back.
func (c CommitInfo) MarshalJSON() ([]byte, error) { return marshalExtra(commitInfoJSON(c), c.Extra) }

var knownFieldsCache sync.Map // reflect.Type → map[string]bool

func knownFields(t reflect.Type) map[string]bool {
	if v, ok := knownFieldsCache.Load(t); ok {
		return v.(map[string]bool)
	}
	m := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			m[name] = true
		}
	}
	knownFieldsCache.Store(t, m)
	return m
}

func unmarshalExtra(b []byte, v any, extra *map[string]json.RawMessage) error {
	known := knownFields(reflect.TypeOf(v).Elem())
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	// Most actions have only known fields: find out with a cheap scan of the
	// top-level keys before paying for a second, generic decode.
	if allKnown, ok := onlyKnownKeys(b, known); ok && allKnown {
		*extra = nil
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	if obj == nil {
		return fmt.Errorf("null, want an object")
	}
	var ex map[string]json.RawMessage
	for k, raw := range obj {
		if !known[k] {
			if ex == nil {
				ex = map[string]json.RawMessage{}
			}
			ex[k] = raw
		}
	}
	*extra = ex
	return nil
}

// onlyKnownKeys scans a JSON object's top-level keys and reports whether all
// are in known. ok is false when the scan cannot tell (escaped keys,
// anything unexpected); the caller then decodes generically.
func onlyKnownKeys(b []byte, known map[string]bool) (allKnown, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false, false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				return false, false
			}
			j++
		}
		if j >= len(b) {
			return false, false
		}
		if !known[string(b[i+1:j])] {
			return false, true
		}
		i = skipSpace(b, j+1)
		if i >= len(b) || b[i] != ':' {
			return false, false
		}
		i = skipValue(b, skipSpace(b, i+1))
		if i < 0 {
			return false, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return true, true
		default:
			return false, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i, or -1.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return -1
			}
			i++
			if depth == 0 {
				return i
			}
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
			if depth < 0 {
				return -1
			}
			if depth == 0 {
				return i
			}
		default:
			if depth == 0 {
				// A literal: up to the next delimiter.
				for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r' {
					i++
				}
				return i
			}
			i++
		}
	}
	return -1
}

func marshalExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buf := bytes.NewBuffer(b[:len(b)-1])
	for i, k := range keys {
		if !json.Valid(extra[k]) {
			return nil, fmt.Errorf("extra field %q is not valid JSON", k)
		}
		if i > 0 || len(b) > 2 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
