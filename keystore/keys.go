package keystore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/limits"
)

// Limits on key input.
const (
	MaxLabelLen = 128
	MaxScopes   = 100
)

// KeySpec is what a new key is made of.
type KeySpec struct {
	Label       string
	OwnerID     string
	Scopes      []string
	CORSHeaders []string
	// Limits are the key's overrides of the default limits.
	Limits KeyLimits
}

// KeyLimits are the limit overrides a key may carry; nil fields mean the
// defaults.
type KeyLimits struct {
	RateLimit        *limits.Rate
	ConcurrencyLimit *int
	Quota            *limits.Quota
}

// Setting changes an optional setting: a nil *Setting leaves the setting
// as it is; a Setting whose Value is nil clears it, so that the default
// applies again.
type Setting[T any] struct{ Value *T }

// Set returns a Setting that sets v.
func Set[T any](v T) *Setting[T] { return &Setting[T]{Value: &v} }

// Clear returns a Setting that clears the setting.
func Clear[T any]() *Setting[T] { return &Setting[T]{} }

func validateLimits(v *ValidationError, l KeyLimits) {
	if l.RateLimit != nil {
		if err := l.RateLimit.Validate(); err != nil {
			v.add("rateLimit", "accessKey:invalid_rate_limit", "rateLimit: "+err.Error())
		}
	}
	if l.ConcurrencyLimit != nil {
		if err := limits.ValidateConcurrency(*l.ConcurrencyLimit); err != nil {
			v.add("concurrencyLimit", "accessKey:invalid_concurrency_limit", err.Error())
		}
	}
	if l.Quota != nil {
		if err := l.Quota.Validate(); err != nil {
			v.add("quota", "accessKey:invalid_quota", "quota: "+err.Error())
		}
	}
}

func settingValue[T any](s *Setting[T], cur *T) *T {
	if s == nil {
		return cur
	}
	if s.Value == nil {
		return nil
	}
	v := *s.Value
	return &v
}

func ptrEqual[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func limitsEqual(a, b *Key) bool {
	return ptrEqual(a.RateLimit, b.RateLimit) && ptrEqual(a.ConcurrencyLimit, b.ConcurrencyLimit) && ptrEqual(a.Quota, b.Quota)
}

// KeyUpdate changes a key; nil fields stay as they are.
type KeyUpdate struct {
	Disabled    *bool
	CORSHeaders *[]string
	Scopes      *[]string
	// Label renames the key (the command line's update verb; the
	// management API's PUT takes no label, as Sumo Logic's does not).
	Label *string
	// RateLimit, ConcurrencyLimit and Quota change the key's overrides of
	// the default limits.
	RateLimit        *Setting[limits.Rate]
	ConcurrencyLimit *Setting[int]
	Quota            *Setting[limits.Quota]
}

func validateLabel(v *ValidationError, label string) {
	switch {
	case strings.TrimSpace(label) == "":
		v.add("label", "accessKey:label_required", "label is required")
	case utf8.RuneCountInString(label) > MaxLabelLen:
		v.add("label", "accessKey:label_too_long", "label must be at most "+strconv.Itoa(MaxLabelLen)+" characters")
	case !plainText(label):
		v.add("label", "accessKey:label_invalid", "label must be printable text, without control or bidirectional formatting characters")
	}
}

func validateScopes(v *ValidationError, scopes []string) []string {
	if len(scopes) > MaxScopes {
		v.add("scopes", "accessKey:too_many_scopes", "at most "+strconv.Itoa(MaxScopes)+" scopes are allowed")
		return nil
	}
	for _, sc := range scopes {
		if !ValidID(sc) {
			v.add("scopes", "accessKey:invalid_scope", "invalid scope "+strconvQuote(sc))
		}
	}
	return uniqueInOrder(scopes)
}

// uniqueInOrder returns a copy of in without duplicates, in the order of
// their first occurrence.
func uniqueInOrder(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func validateCORS(v *ValidationError, entries []string) []string {
	if len(entries) > MaxAllowlist {
		v.add("corsHeaders", "accessKey:too_many_cors_headers", "at most "+strconv.Itoa(MaxAllowlist)+" allowlisted origins are allowed")
		return nil
	}
	out, err := NormalizeAllowlist(entries)
	if err != nil {
		v.add("corsHeaders", "accessKey:invalid_cors_header", err.Error())
	}
	return out
}

// CreateKey makes a key for an existing, active owner and returns it with
// its secret, which is never stored and cannot be read again.
func (s *Store) CreateKey(ctx context.Context, spec KeySpec, op Operator) (*Key, string, error) {
	v := &ValidationError{}
	validateLabel(v, spec.Label)
	scopes := validateScopes(v, spec.Scopes)
	cors := validateCORS(v, spec.CORSHeaders)
	validateLimits(v, spec.Limits)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	owner, err := s.Owner(ctx, spec.OwnerID)
	if err != nil {
		return nil, "", err
	}
	if !owner.IsActive {
		return nil, "", &ConflictError{Code: "accessKey:owner_inactive", Message: "the owner " + strconvQuote(owner.ID) + " is deactivated"}
	}
	now := s.Now()
	secret := NewAccessKey()
	k := &Key{
		ID: NewAccessID(), SecretHash: HashSecret(secret), Label: spec.Label,
		OwnerID: owner.ID, OwnerKind: owner.Kind, Scopes: scopes, CORSHeaders: cors,
		CreatedAt: now, CreatedBy: op.ID, ModifiedAt: now, ModifiedBy: op.ID,
		IssuedAt: now, ActivatedAt: now, Version: 1,
		RateLimit: spec.Limits.RateLimit, ConcurrencyLimit: spec.Limits.ConcurrencyLimit, Quota: spec.Limits.Quota,
	}
	k.Lineage = k.ID
	if err := s.insertKey(ctx, k); err != nil {
		return nil, "", err
	}
	s.emit(ctx, Event{EventName: EventKeyCreated, Operator: op, AccessKey: keyRef(k), To: changeView(k)})
	return k, secret, nil
}

// insertKey writes a new record (never overwriting one) and its indexes.
func (s *Store) insertKey(ctx context.Context, k *Key) error {
	b := s.encode(ctx, k)
	ok, err := s.rdb.SetNX(ctx, s.keyKey(k.ID), b, 0).Result()
	if err != nil {
		return err
	}
	if !ok {
		return &ConflictError{Code: "accessKey:id_collision", Message: "generated access ID already exists; try again"}
	}
	return s.indexKey(ctx, k)
}

// indexKey adds k to the cross-slot indexes: the listing, its owner's
// set and, when it is enabled, the due indexes of its shard. They are
// written after the record; a failure leaves a record that the repair
// indexes.
func (s *Store) indexKey(ctx context.Context, k *Key) error {
	pipe := s.rdb.Pipeline()
	pipe.ZAdd(ctx, s.keysIndex(), redis.Z{Member: k.ID})
	pipe.SAdd(ctx, s.ownerKeysKey(k.OwnerID), k.ID)
	if liveEnabled(k) {
		s.queueIndexDue(ctx, pipe, k, 0)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// unindexKey removes k from every index and its last use.
func (s *Store) unindexKey(ctx context.Context, k *Key) error {
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, s.keysIndex(), k.ID)
	pipe.SRem(ctx, s.ownerKeysKey(k.OwnerID), k.ID)
	s.queueUnindexDue(ctx, pipe, []string{k.ID})
	pipe.HDel(ctx, s.lastUsedKey(shardOf(k.ID)), k.ID)
	if s.inUpgrade(ctx) {
		pipe.HDel(ctx, s.legacyLastUsedKey(), k.ID)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Key reads one key record. Keys that were rotated out (in their grace
// period) or are pending are reported as not found.
func (s *Store) Key(ctx context.Context, id string) (*Key, error) {
	k, err := s.rawKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Pending || k.ReplacedBy != "" {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	return k, nil
}

// KeyOrRetired reads a live key or a key rotated out whose record is
// still stored (during its grace). Pending keys are reported as not
// found. It serves callers that must see whose key an Access ID is before
// changing it: in its grace an old key can still be deactivated or
// deleted.
func (s *Store) KeyOrRetired(ctx context.Context, id string) (*Key, error) {
	k, err := s.rawKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Pending {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	return k, nil
}

func (s *Store) rawKey(ctx context.Context, id string) (*Key, error) {
	if !ValidAccessID(id) {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	var k Key
	found, err := s.getJSON(ctx, s.keyKey(id), &k)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	return &k, nil
}

// UpdateKey applies u to key id atomically: concurrent updates of one key
// are serialised, none is lost. It returns the key as stored.
//
// A key rotated out can, during its grace, only be deactivated, which
// ends its grace at once; any other change of it is a *ConflictError.
func (s *Store) UpdateKey(ctx context.Context, id string, u KeyUpdate, op Operator) (*Key, error) {
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
	var lim KeyLimits
	if u.RateLimit != nil {
		lim.RateLimit = u.RateLimit.Value
	}
	if u.ConcurrencyLimit != nil {
		lim.ConcurrencyLimit = u.ConcurrencyLimit.Value
	}
	if u.Quota != nil {
		lim.Quota = u.Quota.Value
	}
	validateLimits(v, lim)
	if err := v.err(); err != nil {
		return nil, err
	}
	pol, err := s.Policies(ctx)
	if err != nil {
		return nil, err
	}
	var before, after Key
	err = s.update(ctx, s.keyKey(id), func(tx *redis.Tx) error {
		k, err := s.txChangeableKey(ctx, tx, id)
		if err != nil {
			return err
		}
		before = *k
		now := s.Now()
		if k.ReplacedBy != "" {
			if u.Disabled == nil || !*u.Disabled || u.Scopes != nil && !slices.Equal(scopes, k.Scopes) ||
				u.CORSHeaders != nil && !slices.Equal(cors, k.CORSHeaders) || u.Label != nil && *u.Label != k.Label ||
				!limitsEqual(k, limitsApplied(k, u)) {
				return rotatedConflict(k)
			}
			// The other instances may run clocks behind this one:
			// Disabled ends the grace for them too.
			k.GraceUntil = now
		}
		if u.Disabled != nil && !*u.Disabled {
			if exp := pol.ExpiresAt(k); k.DisabledReason == DisabledExpired || !exp.IsZero() && !now.Before(exp) {
				return &ConflictError{Code: "accessKey:expired", Message: "the access key has expired; rotate it to get a working key"}
			}
		}
		if u.Disabled != nil && *u.Disabled != k.Disabled {
			if !*u.Disabled {
				k.Disabled, k.DisabledReason, k.ActivatedAt = false, "", now
			} else {
				k.Disabled, k.DisabledReason = true, DisabledManual
			}
		}
		if u.Label != nil {
			k.Label = *u.Label
		}
		if u.Scopes != nil {
			k.Scopes = scopes
		}
		if u.CORSHeaders != nil {
			k.CORSHeaders = cors
		}
		applied := limitsApplied(k, u)
		k.RateLimit, k.ConcurrencyLimit, k.Quota = applied.RateLimit, applied.ConcurrencyLimit, applied.Quota
		if keyChangeEqual(&before, k) {
			after = *k
			return nil
		}
		k.ModifiedAt, k.ModifiedBy = now, op.ID
		k.Version++
		b := s.encode(ctx, k)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keyKey(id), b, redis.KeepTTL)
			if err := s.announceKey(ctx, p, k); err != nil {
				return err
			}
			return nil
		})
		after = *k
		return err
	})
	if err != nil {
		return nil, err
	}
	if before.Version == after.Version {
		return &after, nil
	}
	if before.Disabled && !after.Disabled {
		// Reactivated: the unused clock restarts, and the sweep may have
		// dropped the key from the due indexes while it was disabled.
		_ = s.indexDue(ctx, &after)
	}
	ref := keyRef(&after)
	if before.Disabled != after.Disabled {
		name := EventKeyActivated
		if after.Disabled {
			name = EventKeyDeactivated
		}
		s.emit(ctx, Event{EventName: name, Operator: op, AccessKey: ref, From: map[string]bool{"enabled": !before.Disabled}, To: map[string]bool{"enabled": !after.Disabled}})
	}
	if before.Label != after.Label || !slices.Equal(before.Scopes, after.Scopes) || !slices.Equal(before.CORSHeaders, after.CORSHeaders) || !limitsEqual(&before, &after) {
		s.emit(ctx, Event{EventName: EventKeyUpdated, Operator: op, AccessKey: ref, From: changeView(&before), To: changeView(&after)})
	}
	return &after, nil
}

func keyChangeEqual(a, b *Key) bool {
	return a.Disabled == b.Disabled && a.Label == b.Label && slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.CORSHeaders, b.CORSHeaders) && limitsEqual(a, b)
}

// limitsApplied returns k with the limit changes of u applied (k itself
// is not changed).
func limitsApplied(k *Key, u KeyUpdate) *Key {
	out := *k
	out.RateLimit = settingValue(u.RateLimit, k.RateLimit)
	out.ConcurrencyLimit = settingValue(u.ConcurrencyLimit, k.ConcurrencyLimit)
	out.Quota = settingValue(u.Quota, k.Quota)
	return &out
}

// txKey reads a live key inside a transaction.
func (s *Store) txKey(ctx context.Context, tx *redis.Tx, id string) (*Key, error) {
	k, err := s.txRecord(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if k.Pending || k.ReplacedBy != "" {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	return k, nil
}

// txRecord reads a key record inside a transaction, whatever its state.
func (s *Store) txRecord(ctx context.Context, tx *redis.Tx, id string) (*Key, error) {
	if !ValidAccessID(id) {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	b, err := tx.Get(ctx, s.keyKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	if err != nil {
		return nil, err
	}
	var k Key
	if err := decodeKey(b, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// txChangeableKey reads, inside a transaction, a key that can still be
// changed: a live key, or a key rotated out that is in its grace (not
// deactivated, grace not over), which can only be cut off.
func (s *Store) txChangeableKey(ctx context.Context, tx *redis.Tx, id string) (*Key, error) {
	k, err := s.txRecord(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if k.Pending || k.ReplacedBy != "" && (k.Disabled || !s.now().Before(k.GraceUntil)) {
		return nil, &NotFoundError{Kind: "accessKey", ID: id}
	}
	return k, nil
}

// DeleteKey removes a key for good. A key rotated out can still be
// deleted during its grace, which ends the grace at once.
func (s *Store) DeleteKey(ctx context.Context, id string, op Operator) error {
	var gone Key
	err := s.update(ctx, s.keyKey(id), func(tx *redis.Tx) error {
		k, err := s.txChangeableKey(ctx, tx, id)
		if err != nil {
			return err
		}
		gone = *k
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, s.keyKey(id))
			if err := s.announceKey(ctx, p, k); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	_ = s.unindexKey(ctx, &gone)
	s.emit(ctx, Event{EventName: EventKeyDeleted, Operator: op, AccessKey: keyRef(&gone)})
	return nil
}

// ListPage is one page of keys.
type ListPage struct {
	Keys []*Key
	// Next is the continuation token, "" on the last page.
	Next string
}

// ListKeys lists every live key of the organisation in Access ID order,
// limit at a time. The token is the last Access ID of the previous page, so
// a listing returns each key that exists throughout it exactly once, while
// other keys are added and deleted.
func (s *Store) ListKeys(ctx context.Context, limit int, token string) (ListPage, error) {
	if token != "" && !ValidAccessID(token) {
		v := &ValidationError{}
		v.add("token", "accessKey:invalid_token", "the continuation token is not valid")
		return ListPage{}, v
	}
	start := "-"
	if token != "" {
		start = "(" + token
	}
	var page ListPage
	for len(page.Keys) < limit {
		want := limit - len(page.Keys)
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keysIndex(), Start: start, Stop: "+", ByLex: true, Count: int64(want + 1)}).Result()
		if err != nil {
			return ListPage{}, err
		}
		more := len(ids) > want
		if more {
			ids = ids[:want]
		}
		keys, err := s.keysByID(ctx, ids)
		if err != nil {
			return ListPage{}, err
		}
		page.Keys = append(page.Keys, keys...)
		if !more {
			return page, nil
		}
		start = "(" + ids[len(ids)-1]
		if len(page.Keys) == limit {
			page.Next = ids[len(ids)-1]
		}
	}
	return page, nil
}

// KeysOfOwner lists the live keys of one owner, in Access ID order.
func (s *Store) KeysOfOwner(ctx context.Context, ownerID string) ([]*Key, error) {
	ids, err := s.rdb.SMembers(ctx, s.ownerKeysKey(ownerID)).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	keys, err := s.keysByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for _, k := range keys {
		if k.OwnerID == ownerID {
			out = append(out, k)
		}
	}
	return out, nil
}

// keysByID reads live records, in the order of ids, skipping index
// entries whose record is gone.
func (s *Store) keysByID(ctx context.Context, ids []string) ([]*Key, error) {
	recs, err := s.records(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*Key, 0, len(recs))
	for _, id := range ids {
		if k := recs[id]; k != nil && !k.Pending && k.ReplacedBy == "" {
			out = append(out, k)
		}
	}
	return out, nil
}

// keyRef names k in an audit event.
func keyRef(k *Key) *KeyRef { return &KeyRef{AccessID: k.ID, Label: k.Label, OwnerID: k.OwnerID} }

// changeView is what audit events show of a key's settings (never its hash).
func changeView(k *Key) map[string]any {
	return map[string]any{"enabled": !k.Disabled, "scopes": nonNil(k.Scopes), "corsHeaders": nonNil(k.CORSHeaders), "label": k.Label,
		"rateLimit": k.RateLimit, "concurrencyLimit": k.ConcurrencyLimit, "quota": k.Quota}
}

// announceKey queues in p, the MULTI block of a change of k, the
// announcement of k and of the key it replaced, whose grace depends on k.
func (s *Store) announceKey(ctx context.Context, p redis.Pipeliner, k *Key) error {
	if err := s.announce(ctx, p, invalidateKeyPrefix+k.ID); err != nil {
		return err
	}
	if k.RotatedFrom != "" {
		if err := s.announce(ctx, p, invalidateKeyPrefix+k.RotatedFrom); err != nil {
			return err
		}
	}
	return nil
}

// KeysExist reports which of the Access IDs have a key record, in one
// pipeline (one round trip per Redis node).
func (s *Store) KeysExist(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Exists(ctx, s.keyKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for i, id := range ids {
		if cmds[i].Val() == 1 {
			out[id] = true
		}
	}
	return out, nil
}
