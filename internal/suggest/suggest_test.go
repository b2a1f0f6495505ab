package suggest

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	flags := []string{"config", "until-caught-up", "help", "kafka", "tables", "memory_limit"}
	for _, tt := range []struct {
		name string
		n    int
		want string
	}{
		{"untill-caught-up", 1, "until-caught-up"},
		{"confg", 1, "config"},
		{"memory-limit", 1, "memory_limit"},
		{"zzzzzz", 1, ""},
		{"Order", 2, "shop.Order"}, // a suffix match is as good as exact
	} {
		cands := flags
		if tt.name == "Order" {
			cands = []string{"shop.Orders", "shop.Order", "x.Other"}
		}
		got := Closest(tt.name, cands, tt.n)
		first := ""
		if len(got) > 0 {
			first = got[0]
		}
		if first != tt.want || len(got) > tt.n {
			t.Errorf("Closest(%q, %d) = %q, want %q first", tt.name, tt.n, strings.Join(got, ","), tt.want)
		}
	}
}
