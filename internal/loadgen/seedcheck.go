package loadgen

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

// LayoutDiff compares what one key costs in Redis when the store creates
// it and when SeedKeys writes it. Streams (capped logs) and keys with a
// time to live (transient markers) are left out of both.
type LayoutDiff struct {
	// StoreOnly and SeedOnly are the Redis keys (named as patterns, such
	// as "<p>:key:{<id>} string") that one writes and the other does not.
	StoreOnly, SeedOnly []string
	// StoreBytes and SeedBytes are the MEMORY USAGE of the Redis keys
	// each wrote.
	StoreBytes, SeedBytes int64
}

// CheckSeedLayout creates one key through keystore.Store.CreateKey (and
// records a use of it through the store) and one through SeedKeys (with a
// last use), each under a prefix of its own in the empty
// database of scratch, and compares the Redis keys they wrote, so that a
// scale run shows when SeedKeys no longer writes what the store writes.
// It empties the database before and after.
func CheckSeedLayout(ctx context.Context, scratch *redis.Client) (LayoutDiff, error) {
	if err := scratch.FlushDB(ctx).Err(); err != nil {
		return LayoutDiff{}, err
	}
	defer scratch.FlushDB(context.Background())
	var d LayoutDiff
	storeKeys, storeBytes, err := layoutOf(ctx, scratch, "ckstore", func(store *keystore.Store, owner string) (string, error) {
		// A gateway's store is on the current layout before it creates
		// keys, as a seeded one is.
		if err := store.Migrate(ctx); err != nil {
			return "", err
		}
		k, _, err := store.CreateKey(ctx, keystore.KeySpec{Label: "ingest pipeline 000000", OwnerID: owner,
			Scopes: []string{"runLogSearch", "viewCollectors"}, CORSHeaders: []string{"https://app.example.com"}}, keystore.Operator{ID: "loadgen"})
		if err != nil {
			return "", err
		}
		// A key in service has been used; the seeded keys carry a last use.
		return k.ID, store.RecordLastUsed(ctx, map[string]time.Time{k.ID: time.Now()})
	})
	if err != nil {
		return d, fmt.Errorf("creating a key through the store: %w", err)
	}
	seedKeys, seedBytes, err := layoutOf(ctx, scratch, "ckseed", func(store *keystore.Store, owner string) (string, error) {
		cs, err := SeedKeys(ctx, scratch, SeedOptions{Prefix: "ckseed", Owners: []string{owner}, N: 1, Keep: true, LastUsed: true})
		if err != nil {
			return "", err
		}
		return cs[0].ID, nil
	})
	if err != nil {
		return d, fmt.Errorf("seeding a key: %w", err)
	}
	d.StoreBytes, d.SeedBytes = storeBytes, seedBytes
	for _, k := range storeKeys {
		if !slices.Contains(seedKeys, k) {
			d.StoreOnly = append(d.StoreOnly, k)
		}
	}
	for _, k := range seedKeys {
		if !slices.Contains(storeKeys, k) {
			d.SeedOnly = append(d.SeedOnly, k)
		}
	}
	return d, nil
}

// layoutOf runs create for one key under prefix, after one owner was
// seeded, and returns the Redis keys it created or changed, as patterns,
// and their MEMORY USAGE; streams and keys with a TTL are left out.
func layoutOf(ctx context.Context, rdb *redis.Client, prefix string, create func(*keystore.Store, string) (string, error)) ([]string, int64, error) {
	store := keystore.New(rdb, keystore.Options{Prefix: prefix})
	owners, err := SeedOwners(ctx, store, 1)
	if err != nil {
		return nil, 0, err
	}
	before, err := dumpPrefix(ctx, rdb, prefix)
	if err != nil {
		return nil, 0, err
	}
	id, err := create(store, owners[0])
	if err != nil {
		return nil, 0, err
	}
	after, err := dumpPrefix(ctx, rdb, prefix)
	if err != nil {
		return nil, 0, err
	}
	var out []string
	var bytes int64
	for name, v := range after {
		if before[name] == v {
			continue // untouched
		}
		t, _, _ := strings.Cut(v, "\x00")
		if t == "stream" {
			continue // a capped log, not a cost per key
		}
		if ttl, err := rdb.PTTL(ctx, name).Result(); err != nil {
			return nil, 0, err
		} else if ttl > 0 {
			continue // transient, such as an audit event's marker
		}
		pattern := strings.NewReplacer(prefix, "<p>", id, "<id>", owners[0], "<owner>").Replace(name)
		pattern = shardTag.ReplaceAllString(pattern, "{s<shard>}")
		out = append(out, pattern+" "+t)
		u, err := rdb.MemoryUsage(ctx, name).Result()
		if err != nil {
			return nil, 0, err
		}
		bytes += u
	}
	slices.Sort(out)
	return out, bytes, nil
}

// shardTag matches the hash tag of a shard of the due indexes and last
// uses, which depends on the key's ID.
var shardTag = regexp.MustCompile(`\{s[0-9]+\}`)

// dumpPrefix returns every Redis key under prefix with its type and its
// serialized value, "type\x00dump".
func dumpPrefix(ctx context.Context, rdb *redis.Client, prefix string) (map[string]string, error) {
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		name := iter.Val()
		t, err := rdb.Type(ctx, name).Result()
		if err != nil {
			return nil, err
		}
		out[name] = t + "\x00" + dumpValue(ctx, rdb, name)
	}
	return out, iter.Err()
}

// dumpValue returns the DUMP of a key: equal values dump equally.
func dumpValue(ctx context.Context, rdb *redis.Client, name string) string {
	v, _ := rdb.Dump(ctx, name).Result()
	return v
}
