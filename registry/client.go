package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/protolake/protolake/schema"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// maxReferences bounds the schemas one schema may pull in through its
// references, transitively: a registry answer must not make us fetch
// without end.
const maxReferences = 256

// Schema is one compiled registry schema.
type Schema struct {
	// ID is the registry's schema id.
	ID int
	// Text is the schema as the registry holds it.
	Text string
	// References are the schema's direct references.
	References []sr.SchemaReference
	// File is the compiled schema; Files holds it with every file it
	// imports (references and well-known types).
	File  protoreflect.FileDescriptor
	Files *protoregistry.Files
}

// Message returns the message a Confluent message-index path names: each
// index selects a message among the previous one's nested messages, the
// first among the file's top-level messages. An empty path is the first
// message, as the serializers' [0] shortcut means.
func (s *Schema) Message(index []int) (protoreflect.MessageDescriptor, error) {
	if len(index) == 0 {
		index = []int{0}
	}
	msgs := s.File.Messages()
	var md protoreflect.MessageDescriptor
	for i, ix := range index {
		if ix < 0 || ix >= msgs.Len() {
			return nil, &SchemaError{ID: s.ID, Err: fmt.Errorf("message-index path %v: index %d at depth %d is out of range (%d messages there)", index, ix, i, msgs.Len())}
		}
		md = msgs.Get(ix)
		msgs = md.Messages()
	}
	return md, nil
}

// MessageIndex returns the message-index path of the message named full
// (the inverse of Message), or false when the schema's file does not
// declare it.
func (s *Schema) MessageIndex(full protoreflect.FullName) ([]int, bool) {
	var find func(msgs protoreflect.MessageDescriptors, path []int) ([]int, bool)
	find = func(msgs protoreflect.MessageDescriptors, path []int) ([]int, bool) {
		for i := range msgs.Len() {
			m := msgs.Get(i)
			p := append(append([]int(nil), path...), i)
			if m.FullName() == full {
				return p, true
			}
			if r, ok := find(m.Messages(), p); ok {
				return r, true
			}
		}
		return nil, false
	}
	return find(s.File.Messages(), nil)
}

// SubjectVersion is one registration of a schema: a subject and a version.
type SubjectVersion = sr.SubjectVersion

// Options are what a Client is given besides its Config. The zero value is
// valid.
type Options struct {
	// Logger receives debug logs of registry requests. Default: discard.
	Logger *slog.Logger
	// HTTPClient replaces the default client (tests). Its Timeout is left
	// as it is.
	HTTPClient *http.Client
}

// Client resolves schema ids of one registry. Safe for concurrent use.
type Client struct {
	cfg Config
	sr  *sr.Client
	log *slog.Logger

	mu       sync.Mutex
	schemas  *lru[int, *Schema]
	versions *lru[int, []SubjectVersion]
	refs     *lru[SubjectVersion, sr.SubjectSchema]
	missing  *lru[int, time.Time] // ids the registry said it does not have, until when
}

// New builds a Client; it does not contact the registry.
func New(cfg Config, opts Options) (*Client, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("schema_registry: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	srOpts := []sr.ClientOpt{sr.URLs(strings.TrimRight(cfg.URL, "/")), sr.HTTPClient(hc), sr.UserAgent("protolake")}
	if cfg.Username != "" {
		srOpts = append(srOpts, sr.BasicAuth(cfg.Username, os.Getenv(cfg.PasswordEnv)))
	}
	if cfg.BearerTokenEnv != "" {
		srOpts = append(srOpts, sr.BearerToken(os.Getenv(cfg.BearerTokenEnv)))
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("schema_registry: %w", err)
	}
	if tc != nil {
		srOpts = append(srOpts, sr.DialTLSConfig(tc))
	}
	cl, err := sr.NewClient(srOpts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client for %s: %w", cfg.URL, err)
	}
	return &Client{
		cfg: cfg, sr: cl, log: opts.Logger,
		schemas:  newLRU[int, *Schema](cfg.CacheSize),
		versions: newLRU[int, []SubjectVersion](cfg.CacheSize),
		refs:     newLRU[SubjectVersion, sr.SubjectSchema](cfg.CacheSize),
		missing:  newLRU[int, time.Time](cfg.CacheSize),
	}, nil
}

// URL is the registry's URL.
func (c *Client) URL() string { return c.cfg.URL }

// MaxBackoff is Config.MaxBackoff (with its default applied).
func (c *Client) MaxBackoff() time.Duration { return c.cfg.MaxBackoff }

// Schema returns the compiled schema with id, fetching and compiling it (and
// its references) on a cache miss.
func (c *Client) Schema(ctx context.Context, id int) (*Schema, error) {
	c.mu.Lock()
	if s, ok := c.schemas.get(id); ok {
		c.mu.Unlock()
		return s, nil
	}
	if until, ok := c.missing.get(id); ok {
		if time.Now().Before(until) {
			c.mu.Unlock()
			return nil, fmt.Errorf("get schema id %d: %w (remembered)", id, ErrNotFound)
		}
		c.missing.remove(id)
	}
	c.mu.Unlock()
	raw, err := c.sr.SchemaByID(ctx, id)
	if err = classify(ctx, fmt.Sprintf("get schema id %d from %s", id, c.cfg.URL), err); err != nil {
		if errors.Is(err, ErrNotFound) {
			c.mu.Lock()
			c.missing.put(id, time.Now().Add(c.cfg.NegativeTTL))
			c.mu.Unlock()
		}
		return nil, err
	}
	s, err := c.compile(ctx, id, raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.schemas.put(id, s)
	c.mu.Unlock()
	c.log.Debug("compiled registry schema", "id", id, "file", s.File.Path(), "references", len(raw.References))
	return s, nil
}

// Versions returns the subjects and versions schema id is registered
// under.
func (c *Client) Versions(ctx context.Context, id int) ([]SubjectVersion, error) {
	c.mu.Lock()
	if v, ok := c.versions.get(id); ok {
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()
	v, err := c.sr.SchemaVersionsByID(ctx, id)
	if err = classify(ctx, fmt.Sprintf("get the subjects of schema id %d from %s", id, c.cfg.URL), err); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.versions.put(id, v)
	c.mu.Unlock()
	return v, nil
}

// SubjectVersion returns subject's schema at version (-1: the latest), the
// version it is, and the compiled schema.
func (c *Client) SubjectVersion(ctx context.Context, subject string, version int) (*Schema, SubjectVersion, error) {
	ss, err := c.sr.SchemaByVersion(ctx, subject, version)
	what := fmt.Sprintf("get subject %s version %d from %s", subject, version, c.cfg.URL)
	if version == -1 {
		what = fmt.Sprintf("get the latest version of subject %s from %s", subject, c.cfg.URL)
	}
	if err = classify(ctx, what, err); err != nil {
		return nil, SubjectVersion{}, err
	}
	s, err := c.Schema(ctx, ss.ID)
	if err != nil {
		return nil, SubjectVersion{}, err
	}
	return s, SubjectVersion{Subject: ss.Subject, Version: ss.Version}, nil
}

// Subjects lists the registry's subjects.
func (c *Client) Subjects(ctx context.Context) ([]string, error) {
	s, err := c.sr.Subjects(ctx)
	return s, classify(ctx, "list subjects of "+c.cfg.URL, err)
}

// compile resolves raw's references and compiles it.
func (c *Client) compile(ctx context.Context, id int, raw sr.Schema) (*Schema, error) {
	if raw.Type != sr.TypeProtobuf {
		return nil, &SchemaError{ID: id, Err: fmt.Errorf("is a %s schema; protolake reads PROTOBUF schemas", raw.Type)}
	}
	main := fmt.Sprintf("registry/schema_%d.proto", id)
	sources := map[string]string{}
	type pending struct {
		ref  sr.SchemaReference
		from string
	}
	var queue []pending
	for _, r := range raw.References {
		queue = append(queue, pending{r, main})
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, ok := sources[p.ref.Name]; ok {
			continue
		}
		if p.ref.Name == main {
			return nil, &SchemaError{ID: id, Subject: p.ref.Subject, Version: p.ref.Version, Err: fmt.Errorf("reference name %s clashes with the schema's own file name", p.ref.Name)}
		}
		if len(sources) >= maxReferences {
			return nil, &SchemaError{ID: id, Err: fmt.Errorf("more than %d referenced schemas", maxReferences)}
		}
		ref, err := c.reference(ctx, p.ref)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, &SchemaError{ID: id, Subject: p.ref.Subject, Version: p.ref.Version, Err: fmt.Errorf("%s imports %s: %w", p.from, p.ref.Name, err)}
			}
			return nil, err
		}
		if ref.Type != sr.TypeProtobuf {
			return nil, &SchemaError{ID: id, Subject: p.ref.Subject, Version: p.ref.Version, Err: fmt.Errorf("reference %s is a %s schema", p.ref.Name, ref.Type)}
		}
		sources[p.ref.Name] = ref.Schema.Schema
		for _, r := range ref.References {
			queue = append(queue, pending{r, p.ref.Name})
		}
	}
	var files *protoregistry.Files
	var err error
	if mainFD, ok := serializedDescriptor(raw.Schema); ok {
		files, main, err = fromDescriptors(mainFD, sources)
	} else {
		sources[main] = raw.Schema
		files, err = schema.CompileSources(ctx, sources, main)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &SchemaError{ID: id, Err: err}
	}
	fd, err := files.FindFileByPath(main)
	if err != nil {
		return nil, &SchemaError{ID: id, Err: err}
	}
	return &Schema{ID: id, Text: raw.Schema, References: raw.References, File: fd, Files: files}, nil
}

// serializedDescriptor decodes a schema registered in the "serialized"
// form — a base64 FileDescriptorProto, as Confluent's Python serializer
// registers it and as registries that keep schemas as given return it. .proto
// text is never valid base64 (it has spaces, braces, semicolons).
func serializedDescriptor(text string) (*descriptorpb.FileDescriptorProto, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(b, &fdp); err != nil || fdp.GetName() == "" {
		return nil, false
	}
	return &fdp, true
}

// fromDescriptors resolves a serialized schema with its references (each
// serialized as well) and returns the files and the main file's name.
func fromDescriptors(main *descriptorpb.FileDescriptorProto, refs map[string]string) (*protoregistry.Files, string, error) {
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{main}}
	for name, text := range refs {
		fdp, ok := serializedDescriptor(text)
		if !ok {
			return nil, "", fmt.Errorf("the schema is a serialized descriptor but its reference %s is not: mixed forms are not supported", name)
		}
		if fdp.GetName() == main.GetName() {
			return nil, "", fmt.Errorf("reference %s has the schema's own file name %s", name, main.GetName())
		}
		set.File = append(set.File, fdp)
	}
	b, err := proto.Marshal(set)
	if err != nil {
		return nil, "", err
	}
	files, err := schema.ParseDescriptorSet(b, "the registry's serialized schema")
	if err != nil {
		return nil, "", err
	}
	return files, main.GetName(), nil
}

// reference fetches a referenced schema by subject and version.
func (c *Client) reference(ctx context.Context, r sr.SchemaReference) (sr.SubjectSchema, error) {
	key := SubjectVersion{Subject: r.Subject, Version: r.Version}
	c.mu.Lock()
	if ss, ok := c.refs.get(key); ok {
		c.mu.Unlock()
		return ss, nil
	}
	c.mu.Unlock()
	ss, err := c.sr.SchemaByVersion(ctx, r.Subject, r.Version)
	if err = classify(ctx, fmt.Sprintf("get referenced subject %s version %d from %s", r.Subject, r.Version, c.cfg.URL), err); err != nil {
		return sr.SubjectSchema{}, err
	}
	if r.Version > 0 {
		// "latest" (-1) may move; a numbered version may not.
		c.mu.Lock()
		c.refs.put(key, ss)
		c.mu.Unlock()
	}
	return ss, nil
}
