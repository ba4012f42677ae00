package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
)

// gate is the credential and CORS check shared by the access_keys and
// access_keys_api handlers: Basic credentials, checksum, cache or Redis,
// then the key's origin allowlist.
type gate struct {
	app       *App
	logger    *zap.Logger
	challenge string
}

func (g *gate) provision(ctx caddy.Context, realm string) error {
	g.logger = ctx.Logger()
	g.challenge = fmt.Sprintf("Basic realm=%q", realm)
	app, err := ctx.App("access_keys")
	if err != nil {
		return fmt.Errorf("getting access_keys app: %w", err)
	}
	g.app = app.(*App)
	return nil
}

// check authenticates r and applies the key's CORS allowlist. When it
// returns false it has already answered the request.
func (g *gate) check(w http.ResponseWriter, r *http.Request) (*entry, bool) {
	st := g.app.state
	client, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	id, secret, ok := parseBasic(r.Header.Get("Authorization"))
	if !ok || !keystore.ValidAccessID(id) || !keystore.ValidAccessKey(secret) {
		st.failed("", client)
		g.reject(w, r, rejection{status: http.StatusUnauthorized, reason: string(keystore.ReasonMalformed), accessID: printableID(id)})
		return nil, false
	}
	e, err := st.authenticate(r.Context(), id, secret, client)
	if err != nil {
		var ae *keystore.AuthError
		var le *limitError
		if errors.As(err, &le) {
			g.reject(w, r, rejection{status: http.StatusTooManyRequests, reason: "too_many_failures", accessID: id, retryAfter: le.retryAfter})
			return nil, false
		}
		if errors.As(err, &ae) {
			rej := rejection{status: http.StatusUnauthorized, reason: string(ae.Reason), accessID: id}
			if ae.Key != nil {
				rej.label, rej.ownerID = ae.Key.Label, ae.Key.OwnerID
			}
			g.reject(w, r, rej)
			return nil, false
		}
		g.reject(w, r, rejection{status: http.StatusServiceUnavailable, reason: "redis_unavailable", accessID: id, err: err})
		return nil, false
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		norm, err := keystore.NormalizeOrigin(origin)
		if err != nil || !keystore.OriginAllowed(e.ident.Allowlist, norm) {
			g.reject(w, r, rejection{status: http.StatusForbidden, reason: "origin_not_allowlisted", ident: e.ident, origin: origin})
			return nil, false
		}
	}
	st.lastUsed.touch(e, time.Now())
	return e, true
}

// printableID keeps a presented Access ID for logs only if it has the shape
// of one, so that logs never carry arbitrary client bytes (or a secret
// typed into the wrong field).
func printableID(id string) string {
	if keystore.ValidAccessID(id) {
		return id
	}
	return ""
}
