package caddymodule

import (
	"context"
	"crypto/subtle"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessgate/accessgate/authcache"
	"github.com/accessgate/accessgate/keystore"
)

// Failed authentications are limited in two ways, both counted in fixed
// windows of failure_window:
//
//   - Per client address (max_failures_per_client): an address that keeps
//     failing gets 429 for its uncached requests until its window ends. The
//     address is the client's own, so the limit harms no one else.
//   - Per Access ID (max_failures_per_key): an Access ID is no secret (it
//     goes to the upstream, into logs and the console) and the Access Key
//     checksum is public, so anyone can send well-formed wrong keys for a
//     real Access ID from many addresses. Answering 429 for the ID would
//     lock its holder out. Instead, an Access ID over its limit is guarded:
//     its uncached verifications first compare the presented key with an
//     in-process copy of the stored key hash. A wrong key is refused (401)
//     with no Redis call; the right one goes on to the full verification,
//     so it is never answered 429 on account of others.
//
// The copy (the hash, label and owner of the record: see guardRecord) is
// read once per Access ID, by one GET whatever the number of concurrent
// requests, and lives one failure_window. It sits in
// the authentication cache under a key no credential can have and the
// Access ID's tag, so an invalidation message for the Access ID, a flush
// or a lost subscription drop it like any cached authentication, and a
// read that raced a change is not kept. The hash of an Access ID never
// changes (a rotation issues a new Access ID), so no copy can refuse the
// right key.
//
// Redis therefore sees, per Access ID under attack and window, at most
// max_failures_per_key full verifications (plus those in flight when it is
// reached) and one read of the record per invalidation of it.

// failureLimiter counts failed authentications per client address or per
// Access ID in fixed windows, and reports a key of it as over the limit
// once the count reaches it, until its window ends.
type failureLimiter struct {
	mu     sync.Mutex // serialises creating a key's counter
	limit  int64
	window time.Duration
	counts *authcache.Cache[string, *failCount]
}

type failCount struct {
	n     atomic.Int64
	until time.Time
}

func newFailureLimiter(limit int, window time.Duration, size int) *failureLimiter {
	return &failureLimiter{
		limit:  int64(limit),
		window: window,
		counts: authcache.New[string, *failCount](authcache.Config[string]{Size: size, TTL: window}),
	}
}

// blocked reports whether key has used up its failures, and for how long
// that lasts.
func (l *failureLimiter) blocked(key string, now time.Time) (time.Duration, bool) {
	if l.limit <= 0 || key == "" {
		return 0, false
	}
	c, ok := l.counts.Get(key)
	if !ok || c.n.Load() < l.limit {
		return 0, false
	}
	return c.until.Sub(now), true
}

// fail counts one failure of key.
func (l *failureLimiter) fail(key string, now time.Time) {
	if l.limit <= 0 || key == "" {
		return
	}
	c, ok := l.counts.Get(key)
	if !ok {
		l.mu.Lock()
		if c, ok = l.counts.Get(key); !ok {
			c = &failCount{until: now.Add(l.window)}
			l.counts.Add(key, c, c.until)
		}
		l.mu.Unlock()
	}
	c.n.Add(1)
}

// guardKey is the authentication cache key of the guard copy of Access ID
// id: the digest of id with an empty secret, which no credential has since
// every Access Key has keystore.AccessKeyLen characters.
func (s *state) guardKey(id string) credKey { return s.credKeyOf([]byte(id), nil) }

// screen compares secret with the guard copy of id's record, reading the
// record first when no copy is held (concurrent callers share one read).
// It returns nil when the secret is the key's, so that the full
// verification decides; *keystore.AuthError when
// the secret is wrong or the Access ID does not exist; another error when
// Redis could not be read.
func (s *state) screen(ctx context.Context, id, secret string) error {
	e, _, err := s.auth.GetOrLoad(ctx, s.guardKey(id), func(ctx context.Context) (*entry, time.Time, []string, error) {
		ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
		defer cancel()
		rec, err := s.guardRecord(ctx, id)
		if err != nil {
			return nil, time.Time{}, nil, err
		}
		return &entry{guard: rec}, s.now().Add(time.Duration(s.cfg.FailureWindow)), []string{id}, nil
	})
	var ae *keystore.AuthError
	switch {
	case errors.As(err, &ae):
		if ae.Reason == keystore.ReasonUnknown {
			s.negative.Add(id, struct{}{}, time.Time{})
		}
		return err
	case err != nil:
		return err
	}
	if subtle.ConstantTimeCompare([]byte(keystore.HashSecret(secret)), []byte(e.guard.SecretHash)) != 1 {
		return &keystore.AuthError{Reason: keystore.ReasonWrongSecret, AccessID: id, Key: e.guard}
	}
	return nil
}

// guardRecord reads what the guard keeps of id's record: its key hash,
// and its label and owner for the audit events. A key in its rotation
// grace, deactivated or expired has a record too; a missing or pending
// one is reported as an unknown Access ID.
func (s *state) guardRecord(ctx context.Context, id string) (*keystore.Key, error) {
	k, err := s.store.KeyOrRetired(ctx, id)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, &keystore.AuthError{Reason: keystore.ReasonUnknown, AccessID: id}
	}
	if err != nil {
		return nil, err
	}
	return &keystore.Key{ID: k.ID, SecretHash: k.SecretHash, Label: k.Label, OwnerID: k.OwnerID}, nil
}
