package mgmtapi

import (
	"net/http"

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
