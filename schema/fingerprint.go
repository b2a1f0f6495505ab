package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// CanonicalDescriptorSet returns the message's transitive FileDescriptorSet
// in canonical form: the file declaring the message and every file it
// imports, transitively (and no other file), sorted by file name, each
// normalized so that equal schemas give equal bytes:
//
//   - source_code_info (comments, positions) is removed;
//   - file-level options (go_package, java_package, … — code generation
//     only) are removed;
//   - json_name is removed where it equals the name protoc derives from the
//     field name (protoc always writes it, other compilers may not); a
//     custom json_name is kept;
//   - the descriptors are rebuilt from the resolved files, so protoc, buf
//     and protocompile output of the same sources agree;
//   - the set is marshalled deterministically.
//
// Everything else — every message, field, enum, option and reserved range
// in those files — is kept, so any change to a reachable type changes the
// bytes. (A change to an unreachable type in one of those files does too:
// the unit is the file, which keeps the set loadable on its own.) The
// commit log archives these bytes at _protolake/descriptors/<fingerprint>.binpb;
// ParseDescriptorSet reads them back.
func CanonicalDescriptorSet(md protoreflect.MessageDescriptor) ([]byte, error) {
	if md == nil {
		return nil, fmt.Errorf("canonical descriptor set: no message")
	}
	var files []protoreflect.FileDescriptor
	seen := map[string]bool{}
	var visit func(fd protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if fd == nil || seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		files = append(files, fd)
		imports := fd.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
	}
	visit(md.ParentFile())
	sort.Slice(files, func(i, j int) bool { return files[i].Path() < files[j].Path() })
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range files {
		if fd.IsPlaceholder() {
			return nil, fmt.Errorf("canonical descriptor set of %s: import %s is unresolved", md.FullName(), fd.Path())
		}
		fdp := protodesc.ToFileDescriptorProto(fd)
		fdp.SourceCodeInfo = nil
		fdp.Options = nil
		for _, m := range fdp.MessageType {
			stripJSONNames(m)
		}
		for _, x := range fdp.Extension {
			stripJSONName(x)
		}
		set.File = append(set.File, fdp)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("canonical descriptor set of %s: %w", md.FullName(), err)
	}
	return b, nil
}

// Fingerprint returns the hex sha256 of CanonicalDescriptorSet(md): the
// identity of a proto version, recorded in the table's
// protolake.proto.fingerprint.
func Fingerprint(md protoreflect.MessageDescriptor) (string, error) {
	b, err := CanonicalDescriptorSet(md)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func stripJSONNames(m *descriptorpb.DescriptorProto) {
	for _, f := range m.Field {
		stripJSONName(f)
	}
	for _, f := range m.Extension {
		stripJSONName(f)
	}
	for _, n := range m.NestedType {
		stripJSONNames(n)
	}
}

func stripJSONName(f *descriptorpb.FieldDescriptorProto) {
	if f.JsonName != nil && f.GetJsonName() == defaultJSONName(f.GetName()) {
		f.JsonName = nil
	}
}

// defaultJSONName is protoc's ToJsonName: underscores removed, the letter
// after each one upper-cased.
func defaultJSONName(name string) string {
	var b strings.Builder
	upper := false
	for _, r := range name {
		if r == '_' {
			upper = true
			continue
		}
		if upper {
			b.WriteRune(unicode.ToUpper(r))
			upper = false
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
