package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// redisLog carries the lines go-redis prints itself (failed dials,
// Sentinel failovers, discarded connections) into Caddy's log as entries of
// the logger access_keys.redis, instead of plain text on stderr between
// Caddy's JSON lines. go-redis gives them no level: a line that reports a
// failure is a warning, any other (such as the master Sentinel named) is
// information. Safe for concurrent use.
type redisLog struct {
	// base returns the logger to name access_keys.redis. It is asked at
	// each line, so a reload's logging configuration applies.
	base func() *zap.Logger
	// limit lets one line a second through (a failed dial per request
	// during an outage would be one per request); nil: no limit.
	limit *logLimiter
	now   func() time.Time
}

// Printf implements go-redis's logging interface.
func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	suppressed, ok := l.limit.allow(l.now())
	if !ok {
		return
	}
	var fields []zap.Field
	if suppressed > 0 {
		fields = append(fields, zap.Int64("suppressed", suppressed))
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	level := zapcore.InfoLevel
	if reportsFailure(msg) {
		level = zapcore.WarnLevel
	}
	l.base().Named("access_keys.redis").Log(level, msg, fields...)
}

// failureWords are the words of go-redis's lines that report something
// going wrong ("failed to dial", "recovered ... panic", "message is
// dropped", the text of a network error).
var failureWords = []string{"fail", "error", "panic", "drop", "refused", "timeout"}

// reportsFailure reports whether a go-redis line reports a failure.
func reportsFailure(msg string) bool {
	msg = strings.ToLower(msg)
	for _, w := range failureWords {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

var redisLogOnce sync.Once

// routeRedisLog makes go-redis log through Caddy's logger. go-redis has one
// logger per process, so it is set once, by the first app state.
func routeRedisLog() {
	redisLogOnce.Do(func() {
		redis.SetLogger(redisLog{base: caddy.Log, limit: new(logLimiter), now: time.Now})
	})
}
