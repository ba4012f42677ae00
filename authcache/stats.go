package authcache

import "sync/atomic"

// Stats is a snapshot of a Cache's counters. Every field only grows.
type Stats struct {
	// Hits counts lookups served from the cache.
	Hits uint64
	// Misses counts lookups that found no live entry, including
	// GetOrLoad calls that waited on another caller's load. LoadMissed,
	// which completes a Get that missed, is not counted again.
	Misses uint64
	// Evictions counts entries dropped to make room for new ones.
	Evictions uint64
	// Expirations counts entries dropped because their deadline passed.
	Expirations uint64
	// Invalidations counts entries dropped by InvalidateTag, Remove or
	// Purge.
	Invalidations uint64
	// Busy counts loads not started because the bound on concurrent
	// loads stayed reached (ErrBusy).
	Busy uint64
}

// counters are the per-shard atomic counters behind Stats. They are
// written under the shard lock and read without it.
type counters struct {
	hits          atomic.Uint64
	misses        atomic.Uint64
	evictions     atomic.Uint64
	expirations   atomic.Uint64
	invalidations atomic.Uint64
	busy          atomic.Uint64
}

// count records n removals for reason r.
func (c *counters) count(r EvictReason, n uint64) {
	switch r {
	case EvictCapacity:
		c.evictions.Add(n)
	case EvictExpired:
		c.expirations.Add(n)
	case EvictInvalidated:
		c.invalidations.Add(n)
	}
}

// addTo adds the counters to s.
func (c *counters) addTo(s *Stats) {
	s.Hits += c.hits.Load()
	s.Misses += c.misses.Load()
	s.Evictions += c.evictions.Load()
	s.Expirations += c.expirations.Load()
	s.Invalidations += c.invalidations.Load()
	s.Busy += c.busy.Load()
}

// Stats returns the counters summed over all shards. The fields are read
// one by one, so a snapshot taken under load need not be exactly
// consistent across fields.
func (c *Cache[K, V]) Stats() Stats {
	var s Stats
	for _, sh := range c.shards {
		sh.addTo(&s)
	}
	return s
}
