//go:build interop

// Command plgen is the interop tier's producer: it writes protobuf records to
// the real Kafka broker and, for each record, the row the Delta table must
// hold for it according to docs/type-mapping.md, computed here from the
// message itself (protoreflect), not by protolake's writer. The pytest suites
// compare what Spark, delta-rs and DuckDB read with these rows.
//
//	plgen adtrack --brokers B --topic T --from I --n N --expect rows.jsonl --schema delta.json
//	plgen json    --brokers B --topic T --descriptor-set X --message M --expect rows.jsonl --schema delta.json < msgs.jsonl
//
// adtrack produces internal/adtrack's deterministic impressions i in
// [from, from+n) (seed 7, event times from 2026-11-01 every 3 minutes),
// keyed by impression id; json reads one protojson message per line.
// The topic is created with --partitions partitions when missing.
//
// Each expected row is a JSON object: column name → value, with the
// conventions of interop/python/protolake_interop.py's normalizers:
// timestamps as microseconds since the epoch, dates as YYYY-MM-DD, binary as
// base64, decimal and long as JSON integers, NaN/±Infinity as strings, maps
// as objects keyed by the key's text ("true"/"false" for bool keys), Struct,
// Value and ListValue as their protojson text (compared as parsed JSON).
// --schema (the `protolake schema show --format delta` output) tells where
// max_recursion_depth cut a subtree into bytes and which fields were dropped.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/internal/adtrack"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: plgen adtrack|json [flags]")
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "plgen:", err)
		os.Exit(1)
	}
}

type record struct {
	key   []byte
	value []byte
	msg   protoreflect.Message
}

func run(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka seed brokers")
	topic := fs.String("topic", "", "topic")
	partitions := fs.Int("partitions", 3, "partitions of the topic when it is created")
	expect := fs.String("expect", "", "expected rows (JSON lines) are appended here")
	schemaPath := fs.String("schema", "", "the table's Delta schema (schema show --format delta)")
	from := fs.Int("from", 0, "adtrack: first impression index")
	n := fs.Int("n", 1000, "adtrack: number of impressions")
	descSet := fs.String("descriptor-set", "", "json: descriptor set")
	message := fs.String("message", "", "json: message full name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var schema map[string]any
	if *schemaPath != "" {
		b, err := os.ReadFile(*schemaPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &schema); err != nil {
			return fmt.Errorf("schema %s: %w", *schemaPath, err)
		}
	}

	var recs []record
	switch cmd {
	case "adtrack":
		r := rand.New(rand.NewPCG(7, 7))
		base := adtrack.CorpusBase
		// The generator's state depends on every earlier impression: replay
		// them so impression i is the same whatever --from is.
		for i := 0; i < *from+*n; i++ {
			m := adtrack.Impression(r, i, base, 3*time.Minute)
			if i < *from {
				continue
			}
			b, err := marshal.Marshal(m)
			if err != nil {
				return err
			}
			recs = append(recs, record{key: []byte(m.ImpressionId), value: b, msg: m.ProtoReflect()})
		}
	case "json":
		md, types, err := loadMessage(*descSet, *message)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		line := 0
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if text == "" {
				continue
			}
			m := dynamicpb.NewMessage(md)
			if err := (protojson.UnmarshalOptions{Resolver: types}).Unmarshal([]byte(text), m); err != nil {
				return fmt.Errorf("stdin line %d: %w", line, err)
			}
			b, err := marshal.Marshal(m)
			if err != nil {
				return err
			}
			recs = append(recs, record{key: []byte(strconv.Itoa(line)), value: b, msg: m})
		}
		if err := sc.Err(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.DefaultProduceTopic(*topic), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, int32(*partitions), 1, nil, *topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", *topic, err)
	}

	var out *os.File
	if *expect != "" {
		if out, err = os.OpenFile(*expect, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		defer out.Close()
	}
	// Kafka timestamps: one millisecond apart from a fixed start, so the
	// _kafka.timestamp column is checkable and unlike the broker's clock.
	ts0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC).Add(time.Duration(*from) * time.Millisecond)
	kr := make([]*kgo.Record, len(recs))
	for i, rc := range recs {
		kr[i] = &kgo.Record{Key: rc.key, Value: rc.value, Timestamp: ts0.Add(time.Duration(i) * time.Millisecond)}
	}
	if err := cl.ProduceSync(ctx, kr...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", *topic, err)
	}
	if out == nil {
		return nil
	}
	w := bufio.NewWriter(out)
	for i, rc := range recs {
		row, err := expectedRow(rc.msg, fieldsOf(schema))
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if _, ok := fieldsOf(schema)["_unknown"]; ok {
			row["_unknown"] = nil // every field we produce is in the descriptor
		}
		row["_kafka"] = map[string]any{
			"topic": kr[i].Topic, "partition": kr[i].Partition, "offset": kr[i].Offset,
			"timestamp": kr[i].Timestamp.UnixMicro(),
		}
		b, err := json.Marshal(row)
		if err != nil {
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	return w.Flush()
}

// marshal encodes every record: deterministic, so a subtree's bytes are the
// same inside the record and on their own.
var marshal = proto.MarshalOptions{Deterministic: true}

// loadMessage finds message name in a descriptor set; the returned types
// resolve Any's type URLs against the same set.
func loadMessage(path, name string) (protoreflect.MessageDescriptor, *dynamicpb.Types, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, nil, fmt.Errorf("%s in %s: %w", name, path, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not a message", name)
	}
	return md, dynamicpb.NewTypes(files), nil
}

// fieldsOf returns a Delta struct type's fields by name (nil: no schema,
// every field is expanded).
func fieldsOf(t any) map[string]any {
	st, ok := t.(map[string]any)
	if !ok || st["type"] != "struct" {
		return nil
	}
	out := map[string]any{}
	for _, f := range st["fields"].([]any) {
		fm := f.(map[string]any)
		out[fm["name"].(string)] = fm["type"]
	}
	return out
}

// expectedRow is message m as a row, following docs/type-mapping.md.
// fields is the Delta struct's fields by name (nil: expand everything).
func expectedRow(m protoreflect.Message, fields map[string]any) (map[string]any, error) {
	row := map[string]any{}
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		name := string(fd.Name())
		if fd.Kind() == protoreflect.GroupKind {
			name = strings.ToLower(name)
		}
		var dt any
		if fields != nil {
			var ok bool
			if dt, ok = fields[name]; !ok {
				// Dropped by the schema (a message without fields): docs/type-mapping.md.
				if fd.Message() != nil && !hasColumns(fd.Message()) || fd.IsMap() && fd.MapValue().Message() != nil && !hasColumns(fd.MapValue().Message()) {
					continue
				}
				return nil, fmt.Errorf("field %s has no column in the schema", fd.FullName())
			}
		}
		v, err := fieldValue(m, fd, dt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fd.Name(), err)
		}
		row[name] = v
	}
	return row, nil
}

func hasColumns(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.Empty":
		return false
	}
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.Message() == nil || fd.IsMap() || isWKT(fd.Message()) || hasColumns(fd.Message()) {
			return true
		}
	}
	return false
}

func isWKT(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

func fieldValue(m protoreflect.Message, fd protoreflect.FieldDescriptor, dt any) (any, error) {
	switch {
	case fd.IsMap():
		if !m.Has(fd) {
			return map[string]any{}, nil
		}
		mt, _ := dt.(map[string]any)
		var vt any
		if mt != nil {
			vt = mt["valueType"]
		}
		out := map[string]any{}
		var err error
		m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			var x any
			x, err = singular(fd.MapValue(), v, vt)
			out[mapKey(fd.MapKey(), k)] = x
			return err == nil
		})
		return out, err
	case fd.IsList():
		lt, _ := dt.(map[string]any)
		var et any
		if lt != nil {
			et = lt["elementType"]
		}
		l := m.Get(fd).List()
		out := make([]any, l.Len())
		for i := range out {
			x, err := singular(fd, l.Get(i), et)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	if fd.HasPresence() && !m.Has(fd) {
		return nil, nil
	}
	return singular(fd, m.Get(fd), dt)
}

func mapKey(fd protoreflect.FieldDescriptor, k protoreflect.MapKey) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.FormatBool(k.Bool())
	default:
		return fmt.Sprint(k.Interface())
	}
}

// singular is one value of field fd (an element, for lists) as a column value.
func singular(fd protoreflect.FieldDescriptor, v protoreflect.Value, dt any) (any, error) {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name()), nil
		}
		return strconv.Itoa(int(v.Enum())), nil
	case protoreflect.FloatKind:
		return float(float64(float32(v.Float()))), nil
	case protoreflect.DoubleKind:
		return float(v.Float()), nil
	case protoreflect.BytesKind:
		if v.Bytes() == nil {
			return []byte{}, nil // implicit presence: the default, not null
		}
		return v.Bytes(), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return message(v.Message(), dt)
	}
	return v.Interface(), nil
}

func float(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

func message(m protoreflect.Message, dt any) (any, error) {
	md := m.Descriptor()
	if dt == "binary" && !isWKT(md) {
		// max_recursion_depth cut the subtree here: its serialized bytes,
		// as the sender wrote them (records are marshalled deterministically,
		// which orders fields the same way at every level).
		return marshal.Marshal(m.Interface())
	}
	get := func(name protoreflect.Name) protoreflect.Value { return m.Get(md.Fields().ByName(name)) }
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return get("seconds").Int()*1_000_000 + get("nanos").Int()/1000, nil
	case "google.protobuf.Duration":
		return get("seconds").Int()*1_000_000 + get("nanos").Int()/1000, nil
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		fd := md.Fields().ByName("value")
		return singular(fd, m.Get(fd), dt)
	case "google.protobuf.Any":
		return map[string]any{"type_url": get("type_url").String(), "value": get("value").Bytes()}, nil
	case "google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value":
		if md.FullName() == "google.protobuf.Value" && m.WhichOneof(md.Oneofs().ByName("kind")) == nil {
			return nil, nil
		}
		b, err := protojson.Marshal(m.Interface())
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return expectedRow(m, fieldsOf(dt))
}
