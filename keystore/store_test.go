package keystore

import (
	"strings"
	"testing"
)

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		want   bool
	}{
		{DefaultPrefix, true},
		{"team-a.prod:v2_x", true},
		{strings.Repeat("p", 64), true},
		{"", false},
		{strings.Repeat("p", 65), false},
		{"a{b}", false},
		{"a}", false},
		{"a b", false},
		{"a/b", false},
		{"préfixe", false},
	}
	for _, tc := range tests {
		if got := ValidPrefix(tc.prefix); got != tc.want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
}
