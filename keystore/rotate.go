package keystore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// rotationFinishTimeout bounds the steps of a rotation that follow the
// retirement of the old key. They run on their own context: once the old
// key is retired, the rotation completes whether or not its caller is
// still waiting.
const rotationFinishTimeout = 10 * time.Second

// RotateKey replaces key id with a new Access ID and Access Key that keep
// its label, scopes, allowlist and owner. The old pair keeps working for
// the rotation grace, then never again. It returns the new key and secret.
//
// A rotation takes three steps: the new record is written pending, the
// old one is retired (it starts its grace) and announced in one
// transaction, and the new one goes live.
// Rotating a key whose rotation stopped after the second step finishes
// that rotation, with a fresh secret for the successor, since the first
// one was never handed out; rotating a key whose successor is live is a
// *ConflictError that names the successor.
func (s *Store) RotateKey(ctx context.Context, id string, op Operator) (*Key, string, error) {
	for range maxTxRetries {
		nk, secret, err := s.rotateOnce(ctx, id, op)
		if errors.Is(err, errStale) {
			continue
		}
		return nk, secret, err
	}
	return nil, "", &ConflictError{Code: "accessKey:busy", Message: "the access key is changing too often; try again"}
}

// errStale says the key changed between the read and the transaction.
var errStale = errors.New("stale read")

func (s *Store) rotateOnce(ctx context.Context, id string, op Operator) (*Key, string, error) {
	old, err := s.rawKey(ctx, id)
	if err != nil {
		return nil, "", err
	}
	switch {
	case old.Pending:
		return nil, "", &NotFoundError{Kind: "accessKey", ID: id}
	case old.ReplacedBy != "":
		return s.resumeRotation(ctx, old, op)
	}
	now := s.Now()
	secret := NewAccessKey()
	nk := *old
	nk.ID, nk.SecretHash, nk.Pending, nk.RotatedFrom = NewAccessID(), HashSecret(secret), true, old.ID
	nk.Lineage = old.LimitID()
	nk.IssuedAt, nk.ActivatedAt, nk.ModifiedAt, nk.ModifiedBy, nk.Version = now, now, now, op.ID, 1
	if nk.DisabledReason != DisabledManual {
		nk.Disabled, nk.DisabledReason = false, ""
	}
	// 1. The new record, pending: it cannot authenticate yet.
	b := s.encode(ctx, &nk)
	if ok, err := s.rdb.SetNX(ctx, s.keyKey(nk.ID), b, 0).Result(); err != nil || !ok {
		if err == nil {
			err = &ConflictError{Code: "accessKey:id_collision", Message: "generated access ID already exists; try again"}
		}
		return nil, "", err
	}
	// 2. Atomically retire the old record, unless it changed meanwhile
	// (updated, deleted or rotated by someone else), and announce it:
	// this is the step that changes what the old key may do (its grace
	// now ends it), so it is stored only with its announcement. Should
	// Redis refuse the message, nothing is retired, the pending record
	// goes and the caller gets the error. Step 3 changes nothing that a
	// gateway holds: the successor's Access ID was never handed out.
	err = s.update(ctx, s.keyKey(id), func(tx *redis.Tx) error {
		k, err := s.txKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.Version != old.Version {
			return errStale
		}
		k.GraceUntil, k.ReplacedBy, k.ModifiedAt, k.ModifiedBy = now.Add(s.grace), nk.ID, now, op.ID
		k.Version++
		rb := s.encode(ctx, k)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keyKey(id), rb, 0)
			// Relative, so that a clock skew between this instance and
			// Redis cannot end the grace early.
			p.PExpire(ctx, s.keyKey(id), s.grace+time.Second)
			if err := s.announce(ctx, p, invalidateKeyPrefix+id); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		s.rdb.Del(context.WithoutCancel(ctx), s.keyKey(nk.ID))
		return nil, "", err
	}
	// 3. The new record goes live. The old key is retired by now, so
	// this step no longer depends on the caller.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rotationFinishTimeout)
	defer cancel()
	live, err := s.goLive(fctx, old, nk.ID, nk.SecretHash, op)
	if err != nil {
		return nil, "", err
	}
	return live, secret, nil
}

// resumeRotation handles the rotation of old, a key already rotated out:
// it finishes a rotation that stopped before its successor went live,
// giving the successor a fresh secret (the first one never left the
// store), and refuses when the successor is live.
func (s *Store) resumeRotation(ctx context.Context, old *Key, op Operator) (*Key, string, error) {
	next, err := s.rawKey(ctx, old.ReplacedBy)
	if errors.Is(err, ErrNotFound) {
		return nil, "", &NotFoundError{Kind: "accessKey", ID: old.ID}
	}
	if err != nil {
		return nil, "", err
	}
	if !next.Pending || next.RotatedFrom != old.ID {
		return nil, "", rotatedConflict(old)
	}
	secret := NewAccessKey()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rotationFinishTimeout)
	defer cancel()
	live, err := s.goLive(fctx, old, next.ID, HashSecret(secret), op)
	if err != nil {
		return nil, "", err
	}
	return live, secret, nil
}

// goLive makes the pending successor newID of old live with the given
// secret hash, then indexes it and records the rotation. It refuses a
// successor that is no longer pending, so that two callers finishing the
// same rotation never both hand out a secret.
func (s *Store) goLive(ctx context.Context, old *Key, newID, secretHash string, op Operator) (*Key, error) {
	var live Key
	err := s.update(ctx, s.keyKey(newID), func(tx *redis.Tx) error {
		b, err := tx.Get(ctx, s.keyKey(newID)).Bytes()
		if errors.Is(err, redis.Nil) {
			return &NotFoundError{Kind: "accessKey", ID: old.ID}
		}
		if err != nil {
			return err
		}
		var k Key
		if err := decodeKey(b, &k); err != nil {
			return err
		}
		if !k.Pending || k.RotatedFrom != old.ID {
			return rotatedConflict(old)
		}
		k.Pending, k.SecretHash = false, secretHash
		nb := s.encode(ctx, &k)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keyKey(newID), nb, 0)
			return nil
		})
		live = k
		return err
	})
	if err != nil {
		return nil, err
	}
	_ = s.unindexKey(ctx, old)
	_ = s.indexKey(ctx, &live)
	s.emit(ctx, Event{EventName: EventKeyRotated, Operator: op, AccessKey: keyRef(&live),
		From: map[string]string{"accessId": old.ID}, To: map[string]string{"accessId": live.ID}})
	return &live, nil
}

// rotatedConflict refuses to rotate or change old, a key rotated out.
func rotatedConflict(old *Key) error {
	return &ConflictError{Code: "accessKey:rotated", Message: "the access key " + old.ID + " was rotated: its successor is " +
		old.ReplacedBy + ". Rotate the successor to get a new secret; during its grace the old key can only be deactivated or deleted"}
}
