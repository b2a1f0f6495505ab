package ingest

import (
	"bytes"
	"errors"
	"testing"
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
