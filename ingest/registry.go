package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/registry"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/open"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Table properties a registry-fed table carries in metaData.configuration
// (and each commit in commitInfo.operationParameters): the registry subject,
// version and schema id of the schema the table's columns follow.
const (
	PropRegistrySubject  = "protolake.registry.subject"
	PropRegistryVersion  = "protolake.registry.version"
	PropRegistrySchemaID = "protolake.registry.schema_id"
)

// regInfo is a schema's registration: subject, version, id.
type regInfo struct {
	subject string
	version int
	id      int
}

func (ri regInfo) props() map[string]string {
	if ri.subject == "" {
		return nil
	}
	return map[string]string{
		PropRegistrySubject:  ri.subject,
		PropRegistryVersion:  strconv.Itoa(ri.version),
		PropRegistrySchemaID: strconv.Itoa(ri.id),
	}
}

// label is the proto version label of the pin: "<subject>/<version>".
func (ri regInfo) label() string { return ri.subject + "/" + strconv.Itoa(ri.version) }

func regInfoOf(md commitlog.Metadata) (regInfo, bool) {
	c := md.Configuration
	v, err1 := strconv.Atoi(c[PropRegistryVersion])
	id, err2 := strconv.Atoi(c[PropRegistrySchemaID])
	if c[PropRegistrySubject] == "" || err1 != nil || err2 != nil {
		return regInfo{}, false
	}
	return regInfo{subject: c[PropRegistrySubject], version: v, id: id}, true
}

// relation is how a record's schema relates to the table's.
type relation int

const (
	relSame   relation = iota // the table's proto version
	relNewer                  // a compatible evolution: the table evolves to it
	relOlder                  // the table's version is a compatible evolution of it: decoded with the table's plan
	relReject                 // dead letter (reason says why)
)

// plan is what the resolver decided for one schema id.
type plan struct {
	rel    relation
	reg    regInfo
	msg    protoreflect.MessageDescriptor
	fp     string
	merged *schema.Table // relNewer: the table's schema merged with msg
	reason error         // relReject
	kind   string        // relReject: metric label
}

// resolver is the record-decode hook of a table fed through a schema
// registry: it maps a Confluent-framed record's schema id and message-index
// path to a plan against the table's current proto version, caching the
// plan per id (the cache is dropped whenever the table evolves).
type resolver struct {
	cl      *registry.Client
	subject string
	plans   map[planKey]*plan
	max     int
	ids     map[int]bool // schema ids of the records buffered since the last main commit

	// Outage state: while waiting, the table's fetches are paused and,
	// while holding, its records are left unconsumed (they are read again
	// from the first unconsumed offset when fetching resumes).
	waiting bool
	holding bool
	backoff time.Duration
	retryAt time.Time
	since   time.Time
}

type planKey struct {
	id    int
	index string
}

// errUnframed, errUnknownSchema, errOtherSubject, errOtherMessage and
// errIncompatibleSchema are the dead-letter reasons of a registry-fed table.
var (
	errUnframed           = errors.New("record is not Confluent-framed")
	errUnknownSchema      = errors.New("schema id unknown to the registry")
	errOtherSubject       = errors.New("schema id of another subject")
	errOtherMessage       = errors.New("record is another message")
	errIncompatibleSchema = errors.New("incompatible schema")
)

// resolve returns the plan of a record framed with schema id and index
// path, for table sink s. A registry.ErrUnavailable error means: wait.
func (rv *resolver) resolve(ctx context.Context, s *sink, id int, index []int) (*plan, error) {
	key := planKey{id: id}
	if len(index) > 0 { // nil is the common [0]: no key to build per record
		key.index = fmt.Sprint(index)
	}
	if p, ok := rv.plans[key]; ok {
		return p, nil
	}
	p, err := rv.decide(ctx, s, id, index)
	if err != nil {
		return nil, err
	}
	if len(rv.plans) >= rv.max {
		clear(rv.plans)
	}
	rv.plans[key] = p
	return p, nil
}

func reject(kind string, reason error) *plan {
	return &plan{rel: relReject, kind: kind, reason: reason}
}

func (rv *resolver) decide(ctx context.Context, s *sink, id int, index []int) (*plan, error) {
	sch, err := rv.cl.Schema(ctx, id)
	var se *registry.SchemaError
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return reject("unknown_id", fmt.Errorf("%w: %v", errUnknownSchema, err)), nil
	case errors.As(err, &se):
		return reject("bad_schema", err), nil
	case err != nil:
		return nil, err
	}
	versions, err := rv.cl.Versions(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return reject("unknown_id", fmt.Errorf("%w: %v", errUnknownSchema, err)), nil
	} else if err != nil {
		return nil, err
	}
	reg := regInfo{subject: rv.subject, id: id, version: -1}
	var subjects []string
	for _, v := range versions {
		subjects = append(subjects, fmt.Sprintf("%s/%d", v.Subject, v.Version))
		if v.Subject == rv.subject {
			reg.version = v.Version
		}
	}
	if reg.version < 0 {
		return reject("other_subject", fmt.Errorf("%w: schema id %d is registered under %s, not under the table's subject %s", errOtherSubject, id, strings.Join(subjects, ", "), rv.subject)), nil
	}
	md, err := sch.Message(index)
	if err != nil {
		return reject("bad_schema", err), nil
	}
	if string(md.FullName()) != s.pin.Message {
		return reject("other_message", fmt.Errorf("%w: message-index path %v of schema id %d (%s version %d) names %s; the table holds %s", errOtherMessage, index, id, rv.subject, reg.version, md.FullName(), s.pin.Message)), nil
	}
	fp, err := schema.Fingerprint(md)
	if err != nil {
		return reject("bad_schema", fmt.Errorf("schema id %d: fingerprint %s: %w", id, md.FullName(), err)), nil
	}
	p := &plan{reg: reg, msg: md, fp: fp}
	if fp == s.pin.Fingerprint {
		p.rel = relSame
		return p, nil
	}
	// Judged exactly as a descriptor given at start (CheckTable), against
	// the table as this sink writes it now: its schema and pin, which an
	// evolution not yet committed may have moved past the last commit.
	snap := s.snap.Load()
	cur := snap.Metadata()
	cur.SchemaString = s.st.SchemaString()
	cur.Configuration = map[string]string{}
	for k, v := range snap.Metadata().Configuration {
		cur.Configuration[k] = v
	}
	cur.Configuration[commitlog.PropProtoMessage] = s.pin.Message
	cur.Configuration[commitlog.PropProtoFingerprint] = s.pin.Fingerprint
	c, err := CheckTable(ctx, s.log, cur, md, s.opts)
	var inc *schema.IncompatibleError
	var pe *schema.PartitioningError
	switch {
	case err == nil && c.Older:
		p.rel = relOlder
	case err == nil:
		p.rel, p.merged = relNewer, c.Evolution.Merged
	case errors.As(err, &inc), errors.As(err, &pe):
		return reject("incompatible", fmt.Errorf("%w: schema id %d (%s version %d) cannot be written to the table (at %s): %v", errIncompatibleSchema, id, rv.subject, reg.version, s.pin.Version, err)), nil
	default:
		return nil, fmt.Errorf("judge schema id %d against table %s: %w", id, s.uri, err)
	}
	return p, nil
}

// newResolver builds the registry hook of table config tc and returns it
// with the proto version the table opens with: the table's own (read back
// from its descriptor archive) when it was written from this subject
// before, else the subject's latest version.
func (r *Runner) newResolver(ctx context.Context, tc *TableConfig, tbl *commitlog.Table) (*resolver, protoreflect.MessageDescriptor, regInfo, error) {
	cl, err := registry.New(tc.SchemaRegistry, registry.Options{Logger: r.log.With("component", "schema-registry", "table", tc.Name)})
	if err != nil {
		return nil, nil, regInfo{}, err
	}
	rv := &resolver{cl: cl, subject: tc.subject(), plans: map[planKey]*plan{}, max: max(tc.SchemaRegistry.CacheSize, 16), ids: map[int]bool{}}
	if snap, err := tbl.Snapshot(ctx); err == nil {
		pin := commitlog.PinOf(snap.Metadata())
		if ri, ok := regInfoOf(snap.Metadata()); ok && ri.subject == rv.subject && (tc.Message == "" || tc.Message == pin.Message) {
			if set, err := tbl.Descriptors(ctx, pin.Fingerprint); err == nil {
				if files, err := schema.ParseDescriptorSet(set, commitlog.DescriptorKey(pin.Fingerprint)); err == nil {
					if md, err := schema.FindMessage(files, pin.Message, "archived descriptors"); err == nil {
						return rv, md, ri, nil
					}
				}
			}
		}
	} else if !errors.Is(err, commitlog.ErrNoTable) {
		return nil, nil, regInfo{}, fmt.Errorf("read table %s: %w", open.Redact(tc.URI), err)
	}
	sch, sv, err := cl.SubjectVersion(ctx, rv.subject, -1)
	if err != nil {
		return nil, nil, regInfo{}, fmt.Errorf("the table's schema: %w", err)
	}
	var md protoreflect.MessageDescriptor
	if tc.Message != "" {
		md, err = schema.FindMessage(sch.Files, tc.Message, fmt.Sprintf("schema id %d (subject %s version %d)", sch.ID, sv.Subject, sv.Version))
		if err == nil && md.ParentFile().Path() != sch.File.Path() {
			err = fmt.Errorf("message %s is declared in %s, a reference of subject %s, not in its schema", tc.Message, md.ParentFile().Path(), sv.Subject)
		}
	} else {
		md, err = sch.Message(nil)
	}
	if err != nil {
		return nil, nil, regInfo{}, fmt.Errorf("the table's message: %w", err)
	}
	return rv, md, regInfo{subject: sv.Subject, version: sv.Version, id: sch.ID}, nil
}

// decodeRegistry is the record-decode path of a registry-fed table: it
// unframes rec, resolves its schema id and returns the protobuf payload to
// write. bad is the dead-letter reason of a record that cannot be written;
// wait reports a registry outage (the record stays unconsumed).
func (r *Runner) decodeRegistry(ctx context.Context, t *table, rec *kgo.Record) (payload []byte, bad error, wait bool) {
	rv := t.reg
	if rv.holding {
		return nil, nil, true // a record fetched before the pause took effect
	}
	id, index, payload, err := unframeConfluent(rec.Value)
	if err != nil {
		r.m.registryRejects.WithLabelValues(t.name, "unframed").Inc()
		return nil, fmt.Errorf("%w: %v", errUnframed, err), false
	}
	p, err := rv.resolve(ctx, t.main, id, index)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, nil, true
	case errors.Is(err, registry.ErrUnavailable):
		r.registryWait(t, err)
		return nil, nil, true
	case err != nil:
		// The table's descriptor archive could not be read: like any
		// storage failure, drop the buffers and read again.
		r.reset(ctx, t, err)
		return nil, nil, true
	}
	if rv.waiting {
		rv.waiting, rv.backoff = false, 0
		r.m.registryWaiting.WithLabelValues(t.name).Set(0)
		r.log.Info("schema registry reachable again; fetching resumed", "table", t.name, "waited", time.Since(rv.since).Round(time.Millisecond))
	}
	switch p.rel {
	case relReject:
		r.m.registryRejects.WithLabelValues(t.name, p.kind).Inc()
		return nil, p.reason, false
	case relNewer:
		if err := t.main.switchTo(ctx, p.msg, commitlog.ProtoPin{Message: string(p.msg.FullName()), Fingerprint: p.fp, Version: p.reg.label()}, p.reg, p.merged); err != nil {
			r.reset(ctx, t, fmt.Errorf("evolve %s to schema id %d: %w", t.main.uri, id, err))
			return nil, nil, true
		}
		clear(rv.plans) // relations are against the table's version
		r.log.Info("table evolves with the registry", "table", t.name, "subject", p.reg.subject, "version", p.reg.version, "schema_id", id, "fingerprint", p.fp)
	}
	rv.ids[id] = true
	return payload, nil, false
}

// registryWait stops consuming t at the current record while the registry
// is unavailable: the table's fetches are paused and its records left
// unconsumed until the backoff ends, when registryRetry seeks the
// partitions back to their first unconsumed record and resumes. Nothing
// after that record is written, so nothing past it is committed.
func (r *Runner) registryWait(t *table, cause error) {
	rv := t.reg
	if !rv.waiting {
		rv.waiting, rv.since = true, time.Now()
		r.m.registryWaiting.WithLabelValues(t.name).Set(1)
		r.log.Warn("schema registry unavailable: pausing the table's fetches (nothing is dead-lettered)", "table", t.name, "err", cause)
	} else {
		r.log.Debug("schema registry still unavailable", "table", t.name, "err", cause)
	}
	rv.backoff = min(max(2*rv.backoff, 100*time.Millisecond), rv.cl.MaxBackoff())
	rv.retryAt = time.Now().Add(rv.backoff)
	rv.holding = true
	t.skipBatch = true
	r.cl.PauseFetchTopics(t.cfg.Topics...)
}

// registryRetry resumes the fetches of tables whose registry backoff ended,
// from each partition's first unconsumed record (the next record tries the
// registry again). The seek is made here, after the pause, not when the
// table stopped: every record polled since is then behind the client's
// position, so the seek is never a no-op for it.
func (r *Runner) registryRetry(now time.Time) {
	for _, t := range r.tables {
		rv := t.reg
		if rv == nil || !rv.waiting || now.Before(rv.retryAt) || t.paused {
			continue
		}
		if rv.holding {
			seeks := map[string]map[int32]kgo.EpochOffset{}
			for _, p := range r.partsOf(t) {
				if seeks[p.tp.topic] == nil {
					seeks[p.tp.topic] = map[int32]kgo.EpochOffset{}
				}
				seeks[p.tp.topic][p.tp.part] = kgo.EpochOffset{Epoch: -1, Offset: p.last + 1}
			}
			r.cl.SetOffsets(seeks)
			rv.holding = false
		}
		r.cl.ResumeFetchTopics(t.cfg.Topics...)
		rv.retryAt = now.Add(rv.cl.MaxBackoff()) // until the next record decides
		if len(r.partsOf(t)) == 0 {
			// The partitions went to another instance: no record of ours
			// waits for the registry any more.
			rv.waiting, rv.holding, rv.backoff = false, false, 0
			r.m.registryWaiting.WithLabelValues(t.name).Set(0)
		}
	}
}

// registryParams adds the registry lineage of a commit to its
// operationParameters: the table's subject, version and schema id (ri, the
// main sink's registration when the batch was cut), and the ids of the
// records in the commit. Nothing for a table without a registry (ids nil).
func registryParams(params map[string]any, ri regInfo, ids map[int]bool) map[string]any {
	if ids == nil {
		return params
	}
	params["registrySubject"] = ri.subject
	params["registryVersion"] = ri.version
	params["registrySchemaId"] = ri.id
	var list []string
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		list = append(list, strconv.Itoa(id))
	}
	params["registrySchemaIds"] = strings.Join(list, ",")
	return params
}
