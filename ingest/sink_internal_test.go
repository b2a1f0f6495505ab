package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/writer"
)

// TestNewerThanOursReturnsReadErrors: failing to read the table's archived
// descriptors is an error, not the answer "not newer" (which the caller
// reported as an incompatible table); no archive and no pin are "no".
func TestNewerThanOursReturnsReadErrors(t *testing.T) {
	ctx := context.Background()
	store := faulty.New(mem.New())
	msg := (&adtrackpb.AdImpression{}).ProtoReflect().Descriptor()
	s, err := openSink(ctx, "t", "mem://t", store, msg, schema.Options{}, "v1", writer.Config{}, commitlog.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	v := s.version()
	set, err := schema.CanonicalDescriptorSet(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.log.ArchiveDescriptors(ctx, v.pin.Fingerprint, set); err != nil {
		t.Fatal(err)
	}
	if newer, err := s.newerThanOurs(ctx, v.pin, v); err != nil || !newer {
		t.Errorf("own archived version: newer=%v, %v; want true (a version is compatible with itself)", newer, err)
	}
	if newer, err := s.newerThanOurs(ctx, commitlog.ProtoPin{}, v); err != nil || newer {
		t.Errorf("no pin: %v, %v; want false, nil", newer, err)
	}
	missing := commitlog.ProtoPin{Message: v.pin.Message, Fingerprint: strings.Repeat("ab", 32)}
	if newer, err := s.newerThanOurs(ctx, missing, v); err != nil || newer {
		t.Errorf("no archive: %v, %v; want false, nil", newer, err)
	}
	store.Inject(faulty.Fault{Op: faulty.OpGet, Match: func(c faulty.Call) bool { return strings.HasPrefix(c.Key, "_protolake/descriptors/") }})
	if _, err := s.newerThanOurs(ctx, v.pin, v); !errors.Is(err, faulty.ErrInjected) {
		t.Errorf("archive read fails: err = %v, want the store's error", err)
	}
}
