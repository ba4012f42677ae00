package caddymodule

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestRedisLog checks that a line go-redis prints goes to zap as one
// warning of the logger access_keys.redis, instead of plain text on
// stderr.
func TestRedisLog(t *testing.T) {
	tests := []struct {
		name, format string
		args         []any
		want         string
	}{
		{"formatted", "sentinel: GetMasterAddrByName name=%q failed: %s", []any{"mymaster", "connection refused"}, `sentinel: GetMasterAddrByName name="mymaster" failed: connection refused`},
		{"trailing newline", "redis: discarding bad connection: %v\n", []any{"EOF"}, "redis: discarding bad connection: EOF"},
		{"no arguments", "pubsub: closed", nil, "pubsub: closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			l := redisLog{base: func() *zap.Logger { return zap.New(core) }, now: time.Now}
			l.Printf(context.Background(), tt.format, tt.args...)
			entries := logs.AllUntimed()
			if len(entries) != 1 {
				t.Fatalf("got %d log entries, want 1: %+v", len(entries), entries)
			}
			e := entries[0]
			if e.LoggerName != "access_keys.redis" || e.Level != zapcore.WarnLevel || e.Message != tt.want {
				t.Errorf("entry = %s %s %q, want access_keys.redis warn %q", e.LoggerName, e.Level, e.Message, tt.want)
			}
		})
	}
}

// TestRedisLogLimit: one line a second passes; the next one to pass counts
// those held back.
func TestRedisLogLimit(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	now := time.Unix(1000, 0)
	l := redisLog{base: func() *zap.Logger { return zap.New(core) }, limit: new(logLimiter), now: func() time.Time { return now }}
	for i := range 5 {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts", i)
	}
	now = now.Add(time.Second)
	l.Printf(context.Background(), "sentinel: new master=%q", "m")
	entries := logs.AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("got %d log entries, want 2: %+v", len(entries), entries)
	}
	if got := entries[0]; got.Message != "redis: connection pool: failed to dial after 0 attempts" || len(got.Context) != 0 {
		t.Errorf("first entry = %q %v, want the first line without fields", got.Message, got.ContextMap())
	}
	if got := entries[1]; got.Message != `sentinel: new master="m"` || got.ContextMap()["suppressed"] != int64(4) {
		t.Errorf("second entry = %q %v, want the later line with suppressed=4", got.Message, got.ContextMap())
	}
}
