package limits

import (
	"hash/maphash"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// table holds the local state of limited subjects, bounded: the least
// recently used subjects are dropped when it is full. Dropping a subject
// loses at most what it had leased (it is then under-used, never
// over-used).
type table[V any] struct {
	seed   maphash.Seed
	shards [tableShards]tableShard[V]
}

const tableShards = 16

type tableShard[V any] struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, *V]
}

func newTable[V any](size int, evicted func(*V)) *table[V] {
	t := &table[V]{seed: maphash.MakeSeed()}
	per := max(size/tableShards, 1)
	for i := range t.shards {
		var onEvict simplelru.EvictCallback[string, *V]
		if evicted != nil {
			onEvict = func(_ string, v *V) { evicted(v) }
		}
		t.shards[i].lru, _ = simplelru.NewLRU[string, *V](per, onEvict)
	}
	return t
}

// get returns the state of subject id, creating it with init if missing.
func (t *table[V]) get(id string, init func(*V)) *V {
	sh := &t.shards[maphash.String(t.seed, id)%tableShards]
	sh.mu.Lock()
	v, ok := sh.lru.Get(id)
	if !ok {
		v = new(V)
		init(v)
		sh.lru.Add(id, v)
	}
	sh.mu.Unlock()
	return v
}

// each calls f for every subject held.
func (t *table[V]) each(f func(*V)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		vals := sh.lru.Values()
		sh.mu.Unlock()
		for _, v := range vals {
			f(v)
		}
	}
}

// len returns the number of subjects held.
func (t *table[V]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}
