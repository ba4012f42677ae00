package mgmtapi

import (
	"context"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
	"github.com/accessgate/accessgate/mgmtapi/console"
	"github.com/accessgate/accessgate/usage"
)

// timeout bounds the Redis work of one management request, so that an
// outage answers 503 instead of holding the request.
const timeout = 10 * time.Second

// Authenticator is the gateway's front door, which the management API
// shares so that a key works the same way through both.
type Authenticator interface {
	// Preflight answers r and reports true when r is a CORS preflight
	// request, which needs no credentials; it reports false, having
	// written nothing, for any other request.
	Preflight(w http.ResponseWriter, r *http.Request) bool

	// Authenticate checks the credentials of r and the calling key's
	// origin allowlist, and returns the caller's identity. When it
	// returns false it has answered r itself, with body A (401, 403, 429
	// or 503).
	Authenticate(w http.ResponseWriter, r *http.Request) (*keystore.Identity, bool)
}

// Forgetter drops what one gateway instance cached about keys, at once,
// after a change made through the API; other instances follow the
// invalidation message that the store publishes.
type Forgetter interface {
	// ForgetKey drops the cached authentications of one key.
	ForgetKey(accessID string)
	// ForgetOwner drops an owner and the cached authentications of its
	// keys.
	ForgetOwner(ownerID string)
	// ForgetAll drops everything cached, after a change that may concern
	// any key (a role, a policy).
	ForgetAll()
}

// Instance is the state of the gateway instance that one management
// request works on.
type Instance interface {
	Forgetter

	// Store returns the key store.
	Store() *keystore.Store

	// LastUsed returns the latest use of a key that the instance has not
	// written to Redis yet, or the zero time.
	LastUsed(accessID string) time.Time

	// QuotaUsages reads, in one round trip, how much of its quota each
	// subject (named by keystore.Key.LimitID) has used in the current
	// period, and when that period ends; in the order given.
	QuotaUsages(ctx context.Context, subs []limits.QuotaSubject) ([]limits.QuotaUse, error)

	// Usage returns the store of the keys' usage counts.
	Usage() *usage.Store

	// AuditRefusal queues the audit event of a refused request, off the
	// request path (the queue may drop events under a flood).
	AuditRefusal(keystore.Event)
}

// Handler serves the management API under /api/v1 (access keys, the two
// key policies, the scope catalogue, users, service accounts, roles and
// usage analytics)
// and the web console under /console/, as a plain net/http handler over
// the key store.
//
// Every request but those of the console, the OpenAPI document and CORS
// preflights authenticates through Auth; what it may then do follows the
// capabilities in the calling key's effective scopes (see access.go). A
// path the API does not serve is answered 404 body B once the credentials
// are valid, so that the handler answers every request it gets.
//
// A Handler is safe for concurrent use once its fields are set; they must
// not change while it serves.
type Handler struct {
	// Auth authenticates requests. Required.
	Auth Authenticator

	// Hold returns the instance state that a request works on, held
	// until ctx ends: a reload of the gateway must not close it under
	// the request. Required.
	Hold func(ctx context.Context) Instance

	// ClientIP returns the client address of a request, as audit events
	// record it. Default: the host of the request's RemoteAddr.
	ClientIP func(r *http.Request) string

	// MappedScopes returns, sorted, the scopes that the running
	// configuration maps to routes; GET /accessKeys/scopes lists those
	// the catalogue does not describe after it. Default: none.
	MappedScopes func() []string

	// ScopeCatalog chooses the scopes GET /accessKeys/scopes lists and
	// keys may be given: ScopeCatalogGateway (the default, also when
	// empty) or ScopeCatalogSumo.
	ScopeCatalog string

	// Logger logs the server-side failures of requests, with their error
	// id. Default: no logging.
	Logger *zap.Logger

	// LogErrorID, when set, is told the error id of every error answered
	// with body B, so that the server's access log can carry it.
	LogErrorID func(r *http.Request, errorID string)
}

// ServeHTTP implements http.Handler. It answers every request itself.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The web console is static and public: it signs in with an access
	// key and then uses only the API below.
	if console.Serve(w, r) {
		return
	}
	// The OpenAPI document is public too: it describes the API, it
	// holds nothing of the organisation.
	if serveOpenAPI(w, r) {
		return
	}
	if h.Auth.Preflight(w, r) {
		return
	}
	h.serveAPI(w, r)
}

// serveAPI authenticates and serves one request of the management API,
// answering 404 for a path it does not serve.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	if sameOrigin(r) {
		// Browsers send Origin on same-origin writes too; the console
		// served by this handler is not a cross-origin caller.
		r.Header.Del("Origin")
	}
	ident, ok := h.Auth.Authenticate(w, r)
	if !ok {
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	c := h.newCall(ctx, w, r, ident)
	var methods apiMethods
	if segs, ok := apiSegments(r.URL.Path); ok {
		methods = routeAPI(segs)
	}
	if methods == nil {
		c.fail(apiErrorf(http.StatusNotFound, codeNotFound, "no such endpoint: %s", r.URL.Path))
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	fn := methods[method]
	if fn == nil {
		w.Header().Set("Allow", methods.allow())
		c.fail(apiErrorf(http.StatusMethodNotAllowed, codeMethodUnsupported, "method %s is not supported here; use %s", r.Method, methods.allow()))
		return
	}
	if err := fn(c); err != nil {
		c.fail(err)
	}
}

// newCall gathers what the endpoints of one request need, holding the
// instance state for as long as ctx lives.
func (h *Handler) newCall(ctx context.Context, w http.ResponseWriter, r *http.Request, ident *keystore.Identity) *apiCall {
	inst := h.Hold(ctx)
	return &apiCall{
		h:     h,
		ctx:   ctx,
		w:     w,
		r:     r,
		ident: ident,
		inst:  inst,
		store: inst.Store(),
		noun:  "accessKey",
		op: keystore.Operator{
			ID:        ident.OwnerID,
			Email:     ident.Email,
			AccessID:  ident.AccessID,
			Interface: keystore.InterfaceAPI,
			SourceIP:  h.clientIP(r),
		},
	}
}

// clientIP returns the client address of r.
func (h *Handler) clientIP(r *http.Request) string {
	if h.ClientIP != nil {
		return h.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// logger returns the handler's logger, or one that discards.
func (h *Handler) logger() *zap.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return zap.NewNop()
}

// apiCall is one management request being served.
type apiCall struct {
	h     *Handler
	ctx   context.Context
	w     http.ResponseWriter
	r     *http.Request
	ident *keystore.Identity
	op    keystore.Operator
	inst  Instance
	store *keystore.Store
	// noun names the resource in error codes: accessKey, user,
	// serviceAccount, role or policy.
	noun string
}

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
