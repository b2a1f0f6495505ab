package keys

import "testing"

func TestCheck(t *testing.T) {
	tests := []struct {
		key  string
		want bool // valid
	}{
		{"a", true},
		{"a/b/c.json", true},
		{"_delta_log/00000000000000000000.json", true},
		{"a.b", true},
		{"..a/b..", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"./a", false},
		{"a/../b", false},
		{"..", false},
		{"a/.", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		err := Check(tt.key)
		if got := err == nil; got != tt.want {
			t.Errorf("Check(%q) = %v, want valid=%v", tt.key, err, tt.want)
		}
	}
}
