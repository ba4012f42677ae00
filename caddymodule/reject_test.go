package caddymodule

import (
	"testing"
	"time"
)

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
