package config

import "testing"

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1024": 1024, "128MiB": 128 << 20, "1GiB": 1 << 30, "64MB": 64e6, "7B": 7, " 2 KiB": 2048} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("UnmarshalText(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "lots", "99999999999TiB"} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", in)
		}
	}
	if got := ByteSize(128 << 20).String(); got != "128MiB" {
		t.Errorf("String = %q", got)
	}
	if got := ByteSize(1000).String(); got != "1000B" {
		t.Errorf("String = %q", got)
	}
}
