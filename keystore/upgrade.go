package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Rolling upgrades from schema 1. Instances of the previous version decode
// key records with encoding/json into Key: a compact record (record.go)
// decodes there as an empty key, which their sweep would take for expired
// and write back empty. And they read and write last uses in the schema-1
// hash only. So for upgradeWindow after this version migrates a store
// that held keys, it writes records in the full layout and last uses into
// the schema-1 hash as well, and the hourly repair merges that hash into
// the shards; P:schema:compact holds the Unix millisecond from which the
// compact layout is written. A store migrated empty, or marked by
// MarkLayout, writes it at once.

// upgradeWindow is how long after a migration instances of the previous
// version may still run: the rolling upgrade must end within it (the
// schema-1 hash expires with it too).
const upgradeWindow = legacyLastUsedTTL

// compactKey holds the Unix millisecond from which records may be written
// in the compact layout.
func (s *Store) compactKey() string { return s.prefix + ":schema:compact" }

// compactRecords reports whether records may be written in the compact
// layout: once P:schema:compact has passed. Until it is known to have, it
// reads the marker at most every schemaRecheck; without a marker (a
// store of schema 1, or migrated by nobody yet) the answer is no.
func (s *Store) compactRecords(ctx context.Context) bool {
	if s.compact.Load() {
		return true
	}
	now := time.Now().UnixNano()
	last := s.compactChecked.Load()
	if now-last < int64(schemaRecheck) || !s.compactChecked.CompareAndSwap(last, now) {
		return false
	}
	at, err := s.rdb.Get(ctx, s.compactKey()).Int64()
	switch {
	case err == nil && s.now().UnixMilli() >= at:
		s.compact.Store(true)
	case err != nil && !errors.Is(err, redis.Nil):
		s.compactChecked.Store(0)
	}
	return s.compact.Load()
}

// encode returns the stored form of k: the compact layout when the store
// may write it (compactRecords), else the full one, which every version
// reads.
func (s *Store) encode(ctx context.Context, k *Key) []byte {
	if s.compactRecords(ctx) {
		return encodeKey(k)
	}
	b, _ := json.Marshal(k)
	return b
}

// inUpgrade reports whether instances of the previous version may still
// run: the store is of schema 1, or the window after its migration has
// not passed.
func (s *Store) inUpgrade(ctx context.Context) bool {
	return !s.onDueLayout(ctx) || !s.compactRecords(ctx)
}

// setCompactAfter records when records may start being written in the
// compact layout, unless a marker says so already.
func (s *Store) setCompactAfter(ctx context.Context, at time.Time) error {
	return s.rdb.SetNX(ctx, s.compactKey(), strconv.FormatInt(at.UnixMilli(), 10), 0).Err()
}

// mergeLegacyLastUsed copies the last uses of the schema-1 hash, which
// instances of the previous version write during a rolling upgrade, into
// the shards, for keys that are due to be judged unused (a later time is
// never lowered). It reads the hash in batches.
func (s *Store) mergeLegacyLastUsed(ctx context.Context) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.legacyLastUsedKey(), cursor, "", lastUsedBatch).Result()
		if err != nil {
			return err
		}
		uses := make(map[string]int64, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			if ms, err := strconv.ParseInt(kv[i+1], 10, 64); err == nil {
				uses[kv[i]] = ms
			}
		}
		if err := s.recordShards(ctx, uses, true); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
