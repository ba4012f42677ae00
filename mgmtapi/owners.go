package mgmtapi

import (
	"net/http"
	"strconv"

	"github.com/accessgate/accessgate/keystore"
)

// ownerRoutes says which kind of owner a set of endpoints serves.
type ownerRoutes struct {
	kind keystore.OwnerKind
	noun string
}

var (
	ownerRoutesUser           = ownerRoutes{kind: keystore.OwnerUser, noun: "user"}
	ownerRoutesServiceAccount = ownerRoutes{kind: keystore.OwnerServiceAccount, noun: "serviceAccount"}
)

// view is the public shape of o: keystore.UserView or
// keystore.ServiceAccountView.
func (k ownerRoutes) view(o *keystore.Owner) any {
	if k.kind == keystore.OwnerServiceAccount {
		return keystore.ViewServiceAccount(o)
	}
	return keystore.ViewUser(o)
}

// forgetOwner drops this instance's cached authentications of an owner's
// keys at once; other instances follow the published invalidation.
func (c *apiCall) forgetOwner(id string) { c.inst.ForgetOwner(id) }

// forgetAll drops every cached authentication of this instance, after a
// change that may touch any key (a role, a policy).
func (c *apiCall) forgetAll() { c.inst.ForgetAll() }

// readOwner reads the writable fields of a user or service account from
// the body into o; fields left out keep their value, and a null rateLimit
// clears the owner's rate limit (the default applies).
func (k ownerRoutes) readOwner(body *jsonBody, o *keystore.Owner) {
	if s := body.rate("rateLimit"); !sameRate(s, o.RateLimit) {
		o.RateLimit = settingOrNil(s)
	}
	if v := body.str("email"); v != nil {
		o.Email = *v
	}
	if k.kind == keystore.OwnerServiceAccount {
		if v := body.str("name"); v != nil {
			o.Name = *v
		}
	} else {
		if v := body.str("firstName"); v != nil {
			o.FirstName = *v
		}
		if v := body.str("lastName"); v != nil {
			o.LastName = *v
		}
	}
	if v := body.strs("roleIds"); v != nil {
		o.RoleIDs = *v
	}
	if v := body.boolean("isActive"); v != nil {
		o.IsActive = *v
	}
}

// listOwners serves GET /users and GET /serviceAccounts.
func listOwners(k ownerRoutes) apiFunc {
	return func(c *apiCall) error {
		c.noun = k.noun
		if err := c.require(capsUsersRead...); err != nil {
			return err
		}
		limit, token, err := c.paging()
		if err != nil {
			return err
		}
		page, err := c.store.ListOwners(c.ctx, k.kind, limit, token)
		if err != nil {
			return err
		}
		data := make([]any, 0, len(page.Owners))
		for _, o := range page.Owners {
			data = append(data, k.view(o))
		}
		return c.reply(http.StatusOK, listPage[any]{Data: data, Next: nextToken(page.Next)})
	}
}

// createOwner serves POST /users and POST /serviceAccounts. The id may be
// given; otherwise one is generated. New owners are active unless
// isActive is false. Their roles may grant only capabilities the calling
// key holds.
func createOwner(k ownerRoutes) apiFunc {
	return func(c *apiCall) error {
		c.noun = k.noun
		if err := c.require(capsUsersWrite...); err != nil {
			return err
		}
		body, err := c.readBody()
		if err != nil {
			return err
		}
		o := keystore.Owner{Kind: k.kind, IsActive: true}
		if v := body.str("id"); v != nil {
			o.ID = *v
		}
		k.readOwner(body, &o)
		if err := body.err(); err != nil {
			return err
		}
		roles, err := c.store.Roles(c.ctx)
		if err != nil {
			return err
		}
		if err := c.beyondCaller("cannot create this "+k.noun, roleCapabilities(roles, o.RoleIDs)); err != nil {
			return err
		}
		saved, err := c.store.CreateOwner(c.ctx, o, c.op)
		if err != nil {
			return err
		}
		return c.reply(http.StatusOK, k.view(saved))
	}
}

// getOwner serves GET /users/{id} and GET /serviceAccounts/{id}.
func getOwner(k ownerRoutes, id string) apiFunc {
	return func(c *apiCall) error {
		c.noun = k.noun
		if err := c.require(capsUsersRead...); err != nil {
			return err
		}
		o, err := c.store.OwnerOfKind(c.ctx, id, k.kind)
		if err != nil {
			return err
		}
		return c.reply(http.StatusOK, k.view(o))
	}
}

// updateOwner serves PUT /users/{id} and PUT /serviceAccounts/{id}; fields
// left out keep their value. Deactivating an owner stops its keys at once.
// New roles may grant only capabilities the calling key holds, since
// every key of the owner would gain them.
func updateOwner(k ownerRoutes, id string) apiFunc {
	return func(c *apiCall) error {
		c.noun = k.noun
		if err := c.require(capsUsersWrite...); err != nil {
			return err
		}
		if _, err := c.store.OwnerOfKind(c.ctx, id, k.kind); err != nil {
			return err
		}
		body, err := c.readBody()
		if err != nil {
			return err
		}
		// Check the types before the transaction; apply inside it.
		k.readOwner(body, &keystore.Owner{})
		if err := body.err(); err != nil {
			return err
		}
		roles, err := c.store.Roles(c.ctx)
		if err != nil {
			return err
		}
		// The check runs on the owner as read inside the transaction; a
		// refused change leaves the owner as it is.
		var refused error
		saved, err := c.store.UpdateOwner(c.ctx, id, k.kind, func(o *keystore.Owner) {
			next := *o
			k.readOwner(body, &next)
			refused = c.beyondCaller("cannot change this "+k.noun,
				gained(roleCapabilities(roles, o.RoleIDs), roleCapabilities(roles, next.RoleIDs)))
			if refused == nil {
				*o = next
			}
		}, c.op)
		if refused != nil {
			return refused
		}
		if err != nil {
			return err
		}
		c.forgetOwner(id)
		return c.reply(http.StatusOK, k.view(saved))
	}
}

// deleteOwner serves DELETE /users/{id} and DELETE /serviceAccounts/{id}.
// A user who owns keys is refused (409) unless deleteKeys=true; a service
// account's keys are always deleted with it.
func deleteOwner(k ownerRoutes, id string) apiFunc {
	return func(c *apiCall) error {
		c.noun = k.noun
		if err := c.require(capsUsersWrite...); err != nil {
			return err
		}
		cascade := k.kind == keystore.OwnerServiceAccount
		if s := c.r.URL.Query().Get("deleteKeys"); s != "" {
			v, err := strconv.ParseBool(s)
			if err != nil {
				return apiErrorf(http.StatusBadRequest, k.noun+":invalid_deleteKeys", "deleteKeys must be true or false")
			}
			cascade = cascade || v
		}
		if _, err := c.store.DeleteOwner(c.ctx, id, k.kind, cascade, c.op); err != nil {
			return err
		}
		c.forgetOwner(id)
		return c.noContent()
	}
}
