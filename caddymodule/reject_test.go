package caddymodule

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestClientText(t *testing.T) {
	long := strings.Repeat("a", 2000)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "/api/v1/x", "/api/v1/x"},
		{"exactly the limit", long[:maxClientText], long[:maxClientText]},
		{"one byte over", long[:maxClientText+1], long[:maxClientText] + "…"},
		{"long ASCII", long, long[:maxClientText] + "…"},
		// A two-byte rune straddles the limit: it is left out whole.
		{"split rune", long[:maxClientText-1] + "é" + long, long[:maxClientText-1] + "…"},
		// A four-byte rune ending right at the limit is kept whole.
		{"rune at the limit", long[:maxClientText-4] + "😀" + long, long[:maxClientText-4] + "😀…"},
		{"four-byte rune straddling", long[:maxClientText-2] + "😀" + long, long[:maxClientText-2] + "…"},
		// Not UTF-8 at all: the cut still happens, within three bytes.
		{"continuation bytes", strings.Repeat("\x80", 2000), strings.Repeat("\x80", maxClientText-3) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := clientText(tc.in)
			if got != tc.want {
				t.Errorf("clientText: got %d bytes ending %q, want %d bytes ending %q", len(got), got[max(0, len(got)-8):], len(tc.want), tc.want[max(0, len(tc.want)-8):])
			}
			if len(got) > maxClientText+len("…") {
				t.Errorf("clientText: %d bytes, want at most %d", len(got), maxClientText+len("…"))
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
				t.Error("clientText made valid UTF-8 invalid")
			}
		})
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int64
	}{
		{0, true, 0},
		{time.Millisecond, false, 0},
		{999 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{1500 * time.Millisecond, false, 0},
		{5 * time.Second, true, 1},
		{5 * time.Second, false, 0},
	}
	for i, s := range steps {
		suppressed, ok := l.allow(t0.Add(s.at))
		if ok != s.ok || suppressed != s.suppressed {
			t.Errorf("step %d at +%v: allow = %d, %v; want %d, %v", i, s.at, suppressed, ok, s.suppressed, s.ok)
		}
	}
	var none *logLimiter
	if _, ok := none.allow(t0); !ok {
		t.Error("a nil logLimiter held a line back")
	}
}
