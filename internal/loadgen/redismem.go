package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

// RedisMemory is what Redis holds per access key.
type RedisMemory struct {
	// Keys is the number of keys created.
	Keys int
	// Seconds is how long creating them took.
	Seconds float64
	// UsedPerKey is the growth of INFO used_memory per key: everything
	// the keys cost, indexes and allocator overhead included.
	UsedPerKey float64
	// RecordUsage is the mean MEMORY USAGE of a key's record, over the
	// sampled keys.
	RecordUsage float64
	// IndexPerKey is the MEMORY USAGE of the <prefix>:keys index, the
	// owners' key sets and the last-use hash, per key.
	IndexPerKey float64
	// RecordLen is the mean length of a record's JSON, the payload.
	RecordLen float64
	// Sampled is the number of records sampled.
	Sampled int
}

// MeasureRedisMemory creates n realistic keys (owned by 100 users, each
// with a last use recorded) in the empty database of rdb and measures the
// memory they take.
func MeasureRedisMemory(ctx context.Context, rdb *redis.Client, prefix string, n int) (RedisMemory, error) {
	store := keystore.New(rdb, keystore.Options{Prefix: prefix})
	owners, err := SeedOwners(ctx, store, 100)
	if err != nil {
		return RedisMemory{}, err
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return RedisMemory{}, err
	}
	start := time.Now()
	sample, err := SeedKeys(ctx, rdb, SeedOptions{Prefix: prefix, Owners: owners, N: n, Sample: max(1, n/2000), LastUsed: true})
	if err != nil {
		return RedisMemory{}, err
	}
	m := RedisMemory{Keys: n, Seconds: time.Since(start).Seconds(), Sampled: len(sample)}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return RedisMemory{}, err
	}
	m.UsedPerKey = float64(after-before) / float64(n)

	// A sampled key must verify, which proves the records are laid out as
	// the gateway reads them.
	if _, err := store.Verify(ctx, sample[0].ID, sample[0].Secret, keystore.VerifyOptions{}); err != nil {
		return RedisMemory{}, fmt.Errorf("verifying a seeded key: %w", err)
	}
	var usage, length int64
	for _, c := range sample {
		u, err := rdb.MemoryUsage(ctx, RecordKey(prefix, c.ID)).Result()
		if err != nil {
			return RedisMemory{}, err
		}
		l, err := rdb.StrLen(ctx, RecordKey(prefix, c.ID)).Result()
		if err != nil {
			return RedisMemory{}, err
		}
		usage += u
		length += l
	}
	m.RecordUsage = float64(usage) / float64(len(sample))
	m.RecordLen = float64(length) / float64(len(sample))

	index := []string{prefix + ":keys"}
	for _, o := range owners {
		index = append(index, prefix+":owner:{"+o+"}:keys")
	}
	// The due indexes and last uses, in shards.
	for _, pattern := range []string{prefix + ":due:*", prefix + ":lastused:*"} {
		names, err := scanNames(ctx, rdb, pattern)
		if err != nil {
			return RedisMemory{}, err
		}
		index = append(index, names...)
	}
	var idx int64
	for _, k := range index {
		u, err := rdb.MemoryUsage(ctx, k, 1000).Result()
		if err != nil {
			return RedisMemory{}, fmt.Errorf("MEMORY USAGE %s: %w", k, err)
		}
		idx += u
	}
	m.IndexPerKey = float64(idx) / float64(n)
	return m, nil
}

// scanNames returns the names of the keys matching pattern.
func scanNames(ctx context.Context, rdb *redis.Client, pattern string) ([]string, error) {
	var out []string
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	return out, iter.Err()
}

// usedMemory returns INFO memory's used_memory.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}
