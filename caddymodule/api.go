package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/mgmtapi/console"
)

func init() {
	caddy.RegisterModule(APIHandler{})
	httpcaddyfile.RegisterHandlerDirective("access_keys_api", parseAPIDirective)
	httpcaddyfile.RegisterDirectiveOrder("access_keys_api", httpcaddyfile.Before, "respond")
}

// apiTimeout bounds the Redis work of one management request, so that an
// outage answers 503 instead of holding the request.
const apiTimeout = 10 * time.Second

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
type APIHandler struct {
	// Realm is the realm of the WWW-Authenticate challenge. Default: API.
	Realm string `json:"realm,omitempty"`

	gate   gate
	logger *zap.Logger
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
	h.logger = ctx.Logger()
	return h.gate.provision(ctx, h.Realm)
}

// Validate checks the handler's settings.
func (h *APIHandler) Validate() error {
	if strings.ContainsAny(h.Realm, "\"\\\r\n") {
		return errors.New("access_keys_api: realm must not contain quotes, backslashes or line breaks")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It answers every
// request itself and never calls next.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The web console is static and public: it signs in with an access
	// key and then uses only the API below.
	if console.Serve(w, r) {
		return nil
	}
	serve := caddyhttp.HandlerFunc(h.serveAPI)
	if isPreflight(r) {
		// Whatever the preflight does not answer goes to the API, never
		// to the next handler.
		return (&Handler{}).preflight(w, r, serve)
	}
	return serve(w, r)
}

// serveAPI authenticates and serves one request of the management API,
// answering 404 for a path it does not serve.
func (h *APIHandler) serveAPI(w http.ResponseWriter, r *http.Request) error {
	if sameOrigin(r) {
		// Browsers send Origin on same-origin writes too; the console
		// served by this handler is not a cross-origin caller.
		r.Header.Del("Origin")
	}
	e, ok := h.gate.check(w, r)
	if !ok {
		return nil
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	c := h.newCall(ctx, w, r, e.ident)
	var methods apiMethods
	if segs, ok := apiSegments(r.URL.Path); ok {
		methods = routeAPI(segs)
	}
	if methods == nil {
		c.fail(apiErrorf(http.StatusNotFound, codeNotFound, "no such endpoint: %s", r.URL.Path))
		return nil
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	fn := methods[method]
	if fn == nil {
		w.Header().Set("Allow", methods.allow())
		c.fail(apiErrorf(http.StatusMethodNotAllowed, codeMethodUnsupported, "method %s is not supported here; use %s", r.Method, methods.allow()))
		return nil
	}
	if err := fn(c); err != nil {
		c.fail(err)
	}
	return nil
}

// newCall gathers what the endpoints of one request need.
func (h *APIHandler) newCall(ctx context.Context, w http.ResponseWriter, r *http.Request, ident *keystore.Identity) *apiCall {
	clientIP, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	st := h.gate.app.holdFor(ctx)
	return &apiCall{
		h:     h,
		ctx:   ctx,
		w:     w,
		r:     r,
		ident: ident,
		st:    st,
		store: st.store,
		noun:  "accessKey",
		op: keystore.Operator{
			ID:        ident.OwnerID,
			Email:     ident.Email,
			AccessID:  ident.AccessID,
			Interface: keystore.InterfaceAPI,
			SourceIP:  clientIP,
		},
	}
}

// apiCall is one management request being served.
type apiCall struct {
	h     *APIHandler
	ctx   context.Context
	w     http.ResponseWriter
	r     *http.Request
	ident *keystore.Identity
	op    keystore.Operator
	st    *state
	store *keystore.Store
	// noun names the resource in error codes: accessKey, user,
	// serviceAccount, role or policy.
	noun string
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
)

// sameOrigin reports whether the request's Origin is the origin it was
// sent to (scheme and Host), compared after normalisation.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || r.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	self, err := keystore.NormalizeOrigin(scheme + "://" + r.Host)
	if err != nil {
		return false
	}
	got, err := keystore.NormalizeOrigin(origin)
	return err == nil && got == self
}
