package authcache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestNewDefaults(t *testing.T) {
	c := New[key, int](Config[key]{})
	if len(c.shards) != 1 || c.shards[0].size != defaultSize || c.ttl != defaultTTL {
		t.Fatalf("shards=%d size=%d ttl=%v", len(c.shards), c.shards[0].size, c.ttl)
	}

	c = New[key, int](Config[key]{Size: 10, Shards: 4, Hash: hashKey})
	sizes := 0
	for _, s := range c.shards {
		sizes += s.size
	}
	if len(c.shards) != 4 || sizes != 10 {
		t.Fatalf("shards=%d total size=%d", len(c.shards), sizes)
	}

	c = New[key, int](Config[key]{Size: 3, Shards: 8, Hash: hashKey})
	if len(c.shards) != 3 {
		t.Fatalf("shards=%d, want 3 (capped by Size)", len(c.shards))
	}

	defer func() {
		if recover() == nil {
			t.Fatal("New with Shards > 1 and no Hash did not panic")
		}
	}()
	New[key, int](Config[key]{Shards: 2})
}

func TestEvictReasonString(t *testing.T) {
	for r, want := range map[EvictReason]string{
		EvictCapacity:    "capacity",
		EvictExpired:     "expired",
		EvictInvalidated: "invalidated",
		EvictReason(9):   "EvictReason(9)",
	} {
		if got := r.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestDeadline(t *testing.T) {
	const ttl = 10 * time.Minute
	none := func(time.Time) time.Time { return time.Time{} }
	in := func(d time.Duration) func(time.Time) time.Time {
		return func(now time.Time) time.Time { return now.Add(d) }
	}
	tests := []struct {
		name     string
		deadline func(now time.Time) time.Time
		stored   bool
		liveFor  time.Duration // expected effective lifetime
	}{
		{"none uses TTL", none, true, ttl},
		{"earlier than TTL", in(3 * time.Minute), true, 3 * time.Minute},
		{"later than TTL", in(time.Hour), true, ttl},
		{"equal to TTL", in(ttl), true, ttl},
		{"far future", func(time.Time) time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }, true, ttl},
		{"already passed", in(-time.Second), false, 0},
		{"exactly now", in(0), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			c := New[key, string](Config[key]{TTL: ttl, Now: clk.Now})
			dl := tt.deadline(clk.Now())
			c.Add(k("a"), "v", dl)
			if _, ok := c.Get(k("a")); ok != tt.stored {
				t.Fatalf("Get right after Add: ok=%v, want %v", ok, tt.stored)
			}
			if !tt.stored {
				if c.Len() != 0 {
					t.Fatalf("Len = %d, want 0", c.Len())
				}
				return
			}
			clk.Advance(tt.liveFor - time.Nanosecond)
			if v, ok := c.Get(k("a")); !ok || v != "v" {
				t.Fatalf("Get just before deadline = %q, %v", v, ok)
			}
			clk.Advance(time.Nanosecond)
			if _, ok := c.Get(k("a")); ok {
				t.Fatal("Get at deadline hit")
			}
			if c.Len() != 0 {
				t.Fatalf("expired entry not removed on Get: Len = %d", c.Len())
			}
			if s := c.Stats(); s.Expirations != 1 || s.Hits != 2 || s.Misses != 1 {
				t.Fatalf("stats = %+v", s)
			}
		})
	}
}

func TestAddPastDeadlineDropsOld(t *testing.T) {
	clk := newClock()
	c := New[key, int](Config[key]{Now: clk.Now})
	c.Add(k("a"), 1, time.Time{}, "t")
	c.Add(k("a"), 2, clk.Now().Add(-time.Minute), "t")
	if _, ok := c.Get(k("a")); ok {
		t.Fatal("old value still served after re-Add with a passed deadline")
	}
	if tags, refs := c.tagIndexSize(); tags != 0 || refs != 0 {
		t.Fatalf("tag index = %d tags, %d refs", tags, refs)
	}
}

func TestTTLExpiry(t *testing.T) {
	clk := newClock()
	c := New[key, int](Config[key]{TTL: time.Minute, Now: clk.Now})
	c.Add(k("a"), 1, time.Time{}, "x")
	clk.Advance(30 * time.Second)
	c.Add(k("b"), 2, time.Time{}, "x")
	clk.Advance(30 * time.Second)
	if _, ok := c.Get(k("a")); ok {
		t.Fatal("a outlived the TTL")
	}
	if v, ok := c.Get(k("b")); !ok || v != 2 {
		t.Fatalf("b = %d, %v", v, ok)
	}
	// Re-adding restarts the TTL.
	c.Add(k("b"), 3, time.Time{})
	clk.Advance(59 * time.Second)
	if v, ok := c.Get(k("b")); !ok || v != 3 {
		t.Fatalf("b after re-Add = %d, %v", v, ok)
	}
	checkIndex(t, c)
}

func TestCapacityEvictionOrder(t *testing.T) {
	log := &evictLog{}
	c := New[key, int](Config[key]{Size: 3, OnEvict: log.record})
	c.Add(k("a"), 1, time.Time{}, "ta")
	c.Add(k("b"), 2, time.Time{}, "tb")
	c.Add(k("c"), 3, time.Time{}, "tc")
	c.Get(k("a"))                  // order, oldest first: b c a
	c.Add(k("c"), 30, time.Time{}) // re-Add refreshes: b a c
	c.Add(k("d"), 4, time.Time{})  // evicts b
	c.Add(k("e"), 5, time.Time{})  // evicts a

	for _, tt := range []struct {
		id   string
		want int
		ok   bool
	}{{"a", 0, false}, {"b", 0, false}, {"c", 30, true}, {"d", 4, true}, {"e", 5, true}} {
		if v, ok := c.Get(k(tt.id)); ok != tt.ok || v != tt.want {
			t.Errorf("Get(%s) = %d, %v; want %d, %v", tt.id, v, ok, tt.want, tt.ok)
		}
	}
	if s := c.Stats(); s.Evictions != 2 {
		t.Fatalf("Evictions = %d, want 2", s.Evictions)
	}
	if got := log.counts(); got[EvictCapacity] != 2 || got[EvictExpired] != 0 || got[EvictInvalidated] != 0 {
		t.Fatalf("OnEvict counts = %v", got)
	}
	if n := c.InvalidateTag("ta"); n != 0 {
		t.Fatalf("tag of evicted entry still matched %d", n)
	}
	if tags, _ := c.tagIndexSize(); tags != 0 {
		t.Fatalf("tags of evicted entries left in the index: %d", tags)
	}
	checkIndex(t, c)
}

func TestInvalidateTag(t *testing.T) {
	type add struct {
		id   string
		tags []string
	}
	adds := []add{
		{"k1", []string{"acc1", "own1"}},
		{"k2", []string{"acc2", "own1"}},
		{"k3", []string{"acc3", "own2"}},
		{"k4", []string{"acc4", "own2", "acc4"}}, // repeated tag
		{"k5", nil},
	}
	tests := []struct {
		name  string
		tags  []string // invalidated in order
		count []int
		left  []string
	}{
		{"access tag", []string{"acc1"}, []int{1}, []string{"k2", "k3", "k4", "k5"}},
		{"owner tag", []string{"own1"}, []int{2}, []string{"k3", "k4", "k5"}},
		{"repeated tag counted once", []string{"acc4"}, []int{1}, []string{"k1", "k2", "k3", "k5"}},
		{"overlapping", []string{"own2", "acc3"}, []int{2, 0}, []string{"k1", "k2", "k5"}},
		{"unknown", []string{"nope"}, []int{0}, []string{"k1", "k2", "k3", "k4", "k5"}},
		{"all", []string{"own1", "own2"}, []int{2, 2}, []string{"k5"}},
	}
	for _, shards := range []int{1, 4} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/shards=%d", tt.name, shards), func(t *testing.T) {
				log := &evictLog{}
				c := New[key, string](Config[key]{Shards: shards, Hash: hashKey, OnEvict: log.record})
				for _, a := range adds {
					c.Add(k(a.id), a.id, time.Time{}, a.tags...)
				}
				total := 0
				for i, tag := range tt.tags {
					if n := c.InvalidateTag(tag); n != tt.count[i] {
						t.Errorf("InvalidateTag(%q) = %d, want %d", tag, n, tt.count[i])
					}
					total += tt.count[i]
				}
				var left []string
				for _, a := range adds {
					if _, ok := c.Get(k(a.id)); ok {
						left = append(left, a.id)
					}
				}
				if !slices.Equal(left, tt.left) {
					t.Errorf("left = %v, want %v", left, tt.left)
				}
				if s := c.Stats(); s.Invalidations != uint64(total) {
					t.Errorf("Invalidations = %d, want %d", s.Invalidations, total)
				}
				if got := log.counts(); got[EvictInvalidated] != total {
					t.Errorf("OnEvict(invalidated) called %d times, want %d", got[EvictInvalidated], total)
				}
				checkIndex(t, c)
			})
		}
	}
}

func TestReAddReplacesTags(t *testing.T) {
	c := New[key, int](Config[key]{})
	c.Add(k("a"), 1, time.Time{}, "old1", "shared")
	c.Add(k("b"), 2, time.Time{}, "shared")
	c.Add(k("a"), 3, time.Time{}, "new1", "shared")
	checkIndex(t, c)
	if n := c.InvalidateTag("old1"); n != 0 {
		t.Fatalf("old tag still matches %d entries", n)
	}
	if v, ok := c.Get(k("a")); !ok || v != 3 {
		t.Fatalf("a = %d, %v", v, ok)
	}
	if tags, refs := c.tagIndexSize(); tags != 2 || refs != 3 {
		t.Fatalf("index = %d tags, %d refs; want 2, 3", tags, refs)
	}
	if n := c.InvalidateTag("new1"); n != 1 {
		t.Fatalf("InvalidateTag(new1) = %d", n)
	}
	c.Add(k("b"), 4, time.Time{}) // no tags now
	if n := c.InvalidateTag("shared"); n != 0 {
		t.Fatalf("InvalidateTag(shared) = %d after its last entry was re-added untagged", n)
	}
	if v, ok := c.Get(k("b")); !ok || v != 4 {
		t.Fatalf("b = %d, %v", v, ok)
	}
	if s := c.Stats(); s.Evictions+s.Expirations != 0 || s.Invalidations != 1 {
		t.Fatalf("replacement counted as a removal: %+v", s)
	}
	checkIndex(t, c)
}

func TestRemove(t *testing.T) {
	log := &evictLog{}
	c := New[key, int](Config[key]{OnEvict: log.record})
	c.Add(k("a"), 1, time.Time{}, "t")
	if !c.Remove(k("a")) {
		t.Fatal("Remove(a) = false")
	}
	if c.Remove(k("a")) {
		t.Fatal("second Remove(a) = true")
	}
	if _, ok := c.Get(k("a")); ok {
		t.Fatal("a still cached")
	}
	if tags, refs := c.tagIndexSize(); tags+refs != 0 {
		t.Fatalf("index = %d tags, %d refs", tags, refs)
	}
	if got := log.counts(); got[EvictInvalidated] != 1 {
		t.Fatalf("OnEvict counts = %v", got)
	}
}

func TestPurge(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			log := &evictLog{}
			c := New[key, int](Config[key]{Shards: shards, Hash: hashKey, OnEvict: log.record})
			for i := range 50 {
				c.Add(k(fmt.Sprint(i)), i, time.Time{}, fmt.Sprint("t", i%7), "all")
			}
			c.Purge()
			if c.Len() != 0 {
				t.Fatalf("Len = %d", c.Len())
			}
			if tags, refs := c.tagIndexSize(); tags+refs != 0 {
				t.Fatalf("index = %d tags, %d refs", tags, refs)
			}
			if s := c.Stats(); s.Invalidations != 50 {
				t.Fatalf("Invalidations = %d", s.Invalidations)
			}
			if got := log.counts(); got[EvictInvalidated] != 50 {
				t.Fatalf("OnEvict counts = %v", got)
			}
			// Still usable, with working eviction callbacks.
			c.Add(k("x"), 1, time.Time{}, "t")
			if c.InvalidateTag("t") != 1 {
				t.Fatal("cache unusable after Purge")
			}
			checkIndex(t, c)
		})
	}
}

func TestSharded(t *testing.T) {
	const shards, size = 8, 800
	clk := newClock()
	c := New[key, int](Config[key]{Size: size, Shards: shards, Hash: hashKey, Now: clk.Now})
	for i := range size / 2 {
		c.Add(key{id: fmt.Sprint(i), d: [16]byte{byte(i)}}, i, time.Time{}, fmt.Sprint("own", i%10))
	}
	used := 0
	for _, s := range c.shards {
		if s.lru.Len() > 0 {
			used++
		}
	}
	if used < shards/2 {
		t.Fatalf("only %d of %d shards used", used, shards)
	}
	for i := range size / 2 {
		if v, ok := c.Get(key{id: fmt.Sprint(i), d: [16]byte{byte(i)}}); !ok || v != i {
			t.Fatalf("Get(%d) = %d, %v", i, v, ok)
		}
	}
	if c.Len() != size/2 {
		t.Fatalf("Len = %d", c.Len())
	}
	if n := c.InvalidateTag("own3"); n != size/2/10 {
		t.Fatalf("InvalidateTag across shards = %d", n)
	}
	// Overfill: total never exceeds Size.
	for i := range 5 * size {
		c.Add(key{id: fmt.Sprint("x", i)}, i, time.Time{})
	}
	if c.Len() != size {
		t.Fatalf("Len after overfill = %d, want %d", c.Len(), size)
	}
	checkIndex(t, c)
}

func TestSweepExpired(t *testing.T) {
	clk := newClock()
	log := &evictLog{}
	c := New[key, int](Config[key]{TTL: time.Hour, Shards: 2, Hash: hashKey, Now: clk.Now, OnEvict: log.record})
	const n = 1000 // several sweep batches
	for i := range n {
		var dl time.Time
		if i%2 == 0 {
			dl = clk.Now().Add(time.Minute)
		}
		c.Add(k(fmt.Sprint(i)), i, dl, fmt.Sprint("t", i))
	}
	if got := c.SweepExpired(); got != 0 {
		t.Fatalf("early sweep removed %d", got)
	}
	clk.Advance(time.Minute)
	if got := c.SweepExpired(); got != n/2 {
		t.Fatalf("sweep removed %d, want %d", got, n/2)
	}
	if c.Len() != n/2 {
		t.Fatalf("Len = %d", c.Len())
	}
	if _, refs := c.tagIndexSize(); refs != n/2 {
		t.Fatalf("index refs = %d, want %d", refs, n/2)
	}
	clk.Advance(time.Hour)
	if got := c.SweepExpired(); got != n/2 {
		t.Fatalf("second sweep removed %d", got)
	}
	if tags, refs := c.tagIndexSize(); c.Len() != 0 || tags+refs != 0 {
		t.Fatalf("Len = %d, index = %d tags %d refs", c.Len(), tags, refs)
	}
	if s := c.Stats(); s.Expirations != n {
		t.Fatalf("Expirations = %d", s.Expirations)
	}
	if got := log.counts(); got[EvictExpired] != n {
		t.Fatalf("OnEvict counts = %v", got)
	}
}

func TestOnEvictReasons(t *testing.T) {
	clk := newClock()
	var got []EvictReason
	var c *Cache[key, int]
	c = New[key, int](Config[key]{Size: 2, TTL: time.Minute, Now: clk.Now, OnEvict: func(r EvictReason) {
		// Called outside the lock: using the cache here must not deadlock.
		_ = c.Len()
		got = append(got, r)
	}})
	c.Add(k("a"), 1, time.Time{}, "t")
	c.Add(k("b"), 2, time.Time{})
	c.Add(k("c"), 3, time.Time{}) // a: capacity
	c.InvalidateTag("nothing")
	c.Remove(k("b"))                    // b: invalidated
	clk.Advance(time.Minute)            //
	c.Get(k("c"))                       // c: expired
	c.Add(k("d"), 4, time.Time{})       //
	c.Add(k("d"), 5, time.Time{})       // replacement: no callback
	c.Add(k("e"), 6, time.Time{}, "t")  //
	c.InvalidateTag("t")                // e: invalidated
	c.Purge()                           // d: invalidated
	c.Add(k("f"), 7, clk.Now().Add(-1)) // nothing stored, nothing dropped
	want := []EvictReason{EvictCapacity, EvictInvalidated, EvictExpired, EvictInvalidated, EvictInvalidated}
	if !slices.Equal(got, want) {
		t.Fatalf("OnEvict reasons = %v, want %v", got, want)
	}
	s := c.Stats()
	if s.Evictions != 1 || s.Expirations != 1 || s.Invalidations != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestNoGoroutines(t *testing.T) {
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := range 100 {
		c := New[key, int](Config[key]{Size: 10, Shards: i%4 + 1, Hash: hashKey, OnEvict: func(EvictReason) {}})
		c.Add(k("a"), 1, time.Time{}, "t")
		c.Get(k("a"))
		c.GetOrLoad(t.Context(), k("b"), func(context.Context) (int, time.Time, []string, error) {
			return 2, time.Time{}, nil, nil
		})
		c.SweepExpired()
		c.InvalidateTag("t")
		c.Purge()
	}
	runtime.GC()
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines: %d before, %d after creating 100 caches", before, after)
	}
}

func TestTagIndexNoLeak(t *testing.T) {
	clk := newClock()
	c := New[key, int](Config[key]{Size: 200, Shards: 4, Hash: hashKey, TTL: time.Minute, Now: clk.Now})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50000 {
		id := fmt.Sprint("k", rng.IntN(1000))
		switch op := rng.IntN(100); {
		case op < 60:
			tags := []string{"acc-" + id, fmt.Sprint("own-", rng.IntN(50))}
			if rng.IntN(4) == 0 {
				tags = append(tags, "role-"+fmt.Sprint(rng.IntN(5)))
			}
			var dl time.Time
			if rng.IntN(3) == 0 {
				dl = clk.Now().Add(time.Duration(rng.IntN(90)) * time.Second)
			}
			c.Add(k(id), i, dl, tags...)
		case op < 75:
			c.Get(k(id))
		case op < 85:
			c.Remove(k(id))
		case op < 92:
			c.InvalidateTag(fmt.Sprint("own-", rng.IntN(50)))
		case op < 97:
			clk.Advance(time.Duration(rng.IntN(10)) * time.Second)
		case op < 99:
			c.SweepExpired()
		default:
			if rng.IntN(20) == 0 {
				c.Purge()
			}
		}
		if i%5000 == 0 {
			checkIndex(t, c)
		}
	}
	checkIndex(t, c)
	if tags, refs := c.tagIndexSize(); refs > 3*c.Len() || tags > refs {
		t.Fatalf("index = %d tags, %d refs for %d entries", tags, refs, c.Len())
	}
	clk.Advance(time.Hour)
	c.SweepExpired()
	if tags, refs := c.tagIndexSize(); c.Len() != 0 || tags+refs != 0 {
		t.Fatalf("after everything expired: Len = %d, index = %d tags, %d refs", c.Len(), tags, refs)
	}
	// A large tag list shrinks back once most of its entries are gone.
	big := New[key, int](Config[key]{Size: 5000})
	for i := range 4000 {
		big.Add(k(fmt.Sprint(i)), i, time.Time{}, "owner")
	}
	for i := range 3990 {
		big.Remove(k(fmt.Sprint(i)))
	}
	if l := big.shards[0].tags["owner"]; len(l) != 10 || cap(l) > 256 {
		t.Fatalf("owner list len %d cap %d after removals", len(l), cap(l))
	}
	checkIndex(t, big)
}

func TestGetDoesNotAllocate(t *testing.T) {
	for _, shards := range []int{1, 16} {
		c := New[key, []byte](Config[key]{Shards: shards, Hash: hashKey})
		hit := key{id: "ak_1", d: [16]byte{1}}
		c.Add(hit, make([]byte, 200), time.Time{}, "acc", "own")
		miss := key{id: "ak_2"}
		if n := testing.AllocsPerRun(1000, func() {
			c.Get(hit)
			c.Get(miss)
		}); n != 0 {
			t.Fatalf("shards=%d: Get allocates %v times per call pair", shards, n)
		}
	}
}
