package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// idPattern is what user, service-account, role and scope IDs may look like.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$`)

// ValidID reports whether s can name a user, service account, role or scope.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// NewOwnerID returns a fresh 16-hex-digit upper-case ID.
func NewOwnerID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("keystore: crypto/rand failed: " + err.Error())
	}
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// PutRole creates or replaces a role.
func (s *Store) PutRole(ctx context.Context, r Role, by string) (*Role, error) {
	v := &ValidationError{}
	if !ValidID(r.ID) {
		v.add("id", "role:invalid_id", "role id must be 1-64 letters, digits or _.:@-")
	}
	if r.Name == "" {
		r.Name = r.ID
	}
	if !plainText(r.Name) {
		v.add("name", "role:invalid_name", "name must be printable text, without control or bidirectional formatting characters")
	}
	if !plainText(r.Description) {
		v.add("description", "role:invalid_description", "description must be printable text, without control or bidirectional formatting characters")
	}
	for _, c := range r.Capabilities {
		if !ValidID(c) {
			v.add("capabilities", "role:invalid_capability", "invalid capability "+strconvQuote(c))
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	r.Capabilities = sortedUnique(r.Capabilities)
	now := s.Now()
	var old Role
	raw, err := s.rdb.HGet(ctx, s.rolesKey(), r.ID).Bytes()
	switch {
	case err == nil && json.Unmarshal(raw, &old) == nil:
		r.CreatedAt, r.CreatedBy = old.CreatedAt, old.CreatedBy
	case err != nil && !errors.Is(err, redis.Nil):
		return nil, err
	default:
		r.CreatedAt, r.CreatedBy = now, by
	}
	r.ModifiedAt, r.ModifiedBy = now, by
	b, _ := json.Marshal(r)
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.rolesKey(), r.ID, b)
		if err := s.announce(ctx, p, invalidateAll); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return &r, nil
}

// Roles returns every role, by ID.
func (s *Store) Roles(ctx context.Context) (map[string]*Role, error) {
	h, err := s.rdb.HGetAll(ctx, s.rolesKey()).Result()
	if err != nil {
		return nil, err
	}
	return parseRoles(h), nil
}

func parseRoles(h map[string]string) map[string]*Role {
	out := make(map[string]*Role, len(h))
	for id, raw := range h {
		var r Role
		if json.Unmarshal([]byte(raw), &r) == nil {
			out[id] = &r
		}
	}
	return out
}

// PutOwner creates or replaces a user or service account. Its roles must
// exist.
func (s *Store) PutOwner(ctx context.Context, o Owner, by string) (*Owner, error) {
	if err := s.validateOwner(ctx, &o); err != nil {
		return nil, err
	}
	now := s.Now()
	var old Owner
	found, err := s.getJSON(ctx, s.ownerKey(o.ID), &old)
	if err != nil {
		return nil, err
	}
	if found {
		if old.Kind != o.Kind {
			return nil, &ConflictError{Code: "owner:exists", Message: "id " + strconvQuote(o.ID) + " is already used by a " + string(old.Kind)}
		}
		o.CreatedAt, o.CreatedBy = old.CreatedAt, old.CreatedBy
	} else {
		o.CreatedAt, o.CreatedBy = now, by
	}
	o.ModifiedAt, o.ModifiedBy = now, by
	b, _ := json.Marshal(o)
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.ownerKey(o.ID), b, 0)
		if err := s.announce(ctx, p, invalidateOwnerPfx+o.ID); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// The index is in another slot, so it is written after the record.
	if err := s.rdb.ZAdd(ctx, s.ownersIndex(o.Kind), redis.Z{Member: o.ID}).Err(); err != nil {
		return nil, err
	}
	return &o, nil
}

// validateOwner checks an owner's fields and that its roles exist, and
// sorts its role IDs.
func (s *Store) validateOwner(ctx context.Context, o *Owner) error {
	v := &ValidationError{}
	if !ValidID(o.ID) {
		v.add("id", "owner:invalid_id", "id must be 1-64 letters, digits or _.:@-")
	}
	if o.Kind != OwnerUser && o.Kind != OwnerServiceAccount {
		v.add("kind", "owner:invalid_kind", "kind must be user or serviceAccount")
	}
	if _, err := mail.ParseAddress(o.Email); err != nil || strings.ContainsAny(o.Email, "<> ") || !plainText(o.Email) {
		v.add("email", "owner:invalid_email", "email must be a valid address")
	}
	validateName(v, "firstName", o.FirstName)
	validateName(v, "lastName", o.LastName)
	validateName(v, "name", o.Name)
	roles, err := s.Roles(ctx)
	if err != nil {
		return err
	}
	o.RoleIDs = sortedUnique(o.RoleIDs)
	for _, r := range o.RoleIDs {
		if roles[r] == nil {
			v.add("roleIds", "role:not_found", "role "+strconvQuote(r)+" does not exist")
		}
	}
	return v.err()
}

// Owner reads a user or service account.
func (s *Store) Owner(ctx context.Context, id string) (*Owner, error) {
	var o Owner
	found, err := s.getJSON(ctx, s.ownerKey(id), &o)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &NotFoundError{Kind: "owner", ID: id}
	}
	return &o, nil
}

// Principal resolves an owner and its current capabilities in two round
// trips: the owner, then only the roles it has. A missing owner yields an
// inactive principal, not an error.
func (s *Store) Principal(ctx context.Context, ownerID string) (*Principal, error) {
	raw, err := s.rdb.Get(ctx, s.ownerKey(ownerID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return &Principal{ID: ownerID}, nil
	}
	if err != nil {
		return nil, err
	}
	var o Owner
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	roles := map[string]*Role{}
	if len(o.RoleIDs) > 0 {
		vals, err := s.rdb.HMGet(ctx, s.rolesKey(), o.RoleIDs...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			var r Role
			if str, ok := v.(string); ok && json.Unmarshal([]byte(str), &r) == nil {
				roles[o.RoleIDs[i]] = &r
			}
		}
	}
	return principalOf(&o, roles), nil
}

func principalOf(o *Owner, roles map[string]*Role) *Principal {
	var caps []string
	for _, id := range o.RoleIDs {
		if r := roles[id]; r != nil {
			caps = append(caps, r.Capabilities...)
		}
	}
	slices.Sort(caps)
	return &Principal{ID: o.ID, Kind: o.Kind, Email: o.Email, Active: o.IsActive, Capabilities: slices.Compact(caps), RateLimit: o.RateLimit}
}
