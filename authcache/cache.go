// Package authcache caches verified credentials for the gateway.
//
// A Cache is an LRU bounded both in size and in time: every entry has a
// deadline, the earlier of the one it was added with and the configured
// TTL. Entries carry tags (such as the access ID and owner ID they were
// verified for) so that all of them can be dropped at once when the
// credential or its owner changes. GetOrLoad runs at most one load per key
// at a time and never caches a value whose load raced with an
// invalidation of that value (of its key, of one of its tags, or of
// everything), nor hands such a value to a caller that arrived after the
// invalidation.
//
// A Cache starts no goroutines and holds no resources besides memory, so
// dropping it is enough to release it. Expired entries are removed when
// they are next looked up, or by SweepExpired, which the owner calls from
// its own loop. The package never imports Caddy.
package authcache

import (
	"strconv"
	"time"
)

// Defaults for the zero Config fields.
const (
	defaultSize = 10000
	defaultTTL  = 15 * time.Minute

	defaultLoadWait = time.Second
)

// EvictReason says why an entry left the cache.
type EvictReason int

// The reasons an entry leaves the cache.
const (
	// EvictCapacity: dropped as least recently used to make room.
	EvictCapacity EvictReason = iota
	// EvictExpired: its deadline passed.
	EvictExpired
	// EvictInvalidated: dropped by InvalidateTag, Remove or Purge.
	EvictInvalidated

	numReasons = iota
)

// String returns "capacity", "expired" or "invalidated".
func (r EvictReason) String() string {
	switch r {
	case EvictCapacity:
		return "capacity"
	case EvictExpired:
		return "expired"
	case EvictInvalidated:
		return "invalidated"
	}
	return "EvictReason(" + strconv.Itoa(int(r)) + ")"
}

// Config configures a Cache. The zero value is usable.
type Config[K comparable] struct {
	// Size is the most entries held, in total across shards; 10000
	// when <= 0.
	Size int
	// TTL is the longest an entry lives; 15 minutes when <= 0.
	TTL time.Duration
	// Shards is the number of independently locked shards; one when
	// <= 1. It is lowered to Size if larger. Each shard holds its share
	// of Size and evicts on its own, so the LRU order is per shard.
	Shards int
	// Hash picks the shard of a key. It is required when Shards > 1 and
	// should spread keys evenly.
	Hash func(K) uint64
	// Now is the clock; time.Now when nil. Get reads it once per call,
	// so a cheap coarse clock kept by the owner can be used instead.
	Now func() time.Time
	// OnEvict, when set, is called once per entry dropped for capacity,
	// expiry or invalidation (not when an entry is replaced by Add), for
	// metrics. It is called after the shard lock is released, from the
	// goroutine whose call dropped the entry, and must be safe for
	// concurrent use.
	OnEvict func(reason EvictReason)
	// MaxLoads, when positive, bounds the loads of GetOrLoad and
	// LoadMissed running at once, whatever their keys, so that many
	// misses at once (a cold start) cannot overload what the loads read.
	// A caller that would start a load past the bound waits for one to
	// end, at most LoadWait, and then gets ErrBusy. Callers that join a
	// load already in flight take no slot. Zero: no bound.
	MaxLoads int
	// LoadWait is the longest wait for a load slot when MaxLoads is set;
	// one second when <= 0.
	LoadWait time.Duration
}

// Cache is a size- and time-bounded LRU with per-entry deadlines, tag
// invalidation and one load per key at a time. It is safe for concurrent
// use. Create it with New.
type Cache[K comparable, V any] struct {
	shards []*shard[K, V]
	hash   func(K) uint64
	now    func() time.Time
	ttl    time.Duration
	// loads holds a token per load running when the loads are bounded;
	// nil otherwise.
	loads    chan struct{}
	loadWait time.Duration
}

// New returns an empty Cache configured by cfg. It panics if cfg.Shards > 1
// and cfg.Hash is nil.
func New[K comparable, V any](cfg Config[K]) *Cache[K, V] {
	size := cfg.Size
	if size <= 0 {
		size = defaultSize
	}
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = defaultTTL
	}
	n := 1
	if cfg.Shards > 1 {
		if cfg.Hash == nil {
			panic("authcache: Config.Hash is required when Config.Shards > 1")
		}
		n = min(cfg.Shards, size)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Cache[K, V]{
		shards: make([]*shard[K, V], n),
		hash:   cfg.Hash,
		now:    now,
		ttl:    ttl,
	}
	if cfg.MaxLoads > 0 {
		c.loads = make(chan struct{}, cfg.MaxLoads)
		c.loadWait = cfg.LoadWait
		if c.loadWait <= 0 {
			c.loadWait = defaultLoadWait
		}
	}
	for i := range c.shards {
		per := size / n
		if i < size%n {
			per++
		}
		c.shards[i] = newShard[K, V](per, cfg.OnEvict)
	}
	return c
}

// shard returns the shard holding k.
func (c *Cache[K, V]) shard(k K) *shard[K, V] {
	if len(c.shards) == 1 {
		return c.shards[0]
	}
	return c.shards[c.hash(k)%uint64(len(c.shards))]
}

// deadline returns the effective deadline, in Unix nanoseconds, of an
// entry added at now with deadline d (zero for none).
func (c *Cache[K, V]) deadline(now, d time.Time) int64 {
	eff := now.Add(c.ttl)
	if !d.IsZero() && d.Before(eff) {
		eff = d
	}
	return eff.UnixNano()
}

// Get returns the value cached for k. It reports false if there is none or
// its deadline has passed; an expired entry is removed then.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	s := c.shard(k)
	now := c.now().UnixNano()
	s.mu.Lock()
	e, ok := s.get(k, now)
	if !ok {
		s.misses.Add(1)
		s.unlock()
		var zero V
		return zero, false
	}
	v := e.val
	s.hits.Add(1)
	s.mu.Unlock() // a hit removes nothing, so nothing to report
	return v, true
}

// Add caches v under k until deadline (zero for none) or for the TTL,
// whichever ends first, and tags it with tags for InvalidateTag. It
// replaces any entry for k together with its tags. A deadline already
// passed just removes the entry for k. A GetOrLoad load for k in flight
// meanwhile will not overwrite v.
func (c *Cache[K, V]) Add(k K, v V, deadline time.Time, tags ...string) {
	s := c.shard(k)
	now := c.now()
	dl := c.deadline(now, deadline)
	s.mu.Lock()
	s.changed(&k)
	s.add(k, v, dl, now.UnixNano(), tags)
	s.unlock()
}

// InvalidateTag removes every entry tagged with tag and returns how many
// it removed. Loads in flight at the time will not cache their values if
// these carry tag; loads of values without it are not affected.
func (c *Cache[K, V]) InvalidateTag(tag string) int {
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += s.invalidateTag(tag)
		s.unlock()
	}
	return n
}

// Remove removes the entry for k and reports whether there was one
// (expired or not). A load for k in flight will not cache its value.
func (c *Cache[K, V]) Remove(k K) bool {
	s := c.shard(k)
	s.mu.Lock()
	s.changed(&k)
	s.reason = EvictInvalidated
	ok := s.lru.Remove(k)
	s.unlock()
	return ok
}

// Purge removes every entry. Loads in flight at the time will not cache
// their values.
func (c *Cache[K, V]) Purge() {
	for _, s := range c.shards {
		s.mu.Lock()
		s.purge()
		s.unlock()
	}
}

// Len returns the number of entries held, including expired ones not yet
// removed.
func (c *Cache[K, V]) Len() int {
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// SweepExpired removes every entry whose deadline has passed and returns
// how many it removed. The cache never sweeps by itself; the owner calls
// this from its own loop.
func (c *Cache[K, V]) SweepExpired() int {
	now := c.now().UnixNano()
	n := 0
	for _, s := range c.shards {
		n += s.sweep(now)
	}
	return n
}

// tagIndexSize returns the number of tags indexed and the number of
// (entry, tag) pairs recorded, over all shards.
func (c *Cache[K, V]) tagIndexSize() (tags, refs int) {
	for _, s := range c.shards {
		s.mu.Lock()
		tags += len(s.tags)
		for _, l := range s.tags {
			refs += len(l)
		}
		s.mu.Unlock()
	}
	return tags, refs
}
