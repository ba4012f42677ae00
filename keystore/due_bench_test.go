package keystore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkDueLayout measures, at 1,000 and 100,000 keys, the Redis
// memory per key that the due indexes and sharded last uses take (keys
// written as the previous version did, with a last use each, then
// migrated; used_memory after, less used_memory before the last uses,
// per key) and the commands of a sweep that finds nothing due. Run it
// with -benchtime 1x.
func BenchmarkDueLayout(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				f := newFixture(b)
				f.rdb.Del(f.ctx, "ag:schema", "ag:lock:migrate")
				now := f.clock.Now()
				var ids []string
				for start := 0; start < n; start += 1000 {
					pipe := f.rdb.Pipeline()
					for range min(1000, n-start) {
						k := &Key{ID: NewAccessID(), SecretHash: HashSecret(NewAccessKey()), Label: "measured", OwnerID: testUser, OwnerKind: OwnerUser,
							CreatedAt: now, ModifiedAt: now, IssuedAt: now, ActivatedAt: now, Version: 1}
						rec, _ := json.Marshal(k)
						pipe.Set(f.ctx, f.store.keyKey(k.ID), rec, 0)
						pipe.ZAdd(f.ctx, f.store.keysIndex(), redis.Z{Member: k.ID})
						pipe.SAdd(f.ctx, f.store.ownerKeysKey(testUser), k.ID)
						ids = append(ids, k.ID)
					}
					if _, err := pipe.Exec(f.ctx); err != nil {
						b.Fatal(err)
					}
				}
				before := usedMemory(b, f)
				for start := 0; start < n; start += 1000 {
					pipe := f.rdb.Pipeline()
					for _, id := range ids[start:min(start+1000, n)] {
						pipe.HSet(f.ctx, f.store.legacyLastUsedKey(), id, strconv.FormatInt(now.UnixMilli(), 10))
					}
					if _, err := pipe.Exec(f.ctx); err != nil {
						b.Fatal(err)
					}
				}
				oneHash := usedMemory(b, f)
				var counter cmdCounter
				rdb := f.srv.Client(b)
				rdb.AddHook(&counter)
				st := New(rdb, Options{Prefix: "ag", Now: f.clock.Now})
				if err := st.Migrate(f.ctx); err != nil {
					b.Fatal(err)
				}
				f.rdb.Del(f.ctx, f.store.legacyLastUsedKey())
				after := usedMemory(b, f)
				if _, err := st.Sweep(f.ctx); err != nil { // the client dials
					b.Fatal(err)
				}
				cmds := counter.n.Load()
				if res, err := st.Sweep(f.ctx); err != nil || res != (SweepResult{}) {
					b.Fatalf("sweep = %+v, %v; want nothing due", res, err)
				}
				b.ReportMetric(float64(after-before)/float64(n), "B/key-due")
				b.ReportMetric(float64(oneHash-before)/float64(n), "B/key-onehash")
				b.ReportMetric(float64(counter.n.Load()-cmds), "cmds/empty-sweep")
			}
		})
	}
}

func usedMemory(b *testing.B, f *fixture) int64 {
	b.Helper()
	info, err := f.rdb.Info(f.ctx, "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}
