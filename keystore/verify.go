package keystore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/limits"
)

// Reason tells why a credential failed verification.
type Reason string

// Reasons a credential fails. All of them answer 401 to the client; the
// reason goes to the audit event and the log only.
const (
	ReasonMalformed     Reason = "malformed"
	ReasonUnknown       Reason = "unknown_access_id"
	ReasonWrongSecret   Reason = "wrong_secret"
	ReasonDisabled      Reason = "deactivated"
	ReasonExpired       Reason = "expired"
	ReasonUnused        Reason = "unused"
	ReasonRotated       Reason = "rotated"
	ReasonOwnerInactive Reason = "owner_inactive"
)

// AuthError is a failed verification. Errors of any other type are
// infrastructure failures (Redis unreachable), not verdicts.
type AuthError struct {
	Reason   Reason
	AccessID string
	// Key is the record, when one was found (for the audit event).
	Key *Key
}

func (e *AuthError) Error() string { return "credential rejected: " + string(e.Reason) }

// Identity is a verified credential: what the gateway needs to authorise
// requests made with it, and until when that holds.
type Identity struct {
	AccessID  string
	Label     string
	OwnerID   string
	OwnerKind OwnerKind
	Email     string
	// Scopes are the effective scopes, sorted.
	Scopes []string
	// Allowlist holds the normalised allowlisted origins.
	Allowlist []string
	// LimitID names the key's use for the limits: the Access ID of the
	// first key of its rotation chain (Key.LimitID).
	LimitID string
	// RateLimit, ConcurrencyLimit and Quota are the key's overrides;
	// OwnerRateLimit the owner's. nil: the defaults apply.
	RateLimit        *limits.Rate
	OwnerRateLimit   *limits.Rate
	ConcurrencyLimit *int
	Quota            *limits.Quota
	// Deadline is when this verdict stops holding by itself (expiry, end of
	// a rotation grace, unused limit, end of the copy of the policies it
	// was reached with); zero if never.
	Deadline time.Time
}

// HasScope reports whether the identity holds scope s.
func (id *Identity) HasScope(s string) bool {
	for _, x := range id.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// PrincipalFunc resolves an owner, perhaps from a cache.
type PrincipalFunc func(ctx context.Context, ownerID string) (*Principal, error)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Principal resolves owners; Store.Principal when nil.
	Principal PrincipalFunc
	// LastUsed, when set, returns a more recent last use than Redis may
	// hold yet (uses not flushed); zero if none.
	LastUsed func(accessID string) time.Time
	// Policies, when set, returns the key policies, perhaps from a cache,
	// and until when that copy may be used (zero: no limit), which then
	// bounds the Identity's Deadline. When nil, Verify reads them from
	// Redis with the key.
	Policies func(ctx context.Context) (Policies, time.Time, error)
}

// Verify checks an Access ID and Access Key. It makes one Redis round trip
// for the key, its last use and (unless o.Policies gives them) the
// policies, plus what o.Principal and o.Policies need; under load that
// round trip is a pipeline shared with concurrent verifications (batch.go).
// A rejected credential yields *AuthError; any other error means the
// verdict could not be reached.
func (s *Store) Verify(ctx context.Context, accessID, secret string, o VerifyOptions) (*Identity, error) {
	if !ValidAccessID(accessID) || !ValidAccessKey(secret) {
		return nil, &AuthError{Reason: ReasonMalformed, AccessID: accessID}
	}
	r := s.reads.get()
	r.key = s.keyKey(accessID)
	r.luKey, r.luField = s.lastUsedField(ctx, accessID)
	if o.Policies == nil {
		r.policies, r.policyKey = true, s.policyKey()
	}
	if err := s.reads.read(ctx, r); err != nil {
		return nil, err
	}
	record, luVal, err := r.keyCmd.Val(), r.luCmd.Val(), r.err()
	keyErr := r.keyCmd.Err()
	var polVal map[string]string
	if r.polCmd != nil {
		polVal = r.polCmd.Val()
	}
	s.reads.put(r)
	if err != nil {
		return nil, err
	}
	if errors.Is(keyErr, redis.Nil) {
		return nil, &AuthError{Reason: ReasonUnknown, AccessID: accessID}
	}
	var k Key
	if err := decodeKeyString(record, &k); err != nil {
		return nil, err
	}
	if k.Pending {
		return nil, &AuthError{Reason: ReasonUnknown, AccessID: accessID}
	}
	if !secretMatches(secret, k.SecretHash) {
		return nil, &AuthError{Reason: ReasonWrongSecret, AccessID: accessID, Key: heapKey(k)}
	}
	var pol Policies
	var polDeadline time.Time
	if o.Policies == nil {
		pol = parsePolicies(polVal)
	} else if pol, polDeadline, err = o.Policies(ctx); err != nil {
		return nil, err
	}
	now := s.now()
	var lastUsed time.Time
	if v := luVal; v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			lastUsed = time.UnixMilli(ms)
		}
	}
	if o.LastUsed != nil {
		if t := o.LastUsed(accessID); t.After(lastUsed) {
			lastUsed = t
		}
	}
	deadline, reason := keyDeadline(&k, pol, lastUsed, now)
	if reason != "" {
		return nil, &AuthError{Reason: reason, AccessID: accessID, Key: heapKey(k)}
	}
	if !polDeadline.IsZero() && (deadline.IsZero() || polDeadline.Before(deadline)) {
		deadline = polDeadline
	}
	if k.ReplacedBy != "" {
		// A rotated-out key works in its grace only while its successor
		// does: deleting or deactivating the new key ends the old one too.
		next, err := s.rawKey(ctx, k.ReplacedBy)
		if errors.Is(err, ErrNotFound) || err == nil && next.Disabled {
			return nil, &AuthError{Reason: ReasonRotated, AccessID: accessID, Key: heapKey(k)}
		}
		if err != nil {
			return nil, err
		}
	}
	principal := o.Principal
	if principal == nil {
		principal = s.Principal
	}
	p, err := principal(ctx, k.OwnerID)
	if err != nil {
		return nil, err
	}
	if !p.Active {
		return nil, &AuthError{Reason: ReasonOwnerInactive, AccessID: accessID, Key: heapKey(k)}
	}
	return &Identity{
		AccessID:  k.ID,
		Label:     k.Label,
		OwnerID:   k.OwnerID,
		OwnerKind: k.OwnerKind,
		Email:     p.Email,
		Scopes:    EffectiveScopes(k.Scopes, p.Capabilities),
		Allowlist: k.CORSHeaders,
		Deadline:  deadline,

		LimitID:          k.LimitID(),
		RateLimit:        k.RateLimit,
		OwnerRateLimit:   p.RateLimit,
		ConcurrencyLimit: k.ConcurrencyLimit,
		Quota:            k.Quota,
	}, nil
}

// keyDeadline tells whether k may authenticate at now and, if so, until
// when that holds by itself.
func keyDeadline(k *Key, pol Policies, lastUsed, now time.Time) (time.Time, Reason) {
	if k.ReplacedBy != "" && !now.Before(k.GraceUntil) {
		return time.Time{}, ReasonRotated
	}
	switch k.DisabledReason {
	case DisabledExpired:
		return time.Time{}, ReasonExpired
	case DisabledUnused:
		return time.Time{}, ReasonUnused
	}
	if k.Disabled {
		return time.Time{}, ReasonDisabled
	}
	var deadline time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (deadline.IsZero() || t.Before(deadline)) {
			deadline = t
		}
	}
	exp := pol.ExpiresAt(k)
	if !exp.IsZero() && !now.Before(exp) {
		return time.Time{}, ReasonExpired
	}
	earliest(exp)
	if k.ReplacedBy != "" {
		// Rotation removed the old key's last use: only its grace counts.
		earliest(k.GraceUntil)
	} else {
		unused := pol.UnusedAt(k, lastUsed)
		if !unused.IsZero() && !now.Before(unused) {
			return time.Time{}, ReasonUnused
		}
		earliest(unused)
	}
	return deadline, ""
}

// heapKey returns a copy of k for an AuthError, so that the record of a
// verification that succeeds stays on the stack.
func heapKey(k Key) *Key { return &k }
