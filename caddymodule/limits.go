package caddymodule

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessgate/accessgate/authcache"
)

// failureLimiter counts failed authentications per client address or per
// Access ID in fixed windows, and blocks a key of it once the count
// reaches the limit, until its window ends.
type failureLimiter struct {
	mu     sync.Mutex // serialises creating a key's counter
	limit  int64
	window time.Duration
	counts *authcache.Cache[string, *failCount]
}

type failCount struct {
	n     atomic.Int64
	until time.Time
}

func newFailureLimiter(limit int, window time.Duration, size int) *failureLimiter {
	return &failureLimiter{
		limit:  int64(limit),
		window: window,
		counts: authcache.New[string, *failCount](authcache.Config[string]{Size: size, TTL: window}),
	}
}

// blocked reports whether key has used up its failures, and for how long
// it stays blocked.
func (l *failureLimiter) blocked(key string, now time.Time) (time.Duration, bool) {
	if l.limit <= 0 || key == "" {
		return 0, false
	}
	c, ok := l.counts.Get(key)
	if !ok || c.n.Load() < l.limit {
		return 0, false
	}
	return c.until.Sub(now), true
}

// fail counts one failure of key.
func (l *failureLimiter) fail(key string, now time.Time) {
	if l.limit <= 0 || key == "" {
		return
	}
	c, ok := l.counts.Get(key)
	if !ok {
		l.mu.Lock()
		if c, ok = l.counts.Get(key); !ok {
			c = &failCount{until: now.Add(l.window)}
			l.counts.Add(key, c, c.until)
		}
		l.mu.Unlock()
	}
	c.n.Add(1)
}
