package keystore

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueSeed queues in p everything the store writes for a new active key
// k: its record, the keys index, its owner's key set, its due-index
// entries and, when lastUsed is set, its last use. It is for bulk loads
// (load generators, benchmarks) that write many keys in one pipeline;
// the store's own writes go through CreateKey. Call MarkLayout once
// before the first gateway starts on a store filled this way.
func (s *Store) QueueSeed(ctx context.Context, p redis.Pipeliner, k *Key, lastUsed time.Time) {
	p.Set(ctx, s.keyKey(k.ID), encodeKey(k), 0)
	p.ZAdd(ctx, s.keysIndex(), redis.Z{Member: k.ID})
	p.SAdd(ctx, s.ownerKeysKey(k.OwnerID), k.ID)
	var ms int64
	if !lastUsed.IsZero() {
		ms = lastUsed.UnixMilli()
		p.HSet(ctx, s.lastUsedKey(shardOf(k.ID)), k.ID, strconv.FormatInt(ms, 10))
	}
	if liveEnabled(k) {
		s.queueIndexDue(ctx, p, k, ms)
	}
}

// MarkLayout records that the store holds the current layout (due
// indexes, sharded last uses), so that no migration runs on it. Only for
// a store written entirely by this version, such as one filled with
// QueueSeed.
func (s *Store) MarkLayout(ctx context.Context) error {
	if err := s.setCompactAfter(ctx, time.Time{}); err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.schemaKey(), schemaDue, 0).Err()
}
