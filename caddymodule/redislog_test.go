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
// entry of the logger access_keys.redis, instead of plain text on stderr:
// a warning when it reports a failure, information otherwise.
func TestRedisLog(t *testing.T) {
	tests := []struct {
		name, format string
		args         []any
		want         string
		level        zapcore.Level
	}{
		{"failure", "sentinel: GetMasterAddrByName name=%q failed: %s", []any{"mymaster", "connection refused"}, `sentinel: GetMasterAddrByName name="mymaster" failed: connection refused`, zapcore.WarnLevel},
		{"failed dial", "redis: connection pool: failed to dial after %d attempts: %v", []any{1, "dial tcp 127.0.0.1:1: connect: connection refused"}, "redis: connection pool: failed to dial after 1 attempts: dial tcp 127.0.0.1:1: connect: connection refused", zapcore.WarnLevel},
		{"panic, trailing newline", "autopipeline: recovered dispatch panic: %v\n%s\n", []any{"boom", "stack"}, "autopipeline: recovered dispatch panic: boom\nstack", zapcore.WarnLevel},
		{"dropped", "redis: %v channel is full for %s (message is dropped)", []any{"msg", "P:invalidate"}, "redis: msg channel is full for P:invalidate (message is dropped)", zapcore.WarnLevel},
		{"information", "sentinel: selected addr=%s masterAddr=%s", []any{"127.0.0.1:26379", "127.0.0.1:6379"}, "sentinel: selected addr=127.0.0.1:26379 masterAddr=127.0.0.1:6379", zapcore.InfoLevel},
		{"no arguments", "pubsub: closed", nil, "pubsub: closed", zapcore.InfoLevel},
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
			if e.LoggerName != "access_keys.redis" || e.Level != tt.level || e.Message != tt.want {
				t.Errorf("entry = %s %s %q, want access_keys.redis %s %q", e.LoggerName, e.Level, e.Message, tt.level, tt.want)
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
