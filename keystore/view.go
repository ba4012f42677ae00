package keystore

import (
	"bytes"
	"time"

	"github.com/accessgate/accessgate/limits"
)

// TimeFormat is how every time of the API is written: RFC 3339, UTC, with
// milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Timestamp is a time that marshals as TimeFormat, and as null when zero.
type Timestamp struct{ time.Time }

// MarshalJSON writes the time as TimeFormat or null.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeFormat) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time or null.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	return t.Time.UnmarshalJSON(b)
}

// AccessKey is the public shape of a key, as the management API and the
// command line show it.
type AccessKey struct {
	ID               string    `json:"id"`
	Label            string    `json:"label"`
	Key              string    `json:"key"`
	CORSHeaders      []string  `json:"corsHeaders"`
	Disabled         bool      `json:"disabled"`
	Scopes           []string  `json:"scopes"`
	EffectiveScopes  []string  `json:"effectiveScopes"`
	CreatedAt        Timestamp `json:"createdAt"`
	CreatedBy        string    `json:"createdBy"`
	ModifiedAt       Timestamp `json:"modifiedAt"`
	ModifiedBy       string    `json:"modifiedBy"`
	LastUsed         Timestamp `json:"lastUsed"`
	ExpiresAt        Timestamp `json:"expiresAt"`
	OwnerID          string    `json:"ownerId"`
	ServiceAccountID string    `json:"serviceAccountId,omitempty"`
	// Status is active, deactivated or expired.
	Status string `json:"status"`
	// RateLimit, ConcurrencyLimit and Quota are the key's overrides of
	// the default limits; null: the default. A rate shows its burst.
	RateLimit        *limits.Rate  `json:"rateLimit"`
	ConcurrencyLimit *int          `json:"concurrencyLimit"`
	Quota            *limits.Quota `json:"quota"`
}

// Key statuses shown in AccessKey.Status.
const (
	StatusActive      = "active"
	StatusDeactivated = "deactivated"
	StatusExpired     = "expired"
)

// View builds the public shape of k. secret is "" except right after a
// create or rotate; p may be nil when the owner is unknown.
func View(k *Key, pol Policies, lastUsed time.Time, p *Principal, secret string, now time.Time) AccessKey {
	v := AccessKey{
		ID:          k.ID,
		Label:       k.Label,
		Key:         secret,
		CORSHeaders: nonNil(k.CORSHeaders),
		Disabled:    k.Disabled,
		Scopes:      nonNil(k.Scopes),
		CreatedAt:   Timestamp{k.CreatedAt},
		CreatedBy:   k.CreatedBy,
		ModifiedAt:  Timestamp{k.ModifiedAt},
		ModifiedBy:  k.ModifiedBy,
		LastUsed:    Timestamp{lastUsed},
		ExpiresAt:   Timestamp{pol.ExpiresAt(k)},
		OwnerID:     k.OwnerID,
		Status:      StatusActive,
		RateLimit:   viewRate(k.RateLimit),
	}
	if k.ConcurrencyLimit != nil {
		n := *k.ConcurrencyLimit
		v.ConcurrencyLimit = &n
	}
	if k.Quota != nil {
		q := *k.Quota
		v.Quota = &q
	}
	if k.OwnerKind == OwnerServiceAccount {
		v.ServiceAccountID = k.OwnerID
	}
	v.EffectiveScopes = []string{}
	if p != nil && p.Active {
		v.EffectiveScopes = nonNil(EffectiveScopes(k.Scopes, p.Capabilities))
	}
	switch {
	case k.DisabledReason == DisabledExpired || !v.ExpiresAt.IsZero() && !now.Before(v.ExpiresAt.Time):
		v.Status = StatusExpired
		v.Disabled = true
	case k.Disabled:
		v.Status = StatusDeactivated
	}
	return v
}

// viewRate returns a copy of r with its burst filled in, or nil.
func viewRate(r *limits.Rate) *limits.Rate {
	if r == nil {
		return nil
	}
	n := r.Normalized()
	return &n
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
