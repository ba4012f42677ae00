package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// flush imports one batch in four steps, each one pipeline (split per
// node by a cluster client): read what Redis holds of every record, write
// the indexes of the records to be written, write the records, move the
// last-use times forward. Indexes go first so that an import stopped
// between the steps and run again, which then keeps the record as
// already there, has indexed it all the same; an index entry whose
// record was never written is skipped by readers and removed by
// RepairIndexes.
func (im *importer) flush(ctx context.Context, batch []lineRecord) error {
	s := im.s
	held, err := s.heldRecords(ctx, batch)
	if err != nil {
		return err
	}
	now := s.Now()
	var writes []pendingWrite
	var uses []lastUse
	// pending maps a record's kind and ID to its write in writes, so that
	// a record that comes twice in a batch is compared with the copy the
	// batch writes as well as with Redis: the newest wins, written once.
	pending := map[string]int{}
	for i, lr := range batch {
		rec := lr.rec
		w := pendingWrite{rec: &batch[i].rec}
		id := pendingID(rec)
		j, dup := pending[id]
		switch rec.Kind {
		case recordKey:
			cur := held[i].key
			if dup {
				cur = writes[j].rec.Key
			}
			newer := cur == nil || cur.Version < rec.Key.Version
			if newer && rec.RecordExpiresAt != nil {
				w.ttl = rec.RecordExpiresAt.Sub(now)
				if w.ttl <= 0 {
					im.sum.Expired++
					continue
				}
			}
			// The last use of a key that stays live moves forward,
			// whichever copy of the record is kept.
			if rec.LastUsed != nil && (newer && rec.Key.ReplacedBy == "" || !newer && cur.ReplacedBy == "" && !cur.Pending) {
				uses = append(uses, lastUse{id: rec.Key.ID, at: *rec.LastUsed})
			}
			if !newer {
				im.sum.Skipped++
				continue
			}
		case recordOwner:
			cur := held[i].owner
			if dup {
				cur = writes[j].rec.Owner
			}
			if cur != nil && !cur.ModifiedAt.Before(rec.Owner.ModifiedAt) {
				im.sum.Skipped++
				continue
			}
		case recordRole:
			cur := held[i].role
			if dup {
				cur = writes[j].rec.Role
			}
			if cur != nil && !cur.ModifiedAt.Before(rec.Role.ModifiedAt) {
				im.sum.Skipped++
				continue
			}
		case recordPolicies:
			cur := held[i].policies
			if dup {
				cur = withPolicyFields(cur, writes[j].policy)
			}
			w.policy = newerPolicies(rec.Policies, cur)
			if len(w.policy) == 0 {
				im.sum.Skipped++
				continue
			}
			if dup {
				// Later fields of one HSET override earlier ones.
				w.policy = append(writes[j].policy, w.policy...)
			}
		}
		if dup {
			// This copy replaces the one the batch was to write, which
			// counts as skipped.
			writes[j] = w
			im.sum.Skipped++
			continue
		}
		pending[id] = len(writes)
		writes = append(writes, w)
	}
	if err := s.indexImported(ctx, writes); err != nil {
		return err
	}
	if len(writes) > 0 {
		im.wrote = true
	}
	if err := s.writeImported(ctx, writes); err != nil {
		return err
	}
	im.sum.Written += len(writes)
	n, err := s.importLastUsed(ctx, uses)
	im.sum.LastUsedWritten += n
	return err
}

// pendingID names the record rec is a copy of: its kind and ID.
func pendingID(rec exportRecord) string {
	switch rec.Kind {
	case recordKey:
		return recordKey + ":" + rec.Key.ID
	case recordOwner:
		return recordOwner + ":" + rec.Owner.ID
	case recordRole:
		return recordRole + ":" + rec.Role.ID
	}
	return rec.Kind
}

// withPolicyFields returns a copy of the policy hash cur with the fields
// (name, value pairs) set.
func withPolicyFields(cur map[string]string, fields []any) map[string]string {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i+1 < len(fields); i += 2 {
		out[fmt.Sprint(fields[i])] = fmt.Sprint(fields[i+1])
	}
	return out
}

// heldRecord is what Redis holds of one record of a batch; nil when
// absent (or unreadable, which the import then replaces).
type heldRecord struct {
	key      *Key
	owner    *Owner
	role     *Role
	policies map[string]string
}

// pendingWrite is a record of a batch that the import writes.
type pendingWrite struct {
	rec *exportRecord
	// ttl is the remaining life of a key record rotated out.
	ttl time.Duration
	// policy holds the policy hash fields to set.
	policy []any
}

// lastUse is a last-use time to move forward.
type lastUse struct {
	id string
	at time.Time
}

// heldRecords reads, in one pipeline, what Redis holds of every record
// of batch.
func (s *Store) heldRecords(ctx context.Context, batch []lineRecord) ([]heldRecord, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]redis.Cmder, len(batch))
	for i, lr := range batch {
		switch rec := lr.rec; rec.Kind {
		case recordKey:
			cmds[i] = pipe.Get(ctx, s.keyKey(rec.Key.ID))
		case recordOwner:
			cmds[i] = pipe.Get(ctx, s.ownerKey(rec.Owner.ID))
		case recordRole:
			cmds[i] = pipe.HGet(ctx, s.rolesKey(), rec.Role.ID)
		case recordPolicies:
			cmds[i] = pipe.HGetAll(ctx, s.policyKey())
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]heldRecord, len(batch))
	for i, c := range cmds {
		if c.Err() != nil {
			continue
		}
		switch c := c.(type) {
		case *redis.MapStringStringCmd:
			out[i].policies = c.Val()
		case *redis.StringCmd:
			raw := []byte(c.Val())
			var err error
			switch batch[i].rec.Kind {
			case recordKey:
				out[i].key = new(Key)
				err = decodeKey(raw, out[i].key)
			case recordOwner:
				out[i].owner = new(Owner)
				err = json.Unmarshal(raw, out[i].owner)
			case recordRole:
				out[i].role = new(Role)
				err = json.Unmarshal(raw, out[i].role)
			}
			if err != nil {
				out[i] = heldRecord{}
			}
		}
	}
	return out, nil
}

// newerPolicies returns the fields of p to set in the policy hash held,
// cur: each policy that cur lacks or set earlier than p.
func newerPolicies(p *policyRecord, cur map[string]string) []any {
	var out []any
	add := func(days *int, setAt *time.Time, dayField, atField string) {
		if days == nil {
			return
		}
		if _, held := cur[dayField]; held {
			curAt, _ := strconv.ParseInt(cur[atField], 10, 64)
			if setAt == nil || setAt.UnixMilli() <= curAt {
				return
			}
		}
		out = append(out, dayField, *days)
		if setAt != nil {
			out = append(out, atField, setAt.UnixMilli())
		}
	}
	add(p.LifetimeDays, p.LifetimeSetAt, "lifetimeDays", "lifetimeSetAt")
	add(p.UnusedDays, p.UnusedSetAt, "unusedDays", "unusedSetAt")
	return out
}

// indexImported writes the indexes of the records to be written: owners
// in one pipeline, keys through indexKey, a few at a time.
func (s *Store) indexImported(ctx context.Context, writes []pendingWrite) error {
	pipe := s.rdb.Pipeline()
	var keys []*Key
	for _, w := range writes {
		switch w.rec.Kind {
		case recordOwner:
			pipe.ZAdd(ctx, s.ownersIndex(w.rec.Owner.Kind), redis.Z{Member: w.rec.Owner.ID})
		case recordKey:
			if w.rec.Key.ReplacedBy == "" {
				keys = append(keys, w.rec.Key)
			}
		}
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return forEachLimited(ctx, keys, importIndexWorkers, s.indexKey)
}

// forEachLimited calls fn on every item, at most n at a time, and returns
// the first error.
func forEachLimited[T any](ctx context.Context, items []T, n int, fn func(context.Context, T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, n)
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// writeImported writes the records of a batch in one pipeline.
func (s *Store) writeImported(ctx context.Context, writes []pendingWrite) error {
	if len(writes) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, w := range writes {
		switch rec := w.rec; rec.Kind {
		case recordKey:
			pipe.Set(ctx, s.keyKey(rec.Key.ID), s.encode(ctx, rec.Key), w.ttl)
		case recordOwner:
			b, _ := json.Marshal(rec.Owner)
			pipe.Set(ctx, s.ownerKey(rec.Owner.ID), b, 0)
		case recordRole:
			b, _ := json.Marshal(rec.Role)
			pipe.HSet(ctx, s.rolesKey(), rec.Role.ID, b)
		case recordPolicies:
			pipe.HSet(ctx, s.policyKey(), w.policy...)
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

// importLastUsed moves the given last-use times forward through
// RecordLastUsed, for those keys whose stored time is older, and returns
// how many moved (read back, since RecordLastUsed records times only for
// the keys it indexes as live).
func (s *Store) importLastUsed(ctx context.Context, uses []lastUse) (int, error) {
	if len(uses) == 0 {
		return 0, nil
	}
	ids := make([]string, len(uses))
	for i, u := range uses {
		ids[i] = u.id
	}
	held, err := s.LastUsed(ctx, ids...)
	if err != nil {
		return 0, err
	}
	later := make(map[string]time.Time)
	for _, u := range uses {
		if t, ok := held[u.id]; !ok || t.Before(u.at) {
			later[u.id] = u.at
		}
	}
	if len(later) == 0 {
		return 0, nil
	}
	// Every imported key gets its time, deactivated and rotated-out ones
	// too (the gateway's flush records uses of keys in the unused index
	// only; these records were just written by the import).
	ms := make(map[string]int64, len(later))
	for id, t := range later {
		ms[id] = t.UnixMilli()
	}
	if err := s.recordShards(ctx, ms, false); err != nil {
		return 0, err
	}
	now, err := s.LastUsed(ctx, slices.Collect(maps.Keys(later))...)
	if err != nil {
		return 0, err
	}
	moved := 0
	for id, t := range later {
		if got, ok := now[id]; ok && !got.Before(t) {
			moved++
		}
	}
	return moved, nil
}
