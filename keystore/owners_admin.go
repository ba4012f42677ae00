package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Audit event names of owner and role changes.
const (
	EventUserCreated           = "UserCreated"
	EventUserUpdated           = "UserUpdated"
	EventUserDeleted           = "UserDeleted"
	EventServiceAccountCreated = "ServiceAccountCreated"
	EventServiceAccountUpdated = "ServiceAccountUpdated"
	EventServiceAccountDeleted = "ServiceAccountDeleted"
	EventRoleCreated           = "RoleCreated"
	EventRoleUpdated           = "RoleUpdated"
	EventRoleDeleted           = "RoleDeleted"
)

// Limits on owner and role input.
const (
	// MaxNameLen bounds names: first and last names, service account and
	// role names.
	MaxNameLen = 128
	// MaxDescriptionLen bounds a role's description.
	MaxDescriptionLen = 1024
	// MaxCapabilities bounds the capabilities of one role.
	MaxCapabilities = 200
)

// validateName checks an optional display name: at most MaxNameLen
// characters of printable text.
func validateName(v *ValidationError, field, s string) {
	validateText(v, field, s, MaxNameLen)
}

func validateText(v *ValidationError, field, s string, max int) {
	switch {
	case !plainText(s):
		v.add(field, "owner:invalid_"+field, field+" must be printable text")
	case utf8.RuneCountInString(s) > max:
		v.add(field, "owner:invalid_"+field, field+" must be at most "+strconv.Itoa(max)+" characters")
	}
}

// ownerNoun is how errors and events name an owner kind.
func ownerNoun(k OwnerKind) string {
	if k == OwnerServiceAccount {
		return "serviceAccount"
	}
	return "user"
}

func ownerEvent(k OwnerKind, user, sa string) string {
	if k == OwnerServiceAccount {
		return sa
	}
	return user
}

// ownerView is what audit events show of an owner.
func ownerView(o *Owner) map[string]any {
	m := map[string]any{"id": o.ID, "email": o.Email, "roleIds": nonNil(o.RoleIDs), "isActive": o.IsActive}
	if o.Kind == OwnerServiceAccount {
		m["name"] = o.Name
	} else {
		m["firstName"], m["lastName"] = o.FirstName, o.LastName
	}
	return m
}

func ownerDetails(o *Owner) map[string]any {
	return map[string]any{"ownerId": o.ID, "ownerKind": string(o.Kind)}
}

func ownerEqual(a, b *Owner) bool {
	return a.Email == b.Email && a.FirstName == b.FirstName && a.LastName == b.LastName &&
		a.Name == b.Name && a.IsActive == b.IsActive && slices.Equal(a.RoleIDs, b.RoleIDs) && ptrEqual(a.RateLimit, b.RateLimit)
}

// checkOwnerInput adds the kind-specific rules to validateOwner: a
// service account needs a name.
func (s *Store) checkOwnerInput(ctx context.Context, o *Owner) error {
	err := s.validateOwner(ctx, o)
	var v *ValidationError
	switch {
	case err == nil:
		v = &ValidationError{}
	case errors.As(err, &v):
	default:
		return err
	}
	if o.Kind == OwnerServiceAccount && strings.TrimSpace(o.Name) == "" {
		v.add("name", "serviceAccount:name_required", "name is required")
	}
	if o.RateLimit != nil {
		if err := o.RateLimit.Validate(); err != nil {
			v.add("rateLimit", string(o.Kind)+":invalid_rate_limit", "rateLimit: "+err.Error())
		}
	}
	return v.err()
}

// CreateOwner creates a user or service account; it fails with a
// *ConflictError if the ID is taken. An empty ID gets a fresh one from
// NewOwnerID.
func (s *Store) CreateOwner(ctx context.Context, o Owner, op Operator) (*Owner, error) {
	if o.ID == "" {
		o.ID = NewOwnerID()
	}
	if err := s.checkOwnerInput(ctx, &o); err != nil {
		return nil, err
	}
	now := s.Now()
	o.CreatedAt, o.CreatedBy, o.ModifiedAt, o.ModifiedBy = now, op.ID, now, op.ID
	b, _ := json.Marshal(&o)
	// Instances may hold the ID as an owner that does not exist: the
	// record is stored only with its announcement.
	err := s.update(ctx, s.ownerKey(o.ID), func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, s.ownerKey(o.ID)).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Code: ownerNoun(o.Kind) + ":exists", Message: "the id " + strconvQuote(o.ID) + " is already in use"}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.ownerKey(o.ID), b, 0)
			if err := s.announce(ctx, p, invalidateOwnerPfx+o.ID); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.rdb.ZAdd(ctx, s.ownersIndex(o.Kind), redis.Z{Member: o.ID}).Err(); err != nil {
		return nil, err
	}
	s.emit(ctx, Event{EventName: ownerEvent(o.Kind, EventUserCreated, EventServiceAccountCreated), Operator: op, To: ownerView(&o), Details: ownerDetails(&o)})
	if now := s.dropDeletedRoles(ctx, o.ID, o.RoleIDs, op); now != nil {
		return now, nil
	}
	return &o, nil
}

// UpdateOwner applies change to the owner id of the given kind atomically:
// concurrent updates are serialised and none is lost. The ID, kind and
// creation fields cannot change. Deactivating an owner makes every key it
// owns fail verification at once (the change is published).
func (s *Store) UpdateOwner(ctx context.Context, id string, kind OwnerKind, change func(*Owner), op Operator) (*Owner, error) {
	var before, after Owner
	changed := false
	err := s.update(ctx, s.ownerKey(id), func(tx *redis.Tx) error {
		o, err := s.txOwner(ctx, tx, id, kind)
		if err != nil {
			return err
		}
		before = *o
		before.RoleIDs = slices.Clone(o.RoleIDs)
		change(o)
		o.ID, o.Kind = before.ID, before.Kind
		o.CreatedAt, o.CreatedBy = before.CreatedAt, before.CreatedBy
		if err := s.checkOwnerInput(ctx, o); err != nil {
			return err
		}
		after, changed = *o, !ownerEqual(&before, o)
		if !changed {
			return nil
		}
		after.ModifiedAt, after.ModifiedBy = s.Now(), op.ID
		b, _ := json.Marshal(&after)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.ownerKey(id), b, 0)
			if err := s.announce(ctx, p, invalidateOwnerPfx+id); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.emit(ctx, Event{EventName: ownerEvent(kind, EventUserUpdated, EventServiceAccountUpdated), Operator: op,
			From: ownerView(&before), To: ownerView(&after), Details: ownerDetails(&after)})
		added := slices.DeleteFunc(slices.Clone(after.RoleIDs), func(r string) bool { return slices.Contains(before.RoleIDs, r) })
		if now := s.dropDeletedRoles(ctx, id, added, op); now != nil {
			return now, nil
		}
	}
	return &after, nil
}

// txOwner reads an owner of the given kind inside a transaction.
func (s *Store) txOwner(ctx context.Context, tx *redis.Tx, id string, kind OwnerKind) (*Owner, error) {
	notFound := &NotFoundError{Kind: ownerNoun(kind), ID: id}
	if !ValidID(id) {
		return nil, notFound
	}
	b, err := tx.Get(ctx, s.ownerKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	var o Owner
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("corrupt owner record %s: %w", id, err)
	}
	if o.Kind != kind {
		return nil, notFound
	}
	return &o, nil
}

// OwnerOfKind reads a user or service account, reporting a
// *NotFoundError named after kind when it does not exist or is of the
// other kind.
func (s *Store) OwnerOfKind(ctx context.Context, id string, kind OwnerKind) (*Owner, error) {
	notFound := &NotFoundError{Kind: ownerNoun(kind), ID: id}
	if !ValidID(id) {
		return nil, notFound
	}
	o, err := s.Owner(ctx, id)
	if errors.Is(err, ErrNotFound) || err == nil && o.Kind != kind {
		return nil, notFound
	}
	return o, err
}

// DeleteOwner deletes a user or service account. An owner that still has
// keys is refused with a *ConflictError unless cascade is set; with
// cascade its keys are deleted too, each with its own audit event. The
// owner record goes first, so its keys stop working at once even if
// deleting them is interrupted. It returns the number of keys deleted.
//
// The owner and each key are deleted in their own transaction, each with
// its announcement. The steps are in different Cluster slots, so no
// transaction covers them all: if Redis refuses a key's announcement,
// that key stays and the error is returned, with the owner already
// deleted and announced (its keys can no longer authenticate).
func (s *Store) DeleteOwner(ctx context.Context, id string, kind OwnerKind, cascade bool, op Operator) (int, error) {
	if _, err := s.OwnerOfKind(ctx, id, kind); err != nil {
		return 0, err
	}
	if !cascade {
		keys, err := s.KeysOfOwner(ctx, id)
		if err != nil {
			return 0, err
		}
		if n := len(keys); n > 0 {
			return 0, &ConflictError{Code: ownerNoun(kind) + ":has_access_keys",
				Message: fmt.Sprintf("%s %s owns %d access keys; delete them first or ask for deleteKeys=true", ownerNoun(kind), strconvQuote(id), n)}
		}
	}
	var gone Owner
	err := s.update(ctx, s.ownerKey(id), func(tx *redis.Tx) error {
		o, err := s.txOwner(ctx, tx, id, kind)
		if err != nil {
			return err
		}
		gone = *o
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, s.ownerKey(id))
			if err := s.announce(ctx, p, invalidateOwnerPfx+id); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	cleanup := context.WithoutCancel(ctx)
	_ = s.rdb.ZRem(cleanup, s.ownersIndex(kind), id).Err()
	// Keys created while the owner was being deleted are caught by the
	// second round; they could never authenticate anyway.
	deleted := 0
	for range 3 {
		keys, err := s.KeysOfOwner(cleanup, id)
		if err != nil {
			return deleted, err
		}
		if len(keys) == 0 {
			break
		}
		for _, k := range keys {
			if err := s.DeleteKey(cleanup, k.ID, op); err == nil {
				deleted++
			} else if !errors.Is(err, ErrNotFound) {
				return deleted, err
			}
		}
	}
	_ = s.rdb.Del(cleanup, s.ownerKeysKey(id)).Err()
	details := ownerDetails(&gone)
	details["deletedAccessKeys"] = deleted
	s.emit(ctx, Event{EventName: ownerEvent(kind, EventUserDeleted, EventServiceAccountDeleted), Operator: op, From: ownerView(&gone), Details: details})
	return deleted, nil
}

// OwnerPage is one page of owners.
type OwnerPage struct {
	Owners []*Owner
	// Next is the continuation token, "" on the last page.
	Next string
}

// ListOwners lists the users or service accounts in ID order, limit at a
// time. The token is the last ID of the previous page.
func (s *Store) ListOwners(ctx context.Context, kind OwnerKind, limit int, token string) (OwnerPage, error) {
	if token != "" && !ValidID(token) {
		v := &ValidationError{}
		v.add("token", ownerNoun(kind)+":invalid_token", "the continuation token is not valid")
		return OwnerPage{}, v
	}
	if limit <= 0 {
		limit = 100
	}
	start := "-"
	if token != "" {
		start = "(" + token
	}
	var page OwnerPage
	for len(page.Owners) < limit {
		want := limit - len(page.Owners)
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.ownersIndex(kind), Start: start, Stop: "+", ByLex: true, Count: int64(want + 1)}).Result()
		if err != nil {
			return OwnerPage{}, err
		}
		more := len(ids) > want
		if more {
			ids = ids[:want]
		}
		owners, err := s.ownersByID(ctx, ids)
		if err != nil {
			return OwnerPage{}, err
		}
		for _, o := range owners {
			if o.Kind == kind {
				page.Owners = append(page.Owners, o)
			}
		}
		if !more {
			return page, nil
		}
		start = "(" + ids[len(ids)-1]
		if len(page.Owners) == limit {
			page.Next = ids[len(ids)-1]
		}
	}
	return page, nil
}

// ownersByID reads owner records, skipping those that are gone.
func (s *Store) ownersByID(ctx context.Context, ids []string) ([]*Owner, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, s.ownerKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]*Owner, 0, len(ids))
	for _, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue
		}
		var o Owner
		if json.Unmarshal(b, &o) == nil {
			out = append(out, &o)
		}
	}
	return out, nil
}

// Principals resolves several owners at once, in one round trip. Missing
// owners yield inactive principals.
func (s *Store) Principals(ctx context.Context, ownerIDs []string) (map[string]*Principal, error) {
	ids := sortedUnique(ownerIDs)
	out := make(map[string]*Principal, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	rolesCmd := pipe.HGetAll(ctx, s.rolesKey())
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(ctx, s.ownerKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	roles := parseRoles(rolesCmd.Val())
	for i, id := range ids {
		out[id] = &Principal{ID: id}
		b, err := cmds[i].Bytes()
		if err != nil {
			continue
		}
		var o Owner
		if json.Unmarshal(b, &o) == nil {
			out[id] = principalOf(&o, roles)
		}
	}
	return out, nil
}

// Role reads one role.
func (s *Store) Role(ctx context.Context, id string) (*Role, error) {
	if !ValidID(id) {
		return nil, &NotFoundError{Kind: "role", ID: id}
	}
	raw, err := s.rdb.HGet(ctx, s.rolesKey(), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, &NotFoundError{Kind: "role", ID: id}
	}
	if err != nil {
		return nil, err
	}
	var r Role
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("corrupt role %s: %w", id, err)
	}
	return &r, nil
}

func validateRole(r *Role) error {
	v := &ValidationError{}
	if !ValidID(r.ID) {
		v.add("id", "role:invalid_id", "role id must be 1-64 letters, digits or _.:@-")
	}
	if strings.TrimSpace(r.Name) == "" {
		v.add("name", "role:name_required", "name is required")
	} else {
		validateText(v, "name", r.Name, MaxNameLen)
	}
	validateText(v, "description", r.Description, MaxDescriptionLen)
	if len(r.Capabilities) > MaxCapabilities {
		v.add("capabilities", "role:too_many_capabilities", "at most "+strconv.Itoa(MaxCapabilities)+" capabilities are allowed")
	}
	for _, c := range r.Capabilities {
		if !ValidID(c) {
			v.add("capabilities", "role:invalid_capability", "invalid capability "+strconvQuote(c))
		}
	}
	for i := range v.Problems {
		v.Problems[i].Code = strings.Replace(v.Problems[i].Code, "owner:", "role:", 1)
	}
	r.Capabilities = nonNil(sortedUnique(r.Capabilities))
	return v.err()
}

// roleView is what audit events show of a role.
func roleView(r *Role) map[string]any {
	return map[string]any{"id": r.ID, "name": r.Name, "description": r.Description, "capabilities": nonNil(r.Capabilities)}
}

// txRoles reads every role inside a transaction on the roles hash.
func (s *Store) txRoles(ctx context.Context, tx *redis.Tx) (map[string]*Role, error) {
	h, err := tx.HGetAll(ctx, s.rolesKey()).Result()
	if err != nil {
		return nil, err
	}
	return parseRoles(h), nil
}

// nameTaken reports whether a role other than id is called name (case
// does not matter).
func nameTaken(roles map[string]*Role, id, name string) bool {
	for rid, r := range roles {
		if rid != id && strings.EqualFold(strings.TrimSpace(r.Name), strings.TrimSpace(name)) {
			return true
		}
	}
	return false
}

// CreateRole creates a role; it fails with a *ConflictError if the ID or
// the name is taken. An empty ID gets a fresh one from NewOwnerID.
func (s *Store) CreateRole(ctx context.Context, r Role, op Operator) (*Role, error) {
	if r.ID == "" {
		r.ID = NewOwnerID()
	}
	if err := validateRole(&r); err != nil {
		return nil, err
	}
	// Users and service accounts may still refer to a role deleted under
	// this ID (a change interrupted between its steps, or data of an
	// earlier version): the new role must not reach them.
	exists, err := s.rdb.HExists(ctx, s.rolesKey(), r.ID).Result()
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := s.dropRoleRefs(ctx, r.ID, op); err != nil {
			return nil, err
		}
	}
	now := s.Now()
	r.CreatedAt, r.CreatedBy, r.ModifiedAt, r.ModifiedBy = now, op.ID, now, op.ID
	err = s.update(ctx, s.rolesKey(), func(tx *redis.Tx) error {
		roles, err := s.txRoles(ctx, tx)
		if err != nil {
			return err
		}
		if roles[r.ID] != nil {
			return &ConflictError{Code: "role:exists", Message: "the role id " + strconvQuote(r.ID) + " is already in use"}
		}
		if nameTaken(roles, r.ID, r.Name) {
			return &ConflictError{Code: "role:name_exists", Message: "a role named " + strconvQuote(r.Name) + " already exists"}
		}
		b, _ := json.Marshal(&r)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.rolesKey(), r.ID, b)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	s.emit(ctx, Event{EventName: EventRoleCreated, Operator: op, To: roleView(&r), Details: map[string]any{"roleId": r.ID}})
	return &r, nil
}

// UpdateRole applies change to role id atomically. A change of
// capabilities reaches every key of every owner holding the role (the
// change is published).
func (s *Store) UpdateRole(ctx context.Context, id string, change func(*Role), op Operator) (*Role, error) {
	var before, after Role
	changed := false
	err := s.update(ctx, s.rolesKey(), func(tx *redis.Tx) error {
		roles, err := s.txRoles(ctx, tx)
		if err != nil {
			return err
		}
		old := roles[id]
		if old == nil || !ValidID(id) {
			return &NotFoundError{Kind: "role", ID: id}
		}
		before = *old
		r := *old
		r.Capabilities = slices.Clone(old.Capabilities)
		change(&r)
		r.ID, r.CreatedAt, r.CreatedBy = before.ID, before.CreatedAt, before.CreatedBy
		if err := validateRole(&r); err != nil {
			return err
		}
		if nameTaken(roles, id, r.Name) {
			return &ConflictError{Code: "role:name_exists", Message: "a role named " + strconvQuote(r.Name) + " already exists"}
		}
		after = r
		changed = r.Name != before.Name || r.Description != before.Description || !slices.Equal(r.Capabilities, nonNil(before.Capabilities))
		if !changed {
			return nil
		}
		after.ModifiedAt, after.ModifiedBy = s.Now(), op.ID
		b, _ := json.Marshal(&after)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.rolesKey(), id, b)
			if err := s.announce(ctx, p, invalidateAll); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.emit(ctx, Event{EventName: EventRoleUpdated, Operator: op, From: roleView(&before), To: roleView(&after), Details: map[string]any{"roleId": id}})
	}
	return &after, nil
}

// DeleteRole deletes a role that no user or service account holds; a role
// in use is refused with a *ConflictError.
func (s *Store) DeleteRole(ctx context.Context, id string, op Operator) error {
	var gone Role
	err := s.update(ctx, s.rolesKey(), func(tx *redis.Tx) error {
		roles, err := s.txRoles(ctx, tx)
		if err != nil {
			return err
		}
		r := roles[id]
		if r == nil || !ValidID(id) {
			return &NotFoundError{Kind: "role", ID: id}
		}
		holders, err := s.roleHolders(ctx, id)
		if err != nil {
			return err
		}
		if len(holders) > 0 {
			return &ConflictError{Code: "role:in_use",
				Message: fmt.Sprintf("role %s is held by %d users or service accounts (%s); remove it from them first", strconvQuote(id), len(holders), strings.Join(holders[:min(len(holders), 5)], ", "))}
		}
		gone = *r
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, s.rolesKey(), id)
			if err := s.announce(ctx, p, invalidateAll); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	s.emit(ctx, Event{EventName: EventRoleDeleted, Operator: op, From: roleView(&gone), Details: map[string]any{"roleId": id}})
	// An assignment that checked the role before it was deleted may have
	// been written since the holders were counted. Each owner change is
	// announced in its own transaction. Should one fail, also because
	// Redis refused its announcement, that owner is left unchanged and
	// the deletion still stands: it was announced with the role, and the
	// reference grants nothing until the role is created again, which
	// takes it off first (and reports the error if it cannot).
	_ = s.dropRoleRefs(ctx, id, op)
	return nil
}

// dropRoleRefs takes the role id off every owner that holds it, unless
// the role exists again.
//
// A role deleted while it is being given to an owner must not stay on the
// owner: created again under its ID, it would grant its new capabilities
// to owners nobody gave it to. The roles hash and the owners live in
// different Redis Cluster slots, so no transaction covers both; instead
// each side writes first and checks the other after. DeleteRole removes
// the role, then takes it off every owner holding it; an owner change
// that adds roles writes the owner, then takes off the roles that no
// longer exist. Whatever the interleaving, one of the two sees the
// other's write. CreateRole takes its ID off every owner first, for
// references left by a change interrupted between its two steps.
func (s *Store) dropRoleRefs(ctx context.Context, id string, op Operator) error {
	holders, err := s.roleHolders(ctx, id)
	if err != nil {
		return err
	}
	for _, ownerID := range holders {
		if exists, err := s.rdb.HExists(ctx, s.rolesKey(), id).Result(); err != nil || exists {
			return err
		}
		if _, err := s.dropRoles(ctx, ownerID, []string{id}, op); err != nil {
			return err
		}
	}
	return nil
}

// dropDeletedRoles takes those of roleIDs that no longer exist off the
// owner, after a change gave them to it. It returns the owner as it is
// then, or nil if it had nothing to take off (or could not tell: the
// references stay until the role is created again, which takes them off).
func (s *Store) dropDeletedRoles(ctx context.Context, ownerID string, roleIDs []string, op Operator) *Owner {
	if len(roleIDs) == 0 {
		return nil
	}
	vals, err := s.rdb.HMGet(ctx, s.rolesKey(), roleIDs...).Result()
	if err != nil {
		return nil
	}
	var gone []string
	for i, v := range vals {
		if v == nil {
			gone = append(gone, roleIDs[i])
		}
	}
	if len(gone) == 0 {
		return nil
	}
	o, err := s.dropRoles(ctx, ownerID, gone, op)
	if err != nil {
		return nil
	}
	return o
}

// dropRoles takes the roles ids, which no longer exist, off an owner,
// with an audit event of the change. It returns the owner as it is then
// (nil if it is gone).
func (s *Store) dropRoles(ctx context.Context, ownerID string, ids []string, op Operator) (*Owner, error) {
	var before, after Owner
	found, changed := false, false
	err := s.update(ctx, s.ownerKey(ownerID), func(tx *redis.Tx) error {
		b, err := tx.Get(ctx, s.ownerKey(ownerID)).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &before); err != nil {
			return fmt.Errorf("corrupt owner record %s: %w", ownerID, err)
		}
		found = true
		after = before
		after.RoleIDs = slices.DeleteFunc(slices.Clone(before.RoleIDs), func(r string) bool { return slices.Contains(ids, r) })
		if changed = len(after.RoleIDs) != len(before.RoleIDs); !changed {
			return nil
		}
		after.ModifiedAt, after.ModifiedBy = s.Now(), op.ID
		nb, _ := json.Marshal(&after)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.ownerKey(ownerID), nb, 0)
			if err := s.announce(ctx, p, invalidateOwnerPfx+ownerID); err != nil {
				return err
			}
			return nil
		})
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	if changed {
		s.emit(ctx, Event{EventName: ownerEvent(after.Kind, EventUserUpdated, EventServiceAccountUpdated), Operator: op,
			From: ownerView(&before), To: ownerView(&after), Reason: "role_deleted", Details: ownerDetails(&after)})
	}
	return &after, nil
}

// roleHolders returns the IDs of the owners holding role id, sorted.
func (s *Store) roleHolders(ctx context.Context, id string) ([]string, error) {
	var holders []string
	for _, kind := range []OwnerKind{OwnerUser, OwnerServiceAccount} {
		ids, err := s.rdb.ZRange(ctx, s.ownersIndex(kind), 0, -1).Result()
		if err != nil {
			return nil, err
		}
		for chunk := range slices.Chunk(ids, 1000) {
			owners, err := s.ownersByID(ctx, chunk)
			if err != nil {
				return nil, err
			}
			for _, o := range owners {
				if slices.Contains(o.RoleIDs, id) {
					holders = append(holders, o.ID)
				}
			}
		}
	}
	slices.Sort(holders)
	return holders, nil
}
