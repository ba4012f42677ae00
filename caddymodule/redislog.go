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
)

// redisLog carries the lines go-redis prints itself (failed dials,
// Sentinel failovers, discarded connections) into Caddy's log as entries of
// the logger access_keys.redis, instead of plain text on stderr between
// Caddy's JSON lines. go-redis gives them no level; it prints only what it
// cannot return as an error, so they are warnings. Safe for concurrent use.
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
	l.base().Named("access_keys.redis").Warn(strings.TrimSpace(fmt.Sprintf(format, v...)), fields...)
}

var redisLogOnce sync.Once

// routeRedisLog makes go-redis log through Caddy's logger. go-redis has one
// logger per process, so it is set once, by the first app state.
func routeRedisLog() {
	redisLogOnce.Do(func() {
		redis.SetLogger(redisLog{base: caddy.Log, limit: new(logLimiter), now: time.Now})
	})
}
