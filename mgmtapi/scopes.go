package mgmtapi

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/accessgate/accessgate/keystore"
)

// Scope catalogues of Handler.ScopeCatalog.
const (
	// ScopeCatalogGateway lists the scopes that the running configuration
	// maps to routes and the key-management capabilities that the
	// management API itself checks.
	ScopeCatalogGateway = "gateway"
	// ScopeCatalogSumo lists Sumo Logic's scope catalogue and the scopes
	// that the running configuration maps to routes.
	ScopeCatalogSumo = "sumo"
)

// managementScopes are the capabilities that the management API checks
// (see access.go), in the order the gateway catalogue lists them.
var managementScopes = []string{
	capCreateKeys, capManageKeys, capViewPersonal, capManagePersonal,
	capViewUsers, capManageUsers, capOrgSettings,
}

// scopeCatalogue returns the scopes keys may be given, as
// GET /accessKeys/scopes lists them. With the Sumo Logic catalogue: that
// catalogue, followed by the mapped scopes it does not describe. With the
// gateway catalogue (the default): the management capabilities, in their
// catalogue groups, followed by the other mapped scopes, in the gateway
// group.
func (h *Handler) scopeCatalogue() []keystore.ScopeDef {
	var mapped []string
	if h.MappedScopes != nil {
		mapped = h.MappedScopes()
	}
	if h.ScopeCatalog == ScopeCatalogSumo {
		data := keystore.ScopeCatalogue()
		for _, id := range mapped {
			if _, known := keystore.LookupScope(id); !known && !slices.ContainsFunc(data, func(d keystore.ScopeDef) bool { return d.ID == id }) {
				data = append(data, keystore.DescribeScope(id))
			}
		}
		return data
	}
	data := make([]keystore.ScopeDef, 0, len(managementScopes)+len(mapped))
	for _, id := range managementScopes {
		d, _ := keystore.LookupScope(id)
		data = append(data, d)
	}
	for _, id := range mapped {
		if slices.ContainsFunc(data, func(d keystore.ScopeDef) bool { return d.ID == id }) {
			continue
		}
		d, known := keystore.LookupScope(id)
		if !known {
			d = keystore.DescribeScope(id)
		}
		d.Group = keystore.GatewayScopeGroup
		data = append(data, d)
	}
	return data
}

// listScopes serves GET /accessKeys/scopes: the scope catalogue that
// Handler.ScopeCatalog chooses. Any valid key may read it.
func listScopes(c *apiCall) error {
	return c.reply(http.StatusOK, dataOnly[keystore.ScopeDef]{Data: c.h.scopeCatalogue()})
}

// checkScopes refuses scopes that the catalogue does not list, with one
// error per unknown scope.
func (c *apiCall) checkScopes(scopes []string) error {
	if len(scopes) == 0 {
		return nil
	}
	catalogue := c.h.scopeCatalogue()
	var problems []apiProblem
	for _, s := range scopes {
		if !slices.ContainsFunc(catalogue, func(d keystore.ScopeDef) bool { return d.ID == s }) {
			problems = append(problems, apiProblem{Code: "accessKey:invalid_scope",
				Message: "unknown scope " + strconv.Quote(s) + "; GET /api/v1/accessKeys/scopes lists the scopes"})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &apiError{status: http.StatusBadRequest, problems: problems}
}
