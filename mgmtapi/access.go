package mgmtapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/keystore"
)

// Capabilities the management API checks against the calling key's
// effective scopes.
const (
	capCreateKeys     = "createAccessKeys"
	capManageKeys     = "manageAccessKeys"
	capViewPersonal   = "viewPersonalAccessKeys"
	capManagePersonal = "managePersonalAccessKeys"
	capOrgSettings    = "manageOrgSettings"
	capManageUsers    = "manageUsersAndRoles"
	capViewUsers      = "viewUsersAndRoles"
)

// Capability sets: holding any one of a set is enough.
var (
	capsOwnKeysRead  = []string{capCreateKeys, capManagePersonal, capViewPersonal, capManageKeys}
	capsOwnKeysWrite = []string{capCreateKeys, capManagePersonal, capManageKeys}
	capsUsersRead    = []string{capManageUsers, capViewUsers}
	capsUsersWrite   = []string{capManageUsers}
)

// can reports whether the calling key holds any of caps.
func (c *apiCall) can(caps ...string) bool {
	return slices.ContainsFunc(caps, c.ident.HasScope)
}

// require answers 403, naming the first of caps, unless the calling key
// holds one of them.
func (c *apiCall) require(caps ...string) error {
	if c.can(caps...) {
		return nil
	}
	return forbidden(caps[0])
}

// lacking returns the scopes of want that the calling key does not hold.
// Malformed names are left to the store, which refuses them with 400.
func (c *apiCall) lacking(want []string) []string {
	var out []string
	for _, s := range want {
		if keystore.ValidID(s) && !c.ident.HasScope(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// beyondCaller answers 403, naming what was refused and the scopes the
// calling key lacks, when want holds scopes the calling key does not: no
// request gives a key, a role or an owner more than the effective scopes
// of the key making it.
func (c *apiCall) beyondCaller(what string, want []string) error {
	missing := c.lacking(want)
	if len(missing) == 0 {
		return nil
	}
	e := apiErrorf(http.StatusForbidden, errbody.CodeForbidden, "%s: it would give %s, which the access key making the request does not hold; a request can give only scopes of the calling key's own effective scopes",
		what, strings.Join(missing, ", "))
	e.scope = missing[0]
	return e
}

// checkKeyWithin refuses, with 403, a key of owner with the given scopes
// (none: the Default scope) whose effective scopes, with the owner's
// current capabilities, would not all be held by the calling key. It
// guards every path that hands out a secret or widens a key: creating,
// rotating and re-scoping, of one's own keys and of anyone's.
func (c *apiCall) checkKeyWithin(owner string, scopes []string, what string) error {
	p, err := c.store.Principal(c.ctx, owner)
	if err != nil {
		return err
	}
	return c.beyondCaller(what, keystore.EffectiveScopes(scopes, p.Capabilities))
}

// roleCapabilities returns the capabilities the given roles grant
// together; unknown roles grant nothing (the store reports them).
func roleCapabilities(roles map[string]*keystore.Role, ids []string) []string {
	var out []string
	for _, id := range ids {
		if r := roles[id]; r != nil {
			out = append(out, r.Capabilities...)
		}
	}
	return out
}

// gained returns the capabilities of after that before lacks.
func gained(before, after []string) []string {
	var out []string
	for _, s := range after {
		if !slices.Contains(before, s) {
			out = append(out, s)
		}
	}
	return out
}
