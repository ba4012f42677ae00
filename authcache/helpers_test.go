package authcache

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// key mirrors the gateway's cache key: an access ID and a secret digest.
type key struct {
	id string
	d  [16]byte
}

func k(id string) key { return key{id: id} }

func hashKey(k key) uint64 {
	h := binary.LittleEndian.Uint64(k.d[:8])
	for i := 0; i < len(k.id); i++ {
		h = (h ^ uint64(k.id[i])) * 1099511628211
	}
	return h
}

// clock is a manually advanced clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// evictLog records OnEvict calls.
type evictLog struct {
	mu sync.Mutex
	n  [numReasons]int
}

func (l *evictLog) record(r EvictReason) {
	l.mu.Lock()
	l.n[r]++
	l.mu.Unlock()
}

func (l *evictLog) counts() [numReasons]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// checkIndex verifies that the tag index and the entries agree exactly.
func checkIndex[K comparable, V any](t *testing.T, c *Cache[K, V]) {
	t.Helper()
	for si, s := range c.shards {
		s.mu.Lock()
		refs := 0
		for _, k := range s.lru.Keys() {
			e, _ := s.lru.Peek(k)
			if e.key != k {
				t.Errorf("shard %d: entry key mismatch", si)
			}
			for _, r := range e.tags {
				l := s.tags[r.tag]
				if r.pos >= len(l) || l[r.pos] != e {
					t.Errorf("shard %d: tag %q: entry not at recorded position %d", si, r.tag, r.pos)
				}
				refs++
			}
		}
		n := 0
		for tag, l := range s.tags {
			if len(l) == 0 {
				t.Errorf("shard %d: empty list kept for tag %q", si, tag)
			}
			for _, e := range l {
				if got, ok := s.lru.Peek(e.key); !ok || got != e {
					t.Errorf("shard %d: tag %q lists an entry not in the cache", si, tag)
				}
			}
			n += len(l)
		}
		if n != refs {
			t.Errorf("shard %d: index holds %d refs, entries carry %d", si, n, refs)
		}
		s.mu.Unlock()
	}
}
