package mgmtapi

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/accessgate/accessgate/keystore"
)

// listScopes serves GET /accessKeys/scopes: the scope catalogue, followed
// by the scopes that access_keys handlers of the running configuration
// map to routes and the catalogue does not describe. Any valid key may
// read it.
func listScopes(c *apiCall) error {
	data := keystore.ScopeCatalogue()
	if c.h.MappedScopes != nil {
		for _, id := range c.h.MappedScopes() {
			if _, known := keystore.LookupScope(id); !known {
				data = append(data, keystore.DescribeScope(id))
			}
		}
	}
	return c.reply(http.StatusOK, dataOnly[keystore.ScopeDef]{Data: data})
}

// checkScopes refuses scopes that the catalogue does not list, with one
// error per unknown scope.
func (c *apiCall) checkScopes(scopes []string) error {
	var mapped []string
	if c.h.MappedScopes != nil && len(scopes) > 0 {
		mapped = c.h.MappedScopes()
	}
	var problems []apiProblem
	for _, s := range scopes {
		_, known := keystore.LookupScope(s)
		if !known && !slices.Contains(mapped, s) {
			problems = append(problems, apiProblem{Code: "accessKey:invalid_scope",
				Message: "unknown scope " + strconv.Quote(s) + "; GET /api/v1/accessKeys/scopes lists the scopes"})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &apiError{status: http.StatusBadRequest, problems: problems}
}
