package caddymodule

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxPendingUses bounds the last-use times held in memory while Redis is
// unreachable; beyond it new keys' uses are dropped (and counted).
const maxPendingUses = 1 << 20

// lastUseTracker gathers last-use times in memory so that the request path
// makes no Redis call for them; the state flushes them every
// last_used_flush. Each cache entry marks its key at most once a second.
type lastUseTracker struct {
	mu      sync.Mutex
	pending map[string]time.Time
	dropped atomic.Uint64
}

func newLastUseTracker() *lastUseTracker {
	return &lastUseTracker{pending: make(map[string]time.Time)}
}

// touch records a use of the key of e at now, cheaply: it takes the lock
// only when the entry's last mark is a second old or more.
func (t *lastUseTracker) touch(e *entry, now time.Time) {
	sec := now.Unix()
	if e.lastMark.Load() >= sec {
		return
	}
	e.lastMark.Store(sec)
	t.mu.Lock()
	if len(t.pending) < maxPendingUses || !t.pending[e.ident.AccessID].IsZero() {
		if now.After(t.pending[e.ident.AccessID]) {
			t.pending[e.ident.AccessID] = now
		}
	} else {
		t.dropped.Add(1)
	}
	t.mu.Unlock()
}

// get returns the latest unflushed use of a key, or zero.
func (t *lastUseTracker) get(accessID string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending[accessID]
}

// take removes and returns everything pending.
func (t *lastUseTracker) take() map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.pending
	t.pending = make(map[string]time.Time, len(out))
	return out
}

// restore puts back uses whose flush failed, keeping the later time.
func (t *lastUseTracker) restore(uses map[string]time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, ts := range uses {
		if cur, ok := t.pending[id]; ok && !ts.After(cur) {
			continue
		}
		if len(t.pending) >= maxPendingUses {
			t.dropped.Add(1)
			continue
		}
		t.pending[id] = ts
	}
}

// flush writes what is pending (the store groups it by shard: one script
// per shard of last-use times, all in one pipeline); on failure it is kept
// for the next try.
func (s *state) flushLastUsed(ctx context.Context) {
	uses := s.lastUsed.take()
	if len(uses) == 0 {
		return
	}
	if err := s.store.RecordLastUsed(ctx, uses); err != nil {
		s.lastUsed.restore(uses)
	}
}
