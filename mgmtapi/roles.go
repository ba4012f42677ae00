package mgmtapi

import (
	"net/http"
	"slices"

	"github.com/accessgate/accessgate/keystore"
)

// readRole reads the writable fields of a role from the body into r;
// fields left out keep their value.
func readRole(body *jsonBody, r *keystore.Role) {
	if v := body.str("name"); v != nil {
		r.Name = *v
	}
	if v := body.str("description"); v != nil {
		r.Description = *v
	}
	if v := body.strs("capabilities"); v != nil {
		r.Capabilities = *v
	}
}

// listRoles serves GET /roles: the roles in ID order, limit at a time;
// the token is the last ID of the previous page.
func listRoles(c *apiCall) error {
	c.noun = "role"
	if err := c.require(capsUsersRead...); err != nil {
		return err
	}
	limit, token, err := c.paging()
	if err != nil {
		return err
	}
	roles, err := c.store.Roles(c.ctx)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(roles))
	for id := range roles {
		if id > token {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var next *string
	if len(ids) > limit {
		ids = ids[:limit]
		next = nextToken(ids[limit-1])
	}
	data := make([]keystore.RoleView, 0, len(ids))
	for _, id := range ids {
		data = append(data, keystore.ViewRole(roles[id]))
	}
	return c.reply(http.StatusOK, listPage[keystore.RoleView]{Data: data, Next: next})
}

// createRole serves POST /roles. The id may be given; otherwise one is
// generated. It may hold only capabilities the calling key holds.
func createRole(c *apiCall) error {
	c.noun = "role"
	if err := c.require(capsUsersWrite...); err != nil {
		return err
	}
	body, err := c.readBody()
	if err != nil {
		return err
	}
	var r keystore.Role
	if v := body.str("id"); v != nil {
		r.ID = *v
	}
	readRole(body, &r)
	if err := body.err(); err != nil {
		return err
	}
	if err := c.beyondCaller("cannot create this role", r.Capabilities); err != nil {
		return err
	}
	saved, err := c.store.CreateRole(c.ctx, r, c.op)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, keystore.ViewRole(saved))
}

// getRole serves GET /roles/{id}.
func getRole(id string) apiFunc {
	return func(c *apiCall) error {
		c.noun = "role"
		if err := c.require(capsUsersRead...); err != nil {
			return err
		}
		r, err := c.store.Role(c.ctx, id)
		if err != nil {
			return err
		}
		return c.reply(http.StatusOK, keystore.ViewRole(r))
	}
}

// updateRole serves PUT /roles/{id}; fields left out keep their value. A
// change of capabilities reaches every key of the role's holders at once;
// it may add only capabilities the calling key holds.
func updateRole(id string) apiFunc {
	return func(c *apiCall) error {
		c.noun = "role"
		if err := c.require(capsUsersWrite...); err != nil {
			return err
		}
		if _, err := c.store.Role(c.ctx, id); err != nil {
			return err
		}
		body, err := c.readBody()
		if err != nil {
			return err
		}
		readRole(body, &keystore.Role{})
		if err := body.err(); err != nil {
			return err
		}
		var refused error
		saved, err := c.store.UpdateRole(c.ctx, id, func(r *keystore.Role) {
			next := *r
			readRole(body, &next)
			refused = c.beyondCaller("cannot change this role", gained(r.Capabilities, next.Capabilities))
			if refused == nil {
				*r = next
			}
		}, c.op)
		if refused != nil {
			return refused
		}
		if err != nil {
			return err
		}
		c.forgetAll()
		return c.reply(http.StatusOK, keystore.ViewRole(saved))
	}
}

// deleteRole serves DELETE /roles/{id}; a role someone holds is refused
// (409).
func deleteRole(id string) apiFunc {
	return func(c *apiCall) error {
		c.noun = "role"
		if err := c.require(capsUsersWrite...); err != nil {
			return err
		}
		if err := c.store.DeleteRole(c.ctx, id, c.op); err != nil {
			return err
		}
		c.forgetAll()
		return c.noContent()
	}
}
