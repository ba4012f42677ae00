package keystore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The due indexes find the keys whose expiry or unused deadline has
// passed without reading the others. They are sorted sets split into
// dueShards shards by a hash of the Access ID:
//
//   - P:due:expiry:{sNN}: member Access ID, score its IssuedAt (ms);
//   - P:due:unused:{sNN}: member Access ID, score the later of its
//     ActivatedAt and its last use (ms);
//   - P:lastused:{sNN}: hash of Access ID to last use (ms).
//
// A key's deadlines are derived from these scores and the policies
// (policy.go), so a policy change stays one write: with lifetime L and
// its change at LSA, no key is expired while LSA+L is ahead, and after
// that exactly the members scored at or below now−L are. Enabled live keys
// are members of both indexes; the sweep removes a member once it has
// dealt with it, and a disabled key leaves them at the sweep when its
// deadline passes, or at the repair.
const dueShards = 64

// dueBatch bounds the members read from one shard of an index at a time,
// and the ids handled in one pipeline (a variable for tests).
var dueBatch = 500

// shardOf returns the shard of an Access ID: FNV-1a modulo dueShards, the
// same on every instance and in every version.
func shardOf(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % dueShards)
}

// shardTag is the hash tag of a shard's keys.
func shardTag(shard int) string { return fmt.Sprintf("{s%02d}", shard) }

// liveEnabled reports whether k belongs in the due indexes: a live key
// (not pending, not rotated out) that is enabled.
func liveEnabled(k *Key) bool { return k != nil && !k.Pending && k.ReplacedBy == "" && !k.Disabled }

// unusedScore is the score of k in the unused index.
func unusedScore(k *Key, lastUsedMs int64) int64 { return max(k.ActivatedAt.UnixMilli(), lastUsedMs) }

// queueIndexDue queues in p the due entries of k: its issue in the expiry
// index and the later of its activation and last use in the unused index
// (never moving that score back).
func (s *Store) queueIndexDue(ctx context.Context, p redis.Pipeliner, k *Key, lastUsedMs int64) {
	shard := shardOf(k.ID)
	p.ZAdd(ctx, s.dueExpiryKey(shard), redis.Z{Member: k.ID, Score: float64(k.IssuedAt.UnixMilli())})
	p.ZAddGT(ctx, s.dueUnusedKey(shard), redis.Z{Member: k.ID, Score: float64(unusedScore(k, lastUsedMs))})
}

// indexDue adds k to the due indexes, if it is live and enabled.
func (s *Store) indexDue(ctx context.Context, k *Key) error {
	if !liveEnabled(k) {
		return nil
	}
	used, err := s.lastUsedMs(ctx, []string{k.ID}, false)
	if err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	s.queueIndexDue(ctx, pipe, k, used[k.ID])
	_, err = pipe.Exec(ctx)
	return err
}

// queueUnindexDue queues in p the removal of ids from both due indexes,
// one ZREM per shard and index.
func (s *Store) queueUnindexDue(ctx context.Context, p redis.Pipeliner, ids []string) {
	for shard, members := range byShard(ids) {
		m := make([]any, len(members))
		for i, id := range members {
			m[i] = id
		}
		p.ZRem(ctx, s.dueExpiryKey(shard), m...)
		p.ZRem(ctx, s.dueUnusedKey(shard), m...)
	}
}

// dropDue removes ids from the due indexes, then reads their records
// again and puts back those that are live and enabled by now: a key
// reactivated while it was judged is indexed again whichever write came
// last, since a reactivation writes its record before its index entries.
// It returns how many of ids stay out.
func (s *Store) dropDue(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	pipe := s.rdb.Pipeline()
	s.queueUnindexDue(ctx, pipe, ids)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	recs, err := s.records(ctx, ids)
	if err != nil {
		return 0, err
	}
	var back []*Key
	for _, id := range ids {
		if k := recs[id]; liveEnabled(k) {
			back = append(back, k)
		}
	}
	if err := s.reindexDue(ctx, back, nil); err != nil {
		return 0, err
	}
	return len(ids) - len(back), nil
}

// reindexDue adds keys to the due indexes in one pipeline, scoring the
// unused index with their last use in used, or, when used is nil, their
// stored last use.
func (s *Store) reindexDue(ctx context.Context, keys []*Key, used map[string]int64) error {
	if len(keys) == 0 {
		return nil
	}
	if used == nil {
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = k.ID
		}
		var err error
		if used, err = s.lastUsedMs(ctx, ids, false); err != nil {
			return err
		}
	}
	pipe := s.rdb.Pipeline()
	for _, k := range keys {
		s.queueIndexDue(ctx, pipe, k, used[k.ID])
	}
	_, err := pipe.Exec(ctx)
	return err
}

// records reads the records of ids in one pipeline, whatever their state;
// ids without a readable record are absent from the result.
func (s *Store) records(ctx context.Context, ids []string) (map[string]*Key, error) {
	out := make(map[string]*Key, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, s.keyKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue
		}
		var k Key
		if decodeKey(b, &k) == nil && k.ID == ids[i] {
			out[ids[i]] = &k
		}
	}
	return out, nil
}

// byShard groups ids by shard.
func byShard(ids []string) map[int][]string {
	out := make(map[int][]string)
	for _, id := range ids {
		sh := shardOf(id)
		out[sh] = append(out[sh], id)
	}
	return out
}

// lastUsedMs reads the stored last uses of ids, in milliseconds, with one
// HMGET per shard in one pipeline; with legacy, the schema-1 hash too,
// keeping the later time.
func (s *Store) lastUsedMs(ctx context.Context, ids []string, legacy bool) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	type get struct {
		ids []string
		cmd *redis.SliceCmd
	}
	var gets []get
	for shard, members := range byShard(ids) {
		gets = append(gets, get{members, pipe.HMGet(ctx, s.lastUsedKey(shard), members...)})
	}
	if legacy {
		gets = append(gets, get{ids, pipe.HMGet(ctx, s.legacyLastUsedKey(), ids...)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for _, g := range gets {
		for i, v := range g.cmd.Val() {
			str, ok := v.(string)
			if !ok {
				continue
			}
			if ms, err := strconv.ParseInt(str, 10, 64); err == nil && ms > out[g.ids[i]] {
				out[g.ids[i]] = ms
			}
		}
	}
	return out, nil
}

// recordShard moves last uses forward in one shard: for each (id, ms)
// pair it sets the last use unless a later one is stored, and raises the
// key's score in the unused index to it. When ARGV[1] is "1" it does so
// only for members of the unused index: a key deleted, rotated out or
// dropped by the sweep gets no time back.
// KEYS: last-use hash, unused index of the shard. ARGV: mode, then pairs.
var recordShard = redis.NewScript(`
local n = 0
for i = 2, #ARGV, 2 do
	local id = ARGV[i]
	if ARGV[1] ~= '1' or redis.call('ZSCORE', KEYS[2], id) then
		local cur = tonumber(redis.call('HGET', KEYS[1], id) or '0')
		if tonumber(ARGV[i + 1]) > cur then
			redis.call('HSET', KEYS[1], id, ARGV[i + 1])
			n = n + 1
		end
		redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[i + 1], id)
	end
end
return n
`)

// recordShards writes last uses (ms by Access ID) into their shards: one
// script call per shard and dueBatch pairs, all in one pipeline. With
// membersOnly, only keys in the unused index get a time.
func (s *Store) recordShards(ctx context.Context, uses map[string]int64, membersOnly bool) error {
	if len(uses) == 0 {
		return nil
	}
	mode := "0"
	if membersOnly {
		mode = "1"
	}
	ids := make([]string, 0, len(uses))
	for id := range uses {
		ids = append(ids, id)
	}
	type call struct {
		keys []string
		args []any
		cmd  *redis.Cmd
	}
	var calls []call
	pipe := s.rdb.Pipeline()
	for shard, members := range byShard(ids) {
		keys := []string{s.lastUsedKey(shard), s.dueUnusedKey(shard)}
		for chunk := range slices.Chunk(members, dueBatch) {
			args := make([]any, 0, 1+2*len(chunk))
			args = append(args, mode)
			for _, id := range chunk {
				args = append(args, id, strconv.FormatInt(uses[id], 10))
			}
			calls = append(calls, call{keys, args, recordShard.EvalSha(ctx, pipe, keys, args...)})
		}
	}
	if _, err := pipe.Exec(ctx); err == nil {
		return nil
	}
	// Calls that failed with NOSCRIPT (the first of a Redis server) changed
	// nothing: they are sent again with the script whole.
	retry := s.rdb.Pipeline()
	var again []*redis.Cmd
	for _, c := range calls {
		switch {
		case isNoScript(c.cmd.Err()):
			again = append(again, recordShard.Eval(ctx, retry, c.keys, c.args...))
		case c.cmd.Err() != nil:
			return c.cmd.Err()
		}
	}
	if len(again) == 0 {
		return nil
	}
	_, err := retry.Exec(ctx)
	return err
}

// isNoScript reports whether err says Redis no longer holds a script
// (the first EVALSHA after a restart or SCRIPT FLUSH).
func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// msTime converts stored milliseconds to a time (zero for 0).
func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
