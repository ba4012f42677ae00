package caddymodule

import (
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessgate/accessgate/keystore"
)

// listScopes serves GET /accessKeys/scopes: the scope catalogue, followed
// by the scopes that access_keys handlers of the running configuration
// map to routes and the catalogue does not describe. Any valid key may
// read it.
func listScopes(c *apiCall) error {
	data := keystore.ScopeCatalogue()
	for _, id := range mappedScopes() {
		if _, known := keystore.LookupScope(id); !known {
			data = append(data, keystore.DescribeScope(id))
		}
	}
	return c.reply(http.StatusOK, dataOnly[keystore.ScopeDef]{Data: data})
}

// mappedScopes returns, sorted, the scopes named by the scope rules of
// every access_keys handler in the running HTTP configuration, including
// those nested in subroutes (handle, route) and error routes.
func mappedScopes() []string {
	app, err := caddy.ActiveContext().AppIfConfigured("http")
	if err != nil {
		return nil
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return nil
	}
	var out []string
	var walk func(routes caddyhttp.RouteList, depth int)
	walk = func(routes caddyhttp.RouteList, depth int) {
		if depth > 32 {
			return
		}
		for _, rt := range routes {
			for _, h := range rt.Handlers {
				switch v := h.(type) {
				case *Handler:
					for _, rule := range v.Scopes {
						out = append(out, rule.Scope)
					}
				case *caddyhttp.Subroute:
					walk(v.Routes, depth+1)
				}
			}
		}
	}
	for _, srv := range httpApp.Servers {
		walk(srv.Routes, 0)
		if srv.Errors != nil {
			walk(srv.Errors.Routes, 0)
		}
		for _, nr := range srv.NamedRoutes {
			if nr != nil {
				walk(caddyhttp.RouteList{*nr}, 0)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
