package schema

import (
	"context"
	"errors"
	"fmt"
	"github.com/protolake/protolake/internal/suggest"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// Register the well-known types, so descriptor sets built without
	// --include_imports still resolve them.
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/apipb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/sourcecontextpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/typepb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// Source says where descriptors come from: a binary FileDescriptorSet, or
// .proto files compiled at run time. Exactly one of DescriptorSet and
// Files is set.
type Source struct {
	// DescriptorSet is the path of a binary FileDescriptorSet
	// (protoc --include_imports -o x.binpb, or buf build -o x.binpb).
	DescriptorSet string

	// Files are .proto files to compile, relative to one of ImportPaths
	// (a path under an import path is made relative to it).
	Files []string

	// ImportPaths are the directories imports are resolved in (protoc's
	// -I). Empty means the current directory. The well-known types
	// (google/protobuf/*.proto) resolve without any file on disk.
	ImportPaths []string
}

// String names the source for messages: the descriptor set or the files.
func (s Source) String() string {
	if s.DescriptorSet != "" {
		return "descriptor set " + s.DescriptorSet
	}
	return strings.Join(s.Files, ", ")
}

// Load reads the descriptors of src and returns the message named name.
func Load(ctx context.Context, src Source, name string) (protoreflect.MessageDescriptor, error) {
	var files *protoregistry.Files
	var err error
	switch {
	case src.DescriptorSet != "" && len(src.Files) > 0:
		return nil, errors.New("give either a descriptor set or .proto files, not both")
	case src.DescriptorSet != "":
		files, err = ReadDescriptorSet(src.DescriptorSet)
	case len(src.Files) > 0:
		files, err = CompileProtos(ctx, src.ImportPaths, src.Files...)
	default:
		return nil, errors.New("no descriptors given: pass a descriptor set (--descriptor-set FILE) or .proto files (--proto-path DIR FILE.proto)")
	}
	if err != nil {
		return nil, err
	}
	return FindMessage(files, name, src.String())
}

// ReadDescriptorSet reads and resolves a binary FileDescriptorSet file.
func ReadDescriptorSet(path string) (*protoregistry.Files, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read descriptor set: %w", err)
	}
	return ParseDescriptorSet(data, path)
}

// ParseDescriptorSet decodes and resolves a binary FileDescriptorSet; name
// (the file it came from) is used in errors. Imports missing from the set
// are resolved from the well-known types; any other missing import is an
// error naming the file and the import.
func ParseDescriptorSet(data []byte, name string) (*protoregistry.Files, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("descriptor set %s is not a binary FileDescriptorSet (%v); build one with `protoc --include_imports -o FILE.binpb …` or `buf build -o FILE.binpb`", name, err)
	}
	if len(set.File) == 0 {
		return nil, fmt.Errorf("descriptor set %s holds no files; build it with `protoc --include_imports -o FILE.binpb …` or `buf build -o FILE.binpb`", name)
	}
	have := map[string]bool{}
	for i, f := range set.File {
		if f.GetName() == "" {
			return nil, fmt.Errorf("descriptor set %s: file #%d has no name; the set is corrupt, rebuild it", name, i)
		}
		if have[f.GetName()] {
			return nil, fmt.Errorf("descriptor set %s holds %s twice; rebuild it", name, f.GetName())
		}
		have[f.GetName()] = true
	}
	// Add missing well-known imports; report other missing imports.
	for i := 0; i < len(set.File); i++ {
		f := set.File[i]
		for _, dep := range f.Dependency {
			if have[dep] {
				continue
			}
			wkt, err := protoregistry.GlobalFiles.FindFileByPath(dep)
			if err != nil || !strings.HasPrefix(dep, "google/protobuf/") {
				return nil, fmt.Errorf("descriptor set %s: %s imports %s, which is not in the set; rebuild the set with --include_imports (protoc) or with buf build, which include imports", name, f.GetName(), dep)
			}
			set.File = append(set.File, protodesc.ToFileDescriptorProto(wkt))
			have[dep] = true
		}
	}
	files, err := newFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("descriptor set %s is invalid: %w; rebuild it with protoc or buf", name, err)
	}
	return files, nil
}

// newFiles is protodesc.NewFiles, guarded: a descriptor set is outside input
// and the runtime's resolver must not take the process down.
func newFiles(set *descriptorpb.FileDescriptorSet) (files *protoregistry.Files, err error) {
	defer func() {
		if r := recover(); r != nil {
			files, err = nil, fmt.Errorf("malformed descriptors: %v", r)
		}
	}()
	return protodesc.NewFiles(set)
}

// CompileProtos compiles .proto files with their imports at run time.
func CompileProtos(ctx context.Context, importPaths []string, files ...string) (*protoregistry.Files, error) {
	if len(files) == 0 {
		return nil, errors.New("no .proto files to compile")
	}
	rel := make([]string, len(files))
	for i, f := range files {
		rel[i] = relativeToImportPath(f, importPaths)
	}
	compiled, err := compile(ctx, &protocompile.SourceResolver{ImportPaths: importPaths}, rel)
	if err != nil {
		paths := "the current directory"
		if len(importPaths) > 0 {
			paths = strings.Join(importPaths, ", ")
		}
		hint := "fix the .proto file"
		if errors.Is(err, os.ErrNotExist) {
			hint = "add the directory that holds it with --proto-path (file names and imports are relative to the import paths)"
		}
		return nil, fmt.Errorf("compile %s (import paths: %s): %w; %s", strings.Join(rel, ", "), paths, err, hint)
	}
	return registerAll(compiled)
}

// CompileSources compiles .proto files held in memory: sources maps each
// file name (as imports spell it) to its text, files names the ones to
// compile. The well-known types need no entry. A schema registry's schema
// and its references are compiled this way.
func CompileSources(ctx context.Context, sources map[string]string, files ...string) (*protoregistry.Files, error) {
	if len(files) == 0 {
		return nil, errors.New("no .proto files to compile")
	}
	acc := func(name string) (io.ReadCloser, error) {
		text, ok := sources[name]
		if !ok {
			return nil, fmt.Errorf("%s: %w", name, os.ErrNotExist)
		}
		return io.NopCloser(strings.NewReader(text)), nil
	}
	compiled, err := compile(ctx, &protocompile.SourceResolver{Accessor: acc}, files)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", strings.Join(files, ", "), err)
	}
	return registerAll(compiled)
}

// registerAll puts compiled files and their imports, transitively, into one
// registry.
func registerAll(compiled []protoreflect.FileDescriptor) (*protoregistry.Files, error) {
	reg := new(protoregistry.Files)
	seen := map[string]bool{}
	var register func(fd protoreflect.FileDescriptor) error
	register = func(fd protoreflect.FileDescriptor) error {
		if seen[fd.Path()] {
			return nil
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := register(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return reg.RegisterFile(fd)
	}
	for _, fd := range compiled {
		if err := register(fd); err != nil {
			return nil, fmt.Errorf("register %s: %w", fd.Path(), err)
		}
	}
	return reg, nil
}

func compile(ctx context.Context, resolver protocompile.Resolver, files []string) (out []protoreflect.FileDescriptor, err error) {
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(resolver),
		SourceInfoMode: protocompile.SourceInfoNone,
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("compiler failure: %v", r)
		}
	}()
	res, err := c.Compile(ctx, files...)
	if err != nil {
		return nil, err
	}
	for _, f := range res {
		out = append(out, f)
	}
	return out, nil
}

// relativeToImportPath makes a file name given on the command line relative
// to the import path it is under, as protoc does.
func relativeToImportPath(file string, importPaths []string) string {
	clean := filepath.Clean(file)
	for _, ip := range importPaths {
		ipc := filepath.Clean(ip)
		if r, err := filepath.Rel(ipc, clean); err == nil && !strings.HasPrefix(r, "..") && !filepath.IsAbs(r) {
			return filepath.ToSlash(r)
		}
	}
	return filepath.ToSlash(file)
}

// FindMessage returns the message with full name name ("pkg.v1.Msg"; a
// leading dot is allowed). source names where files came from, for errors.
// An unknown name is a *MessageNotFoundError listing close names.
func FindMessage(files *protoregistry.Files, name, source string) (protoreflect.MessageDescriptor, error) {
	full := strings.TrimPrefix(strings.TrimSpace(name), ".")
	if full == "" {
		return nil, errors.New("no message name given: pass the message's full name with --message (e.g. adtrack.v1.AdImpression)")
	}
	if protoreflect.FullName(full).IsValid() {
		d, err := files.FindDescriptorByName(protoreflect.FullName(full))
		if err == nil {
			if md, ok := d.(protoreflect.MessageDescriptor); ok {
				return md, nil
			}
			return nil, &MessageNotFoundError{Name: full, Source: source, NotMessage: descriptorKind(d), Candidates: suggest.Closest(full, messageNames(files), 5)}
		}
	}
	return nil, &MessageNotFoundError{Name: full, Source: source, Candidates: suggest.Closest(full, messageNames(files), 5)}
}

func descriptorKind(d protoreflect.Descriptor) string {
	switch d.(type) {
	case protoreflect.EnumDescriptor:
		return "enum"
	case protoreflect.EnumValueDescriptor:
		return "enum value"
	case protoreflect.FieldDescriptor:
		return "field"
	case protoreflect.OneofDescriptor:
		return "oneof"
	case protoreflect.ServiceDescriptor:
		return "service"
	case protoreflect.MethodDescriptor:
		return "method"
	case protoreflect.FileDescriptor:
		return "file"
	}
	return "descriptor"
}

func messageNames(files *protoregistry.Files) []string {
	var names []string
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if !m.IsMapEntry() {
				names = append(names, string(m.FullName()))
			}
			walk(m.Messages())
		}
	}
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		walk(fd.Messages())
		return true
	})
	sort.Strings(names)
	return names
}
