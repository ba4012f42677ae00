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

func newTable[V any](size int) *table[V] {
	t := &table[V]{seed: maphash.MakeSeed()}
	per := max(size/tableShards, 1)
	for i := range t.shards {
		t.shards[i].lru, _ = simplelru.NewLRU[string, *V](per, nil)
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
