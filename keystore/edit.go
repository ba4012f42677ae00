package keystore

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/redis/go-redis/v9"
)

// KeyEdit changes the settings of a key: its label, scopes and
// allowlist. Nil fields stay as they are.
type KeyEdit struct {
	Label       *string
	Scopes      *[]string
	CORSHeaders *[]string
}

// EditKey applies u to the live key id in one transaction: every field is
// checked first, and either all of u is stored or nothing. A change is
// announced and written to the audit stream as one AccessKeyUpdated
// event. A key rotated out cannot be edited (*ConflictError).
func (s *Store) EditKey(ctx context.Context, id string, u KeyEdit, op Operator) (*Key, error) {
	v := &ValidationError{}
	var scopes, cors []string
	if u.Label != nil {
		validateLabel(v, *u.Label)
	}
	if u.Scopes != nil {
		scopes = validateScopes(v, *u.Scopes)
	}
	if u.CORSHeaders != nil {
		cors = validateCORS(v, *u.CORSHeaders)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var before, after Key
	err := s.update(ctx, s.keyKey(id), func(tx *redis.Tx) error {
		k, err := s.txChangeableKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.ReplacedBy != "" {
			return rotatedConflict(k)
		}
		before = *k
		if u.Label != nil {
			k.Label = *u.Label
		}
		if u.Scopes != nil {
			k.Scopes = scopes
		}
		if u.CORSHeaders != nil {
			k.CORSHeaders = cors
		}
		if editEqual(&before, k) {
			after = *k
			return nil
		}
		k.ModifiedAt, k.ModifiedBy = s.Now(), op.ID
		k.Version++
		b, _ := json.Marshal(k)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keyKey(id), b, redis.KeepTTL)
			s.announceKey(ctx, p, k)
			return nil
		})
		after = *k
		return err
	})
	if err != nil {
		return nil, err
	}
	if before.Version != after.Version {
		s.emit(ctx, Event{EventName: EventKeyUpdated, Operator: op, AccessKey: keyRef(&after), From: changeView(&before), To: changeView(&after)})
	}
	return &after, nil
}

func editEqual(a, b *Key) bool {
	return a.Label == b.Label && slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.CORSHeaders, b.CORSHeaders)
}
