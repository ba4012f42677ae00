package authcache

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// benchKeys returns n distinct keys shaped like the gateway's.
func benchKeys(n int) []key {
	keys := make([]key, n)
	for i := range keys {
		keys[i].id = fmt.Sprintf("ak_%012d", i)
		binary.LittleEndian.PutUint64(keys[i].d[:], uint64(i)*0x9E3779B97F4A7C15)
	}
	return keys
}

func BenchmarkGetHit(b *testing.B) {
	keys := benchKeys(1024)
	c := New[key, []byte](Config[key]{Size: len(keys)})
	val := make([]byte, 200)
	for _, k := range keys {
		c.Add(k, val, time.Time{}, k.id, "owner")
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.Get(keys[i&1023]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	// A coarse clock, as an owner might keep with its own ticker, takes
	// time.Now out of the measurement; it is slow on some virtual machines.
	var coarse atomic.Int64
	coarse.Store(time.Now().UnixNano())
	coarseNow := func() time.Time { return time.Unix(0, coarse.Load()) }
	for _, bc := range []struct {
		name   string
		shards int
		now    func() time.Time
	}{
		{"shards=1", 1, nil},
		{"shards=16", 16, nil},
		{"shards=1/coarseclock", 1, coarseNow},
		{"shards=16/coarseclock", 16, coarseNow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			keys := benchKeys(1 << 14)
			// Shards evict on their own, so leave room for uneven spread.
			c := New[key, []byte](Config[key]{Size: 2 * len(keys), Shards: bc.shards, Hash: hashKey, Now: bc.now})
			val := make([]byte, 200)
			for _, k := range keys {
				c.Add(k, val, time.Time{}, k.id, "owner")
			}
			var worker atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				// Start each worker elsewhere so they do not walk the
				// shards in step.
				i := int(worker.Add(1) * 7919)
				for pb.Next() {
					if _, ok := c.Get(keys[i&(1<<14-1)]); !ok {
						b.Fatal("miss")
					}
					i += 7
				}
			})
		})
	}
}

func BenchmarkAddEvict(b *testing.B) {
	keys := benchKeys(1 << 16)
	owners := make([]string, 64)
	for i := range owners {
		owners[i] = fmt.Sprint("owner-", i)
	}
	c := New[key, []byte](Config[key]{Size: 1000})
	val := make([]byte, 200)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := keys[i&(1<<16-1)]
		c.Add(k, val, time.Time{}, k.id, owners[i&63])
	}
}

func BenchmarkMemoryPerEntry(b *testing.B) {
	const n = 100_000
	keys := benchKeys(n)
	owners := make([]string, n/10)
	for i := range owners {
		owners[i] = fmt.Sprint("owner-", i)
	}
	var perEntry float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := New[key, []byte](Config[key]{Size: 2 * n, Shards: 16, Hash: hashKey})
		for i, k := range keys {
			v := make([]byte, 200) // the value's own memory counts too
			c.Add(k, v, time.Time{}, k.id, owners[i%len(owners)])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != n {
			b.Fatalf("Len = %d", c.Len())
		}
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perEntry, "bytes/entry")
}
