package authcache

import (
	"slices"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// sweepBatch is how many keys SweepExpired checks per lock hold.
const sweepBatch = 256

// entry is one cached value. The LRU holds it by pointer so that the tag
// index can refer to it and update it in place.
type entry[K comparable, V any] struct {
	key      K
	val      V
	deadline int64 // Unix nanoseconds; the entry is dead from this instant
	tags     []tagRef
}

// tagRef records that an entry sits at index pos of the tag's list.
type tagRef struct {
	tag string
	pos int
}

// setPos updates the position recorded for tag.
func (e *entry[K, V]) setPos(tag string, pos int) {
	for i := range e.tags {
		if e.tags[i].tag == tag {
			e.tags[i].pos = pos
			return
		}
	}
}

// shard is one independently locked part of a Cache.
type shard[K comparable, V any] struct {
	mu      sync.Mutex
	size    int
	lru     *simplelru.LRU[K, *entry[K, V]]
	tags    map[string][]*entry[K, V] // tag -> entries carrying it
	flights map[K]*call[V]            // loads in flight
	// gen counts the changes made while loads were in flight: a load
	// records it when it starts, a caller when it joins a load.
	gen uint64
	// dropped lists, oldest first, the tags invalidated since the last
	// time no load was in flight, so that a load can tell at its end
	// whether one of its own tags was invalidated after it started.
	dropped []droppedTag

	// reason is what the LRU eviction callback attributes removals to;
	// every LRU call that can remove an entry sets it first.
	reason EvictReason
	// pending counts removals per reason not yet reported to onEvict.
	pending [numReasons]int
	onEvict func(EvictReason)

	counters
	_ [64]byte // keep neighbouring shards' hot fields off this cache line
}

// droppedTag records that tag was invalidated at generation gen.
type droppedTag struct {
	tag string
	gen uint64
}

// maxDropped bounds a shard's dropped list. When it is full, the loads in
// flight are treated as if every tag recorded after their start were
// theirs, and the list starts again.
const maxDropped = 256

// newShard returns an empty shard holding at most size entries.
func newShard[K comparable, V any](size int, onEvict func(EvictReason)) *shard[K, V] {
	s := &shard[K, V]{size: size, onEvict: onEvict}
	s.reset()
	return s
}

// reset replaces the shard's LRU and tag index with empty ones.
func (s *shard[K, V]) reset() {
	lru, err := simplelru.NewLRU(s.size, s.removed)
	if err != nil {
		panic("authcache: " + err.Error()) // size is always positive
	}
	s.lru = lru
	s.tags = make(map[string][]*entry[K, V])
}

// removed is the LRU eviction callback. It runs with s.mu held.
func (s *shard[K, V]) removed(_ K, e *entry[K, V]) {
	s.unindex(e)
	s.count(s.reason, 1)
	if s.onEvict != nil {
		s.pending[s.reason]++
	}
}

// unlock releases s.mu, then reports the removals made while it was held.
func (s *shard[K, V]) unlock() {
	if s.onEvict == nil {
		s.mu.Unlock()
		return
	}
	p := s.pending
	s.pending = [numReasons]int{}
	s.mu.Unlock()
	for r, n := range p {
		for ; n > 0; n-- {
			s.onEvict(EvictReason(r))
		}
	}
}

// index adds e to the lists of tags, ignoring repeats. e must not be
// indexed already.
func (s *shard[K, V]) index(e *entry[K, V], tags []string) {
	if len(tags) == 0 {
		return
	}
	if cap(e.tags) < len(tags) {
		e.tags = make([]tagRef, 0, len(tags))
	}
outer:
	for _, t := range tags {
		for _, r := range e.tags {
			if r.tag == t {
				continue outer
			}
		}
		list := s.tags[t]
		e.tags = append(e.tags, tagRef{tag: t, pos: len(list)})
		s.tags[t] = append(list, e)
	}
}

// unindex removes e from the lists of all its tags. Lists left empty are
// deleted and lists left mostly unused are shrunk, so the index stays
// proportional to the live entries.
func (s *shard[K, V]) unindex(e *entry[K, V]) {
	for _, r := range e.tags {
		list := s.tags[r.tag]
		last := len(list) - 1
		if last < 0 || r.pos > last || list[r.pos] != e {
			continue // not indexed; cannot happen
		}
		if r.pos != last {
			moved := list[last]
			list[r.pos] = moved
			moved.setPos(r.tag, r.pos)
		}
		list[last] = nil
		list = list[:last]
		switch {
		case last == 0:
			delete(s.tags, r.tag)
		case cap(list) > 64 && len(list) < cap(list)/4:
			s.tags[r.tag] = slices.Clone(list)
		default:
			s.tags[r.tag] = list
		}
	}
	clear(e.tags)
	e.tags = e.tags[:0]
}

// get returns the live entry for k, dropping it if its deadline is not
// after now. s.mu must be held.
func (s *shard[K, V]) get(k K, now int64) (*entry[K, V], bool) {
	e, ok := s.lru.Get(k)
	if !ok {
		return nil, false
	}
	if e.deadline <= now {
		s.reason = EvictExpired
		s.lru.Remove(k)
		return nil, false
	}
	return e, true
}

// add stores v under k until deadline (Unix nanoseconds), replacing any
// entry for k and its tags. A deadline not after now drops the old entry
// and stores nothing. s.mu must be held.
func (s *shard[K, V]) add(k K, v V, deadline, now int64, tags []string) {
	if deadline <= now {
		s.reason = EvictExpired
		s.lru.Remove(k)
		return
	}
	if e, ok := s.lru.Get(k); ok { // Get also marks it most recently used
		s.unindex(e)
		e.val = v
		e.deadline = deadline
		s.index(e, tags)
		return
	}
	// Make room first, so that the evicted entry can be reused.
	var e *entry[K, V]
	if s.lru.Len() >= s.size {
		s.reason = EvictCapacity
		_, e, _ = s.lru.RemoveOldest() // unindexed by the callback
	}
	if e == nil {
		e = new(entry[K, V])
	}
	e.key, e.val, e.deadline = k, v, deadline
	s.index(e, tags)
	s.reason = EvictCapacity
	s.lru.Add(k, e)
}

// invalidateTag drops every entry carrying tag and returns how many.
// Loads in flight whose value turns out to carry tag will not cache it.
// s.mu must be held.
func (s *shard[K, V]) invalidateTag(tag string) int {
	s.dropTag(tag)
	s.reason = EvictInvalidated
	n := 0
	for {
		list := s.tags[tag]
		if len(list) == 0 {
			return n
		}
		e := list[len(list)-1]
		if !s.lru.Remove(e.key) {
			s.unindex(e) // stale index entry; cannot happen
			continue
		}
		n++
	}
}

// dropTag records an invalidation of tag for the loads in flight, if any.
// s.mu must be held.
func (s *shard[K, V]) dropTag(tag string) {
	if len(s.flights) == 0 {
		return
	}
	if len(s.dropped) == maxDropped {
		for _, f := range s.flights {
			s.settle(f, nil, true)
		}
		s.forgetDropped()
	}
	s.gen++
	s.dropped = append(s.dropped, droppedTag{tag: tag, gen: s.gen})
}

// settle marks f stale from the first invalidation, after f started, of
// one of tags, the tags of its value, or of any tag if all is set.
// s.mu must be held.
func (s *shard[K, V]) settle(f *call[V], tags []string, all bool) {
	for _, d := range s.dropped { // oldest first
		if d.gen > f.start && (all || slices.Contains(tags, d.tag)) {
			f.taint(d.gen)
			return
		}
	}
}

// forgetDropped empties the dropped list. s.mu must be held.
func (s *shard[K, V]) forgetDropped() {
	clear(s.dropped)
	s.dropped = s.dropped[:0]
}

// changed records a change of every key (k nil) or of k for the loads in
// flight: their values may predate it. s.mu must be held.
func (s *shard[K, V]) changed(k *K) {
	if len(s.flights) == 0 {
		return
	}
	if k != nil {
		f := s.flights[*k]
		if f == nil {
			return
		}
		s.gen++
		f.taint(s.gen)
		return
	}
	s.gen++
	for _, f := range s.flights {
		f.taint(s.gen)
	}
}

// purge drops every entry. s.mu must be held.
func (s *shard[K, V]) purge() {
	s.changed(nil)
	n := s.lru.Len()
	if n == 0 {
		return
	}
	// Fresh structures rather than lru.Purge: a Go map never shrinks,
	// and nothing needs to be unindexed when the whole index goes.
	s.reset()
	s.count(EvictInvalidated, uint64(n))
	if s.onEvict != nil {
		s.pending[EvictInvalidated] += n
	}
}

// sweep drops the entries whose deadline is not after now and returns
// how many. It takes s.mu itself, in batches, so lookups are not held up
// for the whole scan.
func (s *shard[K, V]) sweep(now int64) int {
	s.mu.Lock()
	keys := s.lru.Keys()
	s.mu.Unlock()
	n := 0
	for len(keys) > 0 {
		batch := keys[:min(sweepBatch, len(keys))]
		keys = keys[len(batch):]
		s.mu.Lock()
		s.reason = EvictExpired
		for _, k := range batch {
			if e, ok := s.lru.Peek(k); ok && e.deadline <= now {
				s.lru.Remove(k)
				n++
			}
		}
		s.unlock()
	}
	return n
}
