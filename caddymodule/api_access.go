package caddymodule

import (
	"net/http"
	"slices"
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

// within reports whether a key with the given scopes is no broader than
// the calling key: every scope it lists is listed by the calling key, or
// the calling key has the Default scope. A key with the Default scope is
// within only a calling key with the Default scope.
func (c *apiCall) within(scopes []string) (bool, error) {
	mine, err := c.store.KeyScopes(c.ctx, c.ident.AccessID)
	if err != nil {
		return false, err
	}
	if len(mine) == 0 {
		return true, nil
	}
	if len(scopes) == 0 {
		return false, nil
	}
	for _, s := range scopes {
		if !slices.Contains(mine, s) {
			return false, nil
		}
	}
	return true, nil
}

// checkWithin refuses, with 403, to give the caller's own key more than
// the calling key holds. Callers with manageAccessKeys may anyway.
func (c *apiCall) checkWithin(scopes []string, what string) error {
	if c.can(capManageKeys) {
		return nil
	}
	ok, err := c.within(scopes)
	if err != nil || ok {
		return err
	}
	e := apiErrorf(http.StatusForbidden, codeForbidden, "%s: a key may not get scopes beyond those of the access key making the request; list only scopes this key holds", what)
	e.scope = capManageKeys
	return e
}
