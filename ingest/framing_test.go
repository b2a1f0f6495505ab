package ingest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

func TestUnframe(t *testing.T) {
	msg := []byte{0x0a, 0x01, 'x'}
	hdr := []byte{0, 0, 0, 0, 42}
	for _, tc := range []struct {
		name    string
		framing string
		in      []byte
		want    []byte
		bad     bool
	}{
		{"raw", FramingRaw, msg, msg, false},
		{"first message", FramingConfluent, append(append(append([]byte{}, hdr...), 0), msg...), msg, false},
		{"index path [1,2]", FramingConfluent, append(append(append([]byte{}, hdr...), 4, 2, 4), msg...), msg, false},
		{"empty message", FramingConfluent, append(append([]byte{}, hdr...), 0), []byte{}, false},
		{"short", FramingConfluent, []byte{0, 0, 0}, nil, true},
		{"magic", FramingConfluent, append([]byte{1, 0, 0, 0, 42, 0}, msg...), nil, true},
		{"truncated indexes", FramingConfluent, append(append([]byte{}, hdr...), 6, 2), nil, true},
		{"bad varint", FramingConfluent, append(append([]byte{}, hdr...), 0xff), nil, true},
		{"negative count", FramingConfluent, append(append([]byte{}, hdr...), 1), nil, true},
	} {
		got, err := unframe(tc.framing, tc.in)
		if tc.bad {
			if !errors.Is(err, errFraming) {
				t.Errorf("%s: err = %v, want errFraming", tc.name, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %x, %v; want %x", tc.name, got, err, tc.want)
		}
	}
}

func FuzzUnframe(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 8, 1})
	f.Add([]byte{0, 0, 0, 0, 1, 4, 2, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := unframe(FramingConfluent, b)
		if err == nil && len(got) > len(b) {
			t.Fatalf("unframe grew the value")
		}
	})
}

// TestUnframeConfluentIDAndIndex checks the id and index path against
// franz-go's Confluent header encoder (an implementation that is not ours).
func TestUnframeConfluentIDAndIndex(t *testing.T) {
	msg := []byte{0x0a, 0x01, 'x'}
	for _, tc := range []struct {
		id    int
		index []int
		want  []int
	}{
		{1, []int{0}, nil}, // the [0] shortcut: a single 0 byte
		{70000, []int{1}, []int{1}},
		{3, []int{2, 0, 5}, []int{2, 0, 5}},
	} {
		v, err := (&sr.ConfluentHeader{}).AppendEncode(nil, tc.id, tc.index)
		if err != nil {
			t.Fatal(err)
		}
		v = append(v, msg...)
		id, index, payload, err := unframeConfluent(v)
		if err != nil || id != tc.id || !slices.Equal(index, tc.want) || !bytes.Equal(payload, msg) {
			t.Errorf("%d %v: got %d %v %x %v", tc.id, tc.index, id, index, payload, err)
		}
	}
}
