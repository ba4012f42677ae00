package keystore

import (
	"slices"
	"time"

	"github.com/accessgate/accessgate/limits"
)

// OwnerKind tells what kind of principal owns a key.
type OwnerKind string

// Owner kinds.
const (
	OwnerUser           OwnerKind = "user"
	OwnerServiceAccount OwnerKind = "serviceAccount"
)

// Disabled reasons kept on a key record.
const (
	DisabledManual  = "manual"
	DisabledExpired = "expired"
	DisabledUnused  = "unused"
)

// Key is a stored access key. The secret itself is never stored: only
// SecretHash, its SHA-256.
type Key struct {
	ID          string    `json:"id"`
	SecretHash  string    `json:"secretHash"`
	Label       string    `json:"label"`
	OwnerID     string    `json:"ownerId"`
	OwnerKind   OwnerKind `json:"ownerKind"`
	Scopes      []string  `json:"scopes,omitempty"`
	CORSHeaders []string  `json:"corsHeaders,omitempty"`
	Disabled    bool      `json:"disabled"`
	// DisabledReason is manual, expired or unused when Disabled is set.
	DisabledReason string    `json:"disabledReason,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
	CreatedBy      string    `json:"createdBy"`
	ModifiedAt     time.Time `json:"modifiedAt"`
	ModifiedBy     string    `json:"modifiedBy"`
	// IssuedAt is the creation or last rotation: the base of the expiry.
	IssuedAt time.Time `json:"issuedAt"`
	// ActivatedAt is the creation or last reactivation: the base of the
	// unused-key clock.
	ActivatedAt time.Time `json:"activatedAt"`
	// GraceUntil is set on a key that was rotated out: it works until then.
	GraceUntil time.Time `json:"graceUntil,omitzero"`
	// ReplacedBy is the Access ID that replaced this one in a rotation.
	ReplacedBy string `json:"replacedBy,omitempty"`
	// RotatedFrom is the Access ID this key replaced in a rotation; that
	// key works during its grace only while this one does.
	RotatedFrom string `json:"rotatedFrom,omitempty"`
	// Pending is set while the rotation that creates this key is not yet
	// committed; such a key never authenticates.
	Pending bool `json:"pending,omitempty"`
	// Version counts the writes of this record.
	Version int64 `json:"version"`
	// Lineage is the Access ID of the first key of a rotation chain; a
	// rotation keeps it, so that rate, concurrency and quota use carry
	// over to the new key instead of starting afresh. Empty on records
	// written before it existed: their lineage is their ID (LimitID).
	Lineage string `json:"lineage,omitempty"`
	// RateLimit overrides the default rate limit of keys; nil: the default.
	RateLimit *limits.Rate `json:"rateLimit,omitempty"`
	// ConcurrencyLimit overrides the default concurrency limit of keys;
	// nil: the default.
	ConcurrencyLimit *int `json:"concurrencyLimit,omitempty"`
	// Quota limits the key's requests per UTC day or month; nil: none.
	Quota *limits.Quota `json:"quota,omitempty"`
}

// LimitID is the identity under which the key's use is limited: its
// Lineage, so that a rotation does not reset a quota.
func (k *Key) LimitID() string {
	if k.Lineage != "" {
		return k.Lineage
	}
	return k.ID
}

// Owner is a user or a service account.
type Owner struct {
	ID        string    `json:"id"`
	Kind      OwnerKind `json:"kind"`
	Email     string    `json:"email"`
	FirstName string    `json:"firstName,omitempty"`
	LastName  string    `json:"lastName,omitempty"`
	// Name is the display name of a service account.
	Name       string    `json:"name,omitempty"`
	RoleIDs    []string  `json:"roleIds"`
	IsActive   bool      `json:"isActive"`
	CreatedAt  time.Time `json:"createdAt"`
	CreatedBy  string    `json:"createdBy"`
	ModifiedAt time.Time `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy"`
	// RateLimit overrides the default rate limit of owners (all keys of
	// the owner together); nil: the default.
	RateLimit *limits.Rate `json:"rateLimit,omitempty"`
}

// Role is a named set of capabilities.
type Role struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Capabilities []string  `json:"capabilities"`
	CreatedAt    time.Time `json:"createdAt"`
	CreatedBy    string    `json:"createdBy"`
	ModifiedAt   time.Time `json:"modifiedAt"`
	ModifiedBy   string    `json:"modifiedBy"`
}

// Principal is an owner resolved for authorisation: who it is and what it
// may do right now.
type Principal struct {
	ID           string
	Kind         OwnerKind
	Email        string
	Active       bool
	Capabilities []string // sorted, unique
	// RateLimit is the owner's rate limit override; nil: the default.
	RateLimit *limits.Rate
}

// Can reports whether the principal holds capability c.
func (p *Principal) Can(c string) bool {
	_, ok := slices.BinarySearch(p.Capabilities, c)
	return ok
}

// EffectiveScopes returns the key's scopes intersected with the owner's
// capabilities; a key with no scopes has the Default scope, that is every
// capability of its owner. The result is sorted.
func EffectiveScopes(keyScopes, capabilities []string) []string {
	if len(keyScopes) == 0 {
		return slices.Clone(capabilities)
	}
	out := make([]string, 0, len(keyScopes))
	for _, s := range keyScopes {
		if _, ok := slices.BinarySearch(capabilities, s); ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sortedUnique returns a sorted copy of in without duplicates.
func sortedUnique(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}
