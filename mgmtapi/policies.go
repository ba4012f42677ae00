package mgmtapi

import (
	"context"
	"net/http"

	"github.com/accessgate/accessgate/keystore"
)

// apiPolicy is one of the two key policies: where it is served, the field
// that holds it, and how it is read and set.
type apiPolicy struct {
	path  string
	field string
	get   func(keystore.Policies) int
	set   func(*keystore.Store, context.Context, int, keystore.Operator) (keystore.Policies, error)
}

// apiPolicies are served under /policies.
var apiPolicies = []apiPolicy{
	{
		path:  "accessKeysLifetime",
		field: "accessKeysLifetimeInDays",
		get:   func(p keystore.Policies) int { return p.LifetimeDays },
		set:   (*keystore.Store).SetLifetimeDays,
	},
	{
		path:  "disableUnusedAccessKeys",
		field: "unusedAccessKeysDisableAfterInDays",
		get:   func(p keystore.Policies) int { return p.UnusedDays },
		set:   (*keystore.Store).SetUnusedDays,
	},
}

// getPolicy serves GET /policies/...; any valid key may read the policies.
func getPolicy(p apiPolicy) apiFunc {
	return func(c *apiCall) error {
		c.noun = "policy"
		pol, err := c.store.Policies(c.ctx)
		if err != nil {
			return err
		}
		return c.reply(http.StatusOK, map[string]int{p.field: p.get(pol)})
	}
}

// putPolicy serves PUT /policies/...: the value is a whole number of days
// (0 = never), given as a number or a numeric string.
func putPolicy(p apiPolicy) apiFunc {
	return func(c *apiCall) error {
		c.noun = "policy"
		if err := c.require(capOrgSettings); err != nil {
			return err
		}
		body, err := c.readBody()
		if err != nil {
			return err
		}
		var days *int
		if body.require(p.field) {
			days = body.days(p.field)
		}
		if err := body.err(); err != nil {
			return err
		}
		pol, err := p.set(c.store, c.ctx, *days, c.op)
		if err != nil {
			return err
		}
		c.forgetAll()
		return c.reply(http.StatusOK, map[string]int{p.field: p.get(pol)})
	}
}
