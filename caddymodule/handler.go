package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/usage"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Values of Handler.Unmapped and Handler.Preflight.
const (
	UnmappedDeny     = "deny"
	UnmappedAllow    = "allow"
	PreflightRespond = "respond"
	PreflightPass    = "pass"
)

// Identity headers set for the upstream.
const (
	HeaderAccessID     = "X-Access-Id"
	HeaderAccessOwner  = "X-Access-Owner"
	HeaderAccessScopes = "X-Access-Scopes"
)

// Handler guards the next handler with access keys: it verifies the Basic
// credentials of each request, enforces the key's CORS allowlist and the
// scopes mapped to the route, and tells the upstream who called.
type Handler struct {
	// Realm is the realm of the WWW-Authenticate challenge. Default: API.
	Realm string `json:"realm,omitempty"`

	// Scopes map scopes to routes. A request needs every scope whose rule
	// matches it.
	Scopes []ScopeRule `json:"scopes,omitempty"`

	// Unmapped decides requests that no scope rule matches: deny
	// (default) answers 403; allow lets any valid key pass.
	Unmapped string `json:"unmapped,omitempty"`

	// PassCredentials keeps the Authorization header for the upstream. By
	// default it is removed.
	PassCredentials bool `json:"pass_credentials,omitempty"`

	// Preflight decides CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method), which never carry credentials:
	// respond (default) answers 204 with the CORS headers; pass hands them
	// to the next handler. Any other OPTIONS request needs credentials.
	Preflight string `json:"preflight,omitempty"`

	// StrictPaths refuses, with 400 and before any credential work, a
	// request path the upstream might read otherwise than the scope rules
	// judged it: one with a dot segment in any spelling (`..`, `.`,
	// `..;x`, `%2e%2e`), a backslash (raw or `%5c`) or an encoded percent
	// sign (`%25`, double encoding). Default: true; false turns the check
	// off, for upstreams that need such paths.
	StrictPaths *bool `json:"strict_paths,omitempty"`

	// Usage counts the requests of existing keys through this handler for
	// usage analytics (CONTRACT §9). Default: true; false leaves this
	// handler's requests, allowed or refused, out of the keys' usage, for
	// routes such as health checks whose traffic would only crowd it out.
	// Last uses, the key policies and the usage limits are unaffected.
	Usage *bool `json:"usage,omitempty"`

	gate       gate
	allowAny   bool
	passPreflt bool
	// laxPaths is StrictPaths turned off: the zero value is strict.
	laxPaths bool
	// memo remembers rule matches per path; nil when rules use
	// placeholders or escaped patterns.
	memo *routeMemo
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.access_keys",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets the handler up and gets the access_keys app.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.Realm == "" {
		h.Realm = "API"
	}
	h.allowAny = h.Unmapped == UnmappedAllow
	h.passPreflt = h.Preflight == PreflightPass
	h.laxPaths = h.StrictPaths != nil && !*h.StrictPaths
	if memoizable(h.Scopes) {
		h.memo = new(routeMemo)
	}
	for i := range h.Scopes {
		if err := h.Scopes[i].provision(ctx); err != nil {
			return err
		}
	}
	if err := h.gate.provision(ctx, h.Realm); err != nil {
		return err
	}
	h.gate.countUsage = h.Usage == nil || *h.Usage
	return nil
}

// Validate checks the handler's settings.
func (h *Handler) Validate() error {
	switch h.Unmapped {
	case "", UnmappedDeny, UnmappedAllow:
	default:
		return fmt.Errorf("access_keys: unmapped must be deny or allow, not %q", h.Unmapped)
	}
	switch h.Preflight {
	case "", PreflightRespond, PreflightPass:
	default:
		return fmt.Errorf("access_keys: preflight must be respond or pass, not %q", h.Preflight)
	}
	if strings.ContainsAny(h.Realm, "\"\\\r\n") {
		return errors.New("access_keys: realm must not contain quotes, backslashes or line breaks")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It is the request path,
// in order: the strict path check, the preflight, authentication and the
// CORS allowlist (gate.check in gate.go, which reads on from credentials
// to cache to Redis), the scope rules, the identity headers and
// placeholders, then the next handler. Every request of an existing key is
// counted for usage analytics (usagecount.go), unless usage is off.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.laxPaths && badRequestPath(r) {
		h.refuseBadPath(w, r)
		return nil
	}
	if isPreflight(r) {
		return h.preflight(w, r, next)
	}
	e, ok := h.gate.check(w, r)
	if !ok {
		return nil
	}
	ident := e.ident
	if missing, mapped, err := h.missingScope(r, ident); err != nil {
		if h.gate.countUsage {
			h.gate.app.current().countUsage(ident.AccessID, usage.Status5xx)
		}
		return caddyhttp.Error(http.StatusInternalServerError, err)
	} else if missing != "" || !mapped && !h.allowAny {
		h.gate.reject(w, r, rejection{status: http.StatusForbidden, reason: "scope_missing", ident: ident, scope: missing})
		return nil
	}
	if sub := e.subject; sub != nil {
		// The usage limits (usagelimits.go). A concurrency slot is given
		// back when the request ends, so its state is held until then.
		st := stateRef{state: h.gate.app.current()}
		if sub.Concurrency > 0 {
			st = h.gate.app.acquire()
			defer st.release()
		}
		d, ok := h.admit(w, r, st.state, e)
		if !ok {
			return nil
		}
		if d.Holds() {
			defer st.limiter.Release(r.Context(), &d)
		}
	}

	// Setting the identity headers replaces any copies the client sent:
	// the server stores header names in canonical form. The request gets
	// its own copy of the values (one allocation), since later handlers
	// may edit header values in place.
	hdr := r.Header
	vals := new([3]string)
	*vals = e.hdrs
	hdr[HeaderAccessID] = vals[valAccessID : valAccessID+1 : valAccessID+1]
	hdr[HeaderAccessOwner] = vals[valOwner : valOwner+1 : valOwner+1]
	hdr[HeaderAccessScopes] = vals[valScopes : valScopes+1 : valScopes+1]
	guardIdentityHeaders(r)
	if !h.PassCredentials {
		delete(hdr, "Authorization")
	}
	if origin := headerValue(hdr, "Origin"); origin != "" {
		wh := w.Header()
		wh.Set("Access-Control-Allow-Origin", origin)
		wh.Add("Vary", "Origin")
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", e.vals[valOwner])
		repl.Set("http.auth.user.access_id", e.vals[valAccessID])
		repl.Set("http.auth.user.scopes", e.vals[valScopes])
	}
	if !h.gate.countUsage {
		return next.ServeHTTP(w, r)
	}
	return serveCounted(h.gate.app.current(), e, w, r, next)
}

// missingScope returns the first scope a request needs that the identity
// lacks, and whether any rule matched the request at all.
func (h *Handler) missingScope(r *http.Request, ident *keystore.Identity) (missing string, mapped bool, err error) {
	if !h.memo.holds(r) {
		return h.missingScopeByRules(r, ident)
	}
	matched, known := h.memo.get(r)
	if !known {
		if matched, err = h.matchingRules(r); err != nil {
			return "", false, err
		}
		h.memo.put(r, matched)
	}
	for _, i := range matched {
		if s := h.Scopes[i].Scope; !ident.HasScope(s) {
			return s, true, nil
		}
	}
	return "", len(matched) > 0, nil
}

// missingScopeByRules is missingScope running every rule's matcher.
func (h *Handler) missingScopeByRules(r *http.Request, ident *keystore.Identity) (missing string, mapped bool, err error) {
	for i := range h.Scopes {
		rule := &h.Scopes[i]
		ok, err := rule.matches(r)
		if err != nil {
			return "", false, err
		}
		if !ok {
			continue
		}
		mapped = true
		if !ident.HasScope(rule.Scope) {
			return rule.Scope, true, nil
		}
	}
	return "", mapped, nil
}

// matchingRules returns the indexes of the scope rules that match r.
func (h *Handler) matchingRules(r *http.Request) ([]int, error) {
	var out []int
	for i := range h.Scopes {
		ok, err := h.Scopes[i].matches(r)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// isPreflight reports whether r is a CORS preflight: an OPTIONS request
// with Origin and Access-Control-Request-Method. Any other OPTIONS request
// needs credentials like every other method.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && headerValue(r.Header, "Origin") != "" &&
		headerValue(r.Header, "Access-Control-Request-Method") != ""
}

// preflight answers or passes a CORS preflight without credential work.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	hdr := r.Header
	delete(hdr, HeaderAccessID)
	delete(hdr, HeaderAccessOwner)
	delete(hdr, HeaderAccessScopes)
	if h.passPreflt {
		guardIdentityTrailers(r)
		return next.ServeHTTP(w, r)
	}
	wh := w.Header()
	if origin := hdr.Get("Origin"); origin != "" {
		wh.Set("Access-Control-Allow-Origin", origin)
		wh.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		wh.Set("Access-Control-Allow-Headers", allowHeaders(hdr.Get("Access-Control-Request-Headers")))
		wh.Set("Access-Control-Max-Age", "600")
		wh.Add("Vary", "Origin")
		wh.Add("Vary", "Access-Control-Request-Method")
		wh.Add("Vary", "Access-Control-Request-Headers")
	}
	wh.Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// allowHeaders lists the request headers a preflight may allow: those asked
// for (when they are well-formed tokens), plus Authorization and
// Content-Type.
func allowHeaders(requested string) string {
	out := []string{"Authorization", "Content-Type"}
	for _, f := range strings.Split(requested, ",") {
		f = strings.TrimSpace(f)
		if f == "" || !isToken(f) || strings.EqualFold(f, "authorization") || strings.EqualFold(f, "content-type") || len(out) >= 32 {
			continue
		}
		out = append(out, f)
	}
	return strings.Join(out, ", ")
}

func isToken(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
