package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/mgmtapi"
	"github.com/accessgate/accessgate/usage"
)

func init() {
	caddy.RegisterModule(APIHandler{})
	httpcaddyfile.RegisterHandlerDirective("access_keys_api", parseAPIDirective)
	httpcaddyfile.RegisterDirectiveOrder("access_keys_api", httpcaddyfile.Before, "respond")
}

// APIHandler serves the Sumo Logic-compatible access key management API:
// access keys, the two key policies, the scope catalogue, users, service
// accounts and roles, all under /api/v1. Requests authenticate with an
// access key exactly as through the access_keys handler; what they may do
// follows the capabilities in the calling key's effective scopes:
//
//   - createAccessKeys: create keys for oneself, and list, update, rotate
//     and delete one's own keys (the Sumo Logic scopes
//     viewPersonalAccessKeys and managePersonalAccessKeys work too);
//   - manageAccessKeys: every key of the organisation, and the keys of
//     service accounts;
//   - manageOrgSettings: change the policies (anyone may read them);
//   - manageUsersAndRoles: users, service accounts and roles
//     (viewUsersAndRoles may read them).
//
// A key that exists but belongs to someone else is answered 404 when the
// caller may not manage other people's keys, so that Access IDs do not
// leak. Only its owner rotates a user's key (rotating hands out a
// secret); holders of manageAccessKeys rotate the keys of service
// accounts. No request gives more than the calling key's own effective
// scopes: a key created, rotated or re-scoped must have effective scopes
// the calling key holds, and roles given to an owner or added to a role
// may grant only capabilities the calling key holds.
//
// The handler serves the path after the last "/api/v1" of the request
// path (or the whole path when it has none, as behind handle_path), when
// it starts with accessKeys, policies, serviceAccounts, users or roles,
// and the web console under /console/. It answers every request routed
// to it and never calls the next handler: any other path is answered 401
// without valid credentials and 404 with them, so that nothing placed
// after it in a route is reached unauthenticated.
//
// The API itself is mgmtapi.Handler; this module connects it to the
// access_keys app: the gate of the access_keys handler, the app's state
// and caches, Caddy's client address and access log, and the scopes of
// the running configuration.
type APIHandler struct {
	// Realm is the realm of the WWW-Authenticate challenge. Default: API.
	Realm string `json:"realm,omitempty"`

	// ScopeCatalog chooses the scopes that GET /api/v1/accessKeys/scopes
	// lists and that keys may be given. "gateway" (the default): the
	// scopes that access_keys handlers of the running configuration map
	// to routes, and the key-management capabilities this API checks.
	// "sumo": Sumo Logic's scope catalogue, and the mapped scopes.
	ScopeCatalog string `json:"scope_catalog,omitempty"`

	gate gate
	api  mgmtapi.Handler
}

// CaddyModule returns the Caddy module information.
func (APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.access_keys_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// Provision sets the handler up and gets the access_keys app.
func (h *APIHandler) Provision(ctx caddy.Context) error {
	if h.Realm == "" {
		h.Realm = "API"
	}
	if err := h.gate.provision(ctx, h.Realm); err != nil {
		return err
	}
	h.api = mgmtapi.Handler{
		Auth:         apiAuth{&h.gate},
		Hold:         h.hold,
		ClientIP:     clientIP,
		MappedScopes: mappedScopes,
		ScopeCatalog: h.ScopeCatalog,
		Logger:       ctx.Logger(),
		LogErrorID:   logErrorID,
	}
	return nil
}

// Validate checks the handler's settings.
func (h *APIHandler) Validate() error {
	if strings.ContainsAny(h.Realm, "\"\\\r\n") {
		return errors.New("access_keys_api: realm must not contain quotes, backslashes or line breaks")
	}
	switch h.ScopeCatalog {
	case "", mgmtapi.ScopeCatalogGateway, mgmtapi.ScopeCatalogSumo:
	default:
		return fmt.Errorf("access_keys_api: scope_catalog must be %q or %q, not %q", mgmtapi.ScopeCatalogGateway, mgmtapi.ScopeCatalogSumo, h.ScopeCatalog)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It answers every
// request itself and never calls next.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.api.ServeHTTP(w, r)
	return nil
}

// hold returns the app's state for a management request, held until ctx
// ends, so that a reload never closes it under the request.
func (h *APIHandler) hold(ctx context.Context) mgmtapi.Instance {
	return apiInstance{h.gate.app.holdFor(ctx)}
}

// apiAuth authenticates management requests with the gate of the
// access_keys handler.
type apiAuth struct{ g *gate }

// Preflight answers a CORS preflight as the access_keys handler does with
// preflight respond (its default).
func (a apiAuth) Preflight(w http.ResponseWriter, r *http.Request) bool {
	if !isPreflight(r) {
		return false
	}
	// A handler that responds to preflights never calls next.
	_ = (&Handler{}).preflight(w, r, nil)
	return true
}

// Authenticate checks the credentials and the key's origin allowlist.
func (a apiAuth) Authenticate(w http.ResponseWriter, r *http.Request) (*keystore.Identity, bool) {
	e, ok := a.g.check(w, r)
	if !ok {
		return nil, false
	}
	return e.ident, true
}

// apiInstance is the state a management request works on; its methods
// implement mgmtapi.Instance.
type apiInstance struct{ st *state }

func (i apiInstance) Store() *keystore.Store             { return i.st.store }
func (i apiInstance) LastUsed(accessID string) time.Time { return i.st.lastUsed.get(accessID) }
func (i apiInstance) ForgetKey(accessID string)          { i.st.forgetKey(accessID) }
func (i apiInstance) ForgetOwner(ownerID string)         { i.st.forgetOwner(ownerID) }
func (i apiInstance) ForgetAll()                         { i.st.forgetAll() }
func (i apiInstance) AuditRefusal(e keystore.Event)      { i.st.audit.reject(e) }

// Usage returns the store of the keys' usage counts, on the app's Redis.
func (i apiInstance) Usage() *usage.Store { return i.st.usageStore }

// QuotaUsages reads quota counters from the app's Redis.
func (i apiInstance) QuotaUsages(ctx context.Context, subs []limits.QuotaSubject) ([]limits.QuotaUse, error) {
	return limits.QuotaUsages(ctx, i.st.rdb, i.st.cfg.KeyPrefix, subs, i.st.now())
}

// logErrorID adds the error id of a management API error to the request's
// access log entry.
func logErrorID(r *http.Request, errorID string) {
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.String("access_keys_error_id", errorID))
	}
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

func parseAPIDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(APIHandler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	access_keys_api [{
//		realm <realm>
//		scope_catalog gateway|sumo
//	}]
func (h *APIHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("access_keys_api takes no arguments (got %q)", d.Val())
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "realm":
			realm, err := parseRealm(d)
			if err != nil {
				return err
			}
			h.Realm = realm
		case "scope_catalog":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.ScopeCatalog = d.Val()
			if h.ScopeCatalog != mgmtapi.ScopeCatalogGateway && h.ScopeCatalog != mgmtapi.ScopeCatalogSumo {
				return d.Errf("access_keys_api: scope_catalog must be %s or %s, not %q", mgmtapi.ScopeCatalogGateway, mgmtapi.ScopeCatalogSumo, h.ScopeCatalog)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("access_keys_api: unknown setting %q", opt)
		}
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddy.Validator             = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
	_ caddyfile.Unmarshaler       = (*APIHandler)(nil)
	_ mgmtapi.Authenticator       = apiAuth{}
	_ mgmtapi.Instance            = apiInstance{}
)
