package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Compatibility is CheckTable's verdict on a proto version and a table.
type Compatibility struct {
	// Evolution lists every change against the table and, when the version
	// may write, Merged: the schema its files are written with.
	Evolution *schema.Evolution
	// Older is true when the version is older than the table's pinned one
	// (whose archived descriptor is a compatible evolution of it): it
	// writes the fields it knows, the others read null, and it never
	// changes the table's schema or pin.
	Older bool
	// Pin is the table's proto pin.
	Pin commitlog.ProtoPin
	// Judged are the fingerprints of the archived proto versions the
	// version was compared with, besides the table's stored schema.
	Judged []string
}

// CheckTable judges whether msg may write to the table whose current
// metadata is md, against everything the table has ever held: its stored
// schema (which keeps the columns of removed fields, so a reused number with
// another type is a type change), and every proto version archived under
// _protolake/descriptors/ — the pinned one and the history of pins — whose
// reserved numbers and names, removed fields and enum values a new version
// must respect.
//
// Versions archived after msg's own archive (msg ran on the table before
// them: they are newer) are not held against it; when the pinned version is
// newer and a compatible evolution of msg, msg is an older version — a
// rollback, an old replica restarting during a rolling deploy — and may
// write the fields it knows (Compatibility.Older), as an instance started
// before the upgrade does.
//
// It returns the Compatibility and a nil error when msg may write; the
// Compatibility and an *schema.IncompatibleError listing every breaking
// change when it may not; a *schema.PartitioningError when opts partition
// differently from the table (a configuration problem); other errors as they
// are. It only reads the table.
func CheckTable(ctx context.Context, tbl *commitlog.Table, md commitlog.Metadata, msg protoreflect.MessageDescriptor, opts schema.Options) (*Compatibility, error) {
	stored, err := schema.ParseSchemaString(md.SchemaString)
	if err != nil {
		return nil, fmt.Errorf("parse the table's schema: %w", err)
	}
	c := &Compatibility{Pin: commitlog.PinOf(md)}
	ev, err := schema.DiffSchema(stored, msg, opts)
	var inc *schema.IncompatibleError
	if err != nil && !errors.As(err, &inc) {
		return nil, err
	}
	c.Evolution = ev
	fp, err := schema.Fingerprint(msg)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s: %w", msg.FullName(), err)
	}
	versions, err := archivedVersions(ctx, tbl, c.Pin, msg.FullName())
	if err != nil {
		return nil, err
	}
	var ours time.Time // when msg was archived (zero: a version new to the table)
	for _, v := range versions {
		if v.Fingerprint == fp {
			ours = v.Archived
		}
	}
	for _, v := range versions {
		// The pinned version may be newer than msg: msg cannot write to
		// the table as it is (it lacks the newer columns), or msg ran on
		// the table before the pinned version did.
		if v.Fingerprint != c.Pin.Fingerprint || v.Fingerprint == fp || (inc == nil && (ours.IsZero() || !v.Archived.After(ours))) {
			continue
		}
		oev, err := schema.DiffOlder(stored, v.msg, msg, opts)
		var oinc *schema.IncompatibleError
		switch {
		case err == nil:
			c.Evolution, c.Older, inc = oev, true, nil
		case errors.As(err, &oinc) && oinc.Context == "" && oev != nil:
			// An older version that conflicts with the table: its own
			// changes say why, not the fields it does not know.
			c.Evolution = oev
			return c, oinc
		}
	}
	if c.Older {
		return c, nil
	}
	seen := map[string]bool{}
	for _, ch := range c.Evolution.Changes {
		seen[ch.String()] = true
	}
	breaking := inc != nil
	for _, v := range versions {
		newer := !ours.IsZero() && v.Archived.After(ours)
		if v.Fingerprint == fp || newer || (c.Older && v.Fingerprint == c.Pin.Fingerprint) {
			continue
		}
		if !ours.IsZero() && v.Archived.Equal(ours) {
			if _, err := schema.Diff(msg, v.msg, opts); err == nil {
				continue // archived in the same instant: newer if it evolves msg
			}
		}
		c.Judged = append(c.Judged, v.Fingerprint)
		vev, err := schema.Diff(v.msg, msg, opts)
		if err != nil && !errors.As(err, new(*schema.IncompatibleError)) {
			continue // the archived version does not derive under these options
		}
		for _, ch := range vev.Changes {
			if s := ch.String(); !seen[s] && (ch.Breaking || v.Fingerprint == c.Pin.Fingerprint) {
				seen[s] = true
				c.Evolution.Changes = append(c.Evolution.Changes, ch)
				breaking = breaking || ch.Breaking
			}
		}
	}
	if !breaking {
		return c, nil
	}
	// A change the stored schema alone calls compatible (a field added)
	// that an archived version calls breaking (its number was reserved) is
	// reported once, as breaking.
	bad := map[string]bool{}
	for _, ch := range c.Evolution.Changes {
		if ch.Breaking {
			bad[fmt.Sprint(ch.Path, ch.Number)] = true
		}
	}
	kept := c.Evolution.Changes[:0]
	for _, ch := range c.Evolution.Changes {
		if ch.Breaking || !bad[fmt.Sprint(ch.Path, ch.Number)] {
			kept = append(kept, ch)
		}
	}
	c.Evolution.Changes, c.Evolution.Merged = kept, nil
	if inc != nil && len(c.Judged) == 0 {
		return c, inc
	}
	return c, &schema.IncompatibleError{Message: string(msg.FullName()), Changes: c.Evolution.Breaking(),
		Context: "judged against the table's schema and every archived proto version"}
}

// archivedVersion is an archived proto version of the table's message.
type archivedVersion struct {
	commitlog.ArchivedDescriptor
	msg protoreflect.MessageDescriptor
}

// archivedVersions loads every archived descriptor set of the table that
// defines the message (by its name, or the pin's), oldest first. Sets that
// cannot be read or parsed are skipped: the stored schema still holds what
// those versions wrote.
func archivedVersions(ctx context.Context, tbl *commitlog.Table, pin commitlog.ProtoPin, name protoreflect.FullName) ([]archivedVersion, error) {
	ads, err := tbl.ArchivedDescriptors(ctx)
	if err != nil {
		return nil, err
	}
	var out []archivedVersion
	for _, ad := range ads {
		set, err := tbl.Descriptors(ctx, ad.Fingerprint)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		files, err := schema.ParseDescriptorSet(set, commitlog.DescriptorKey(ad.Fingerprint))
		if err != nil {
			continue
		}
		md, err := schema.FindMessage(files, string(name), "archived descriptors")
		if err != nil && pin.Message != "" && pin.Message != string(name) {
			md, err = schema.FindMessage(files, pin.Message, "archived descriptors")
		}
		if err == nil {
			out = append(out, archivedVersion{ad, md})
		}
	}
	return out, nil
}
