package caddymodule

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/keystore"
)

// rejection describes a refused request.
type rejection struct {
	status   int
	reason   string
	accessID string
	label    string
	ownerID  string
	ident    *keystore.Identity
	origin   string
	scope    string
	err      error
	// retryAfter is the wait to announce with a 429.
	retryAfter time.Duration
}

// reject answers a refused request with body A, logs it with its error id
// and queues its audit event (rate-limited).
func (g *gate) reject(w http.ResponseWriter, r *http.Request, rej rejection) {
	errID := newErrorID()
	var code, msg, event string
	switch rej.status {
	case http.StatusUnauthorized:
		code, msg, event = codeUnauthorized, msgUnauthorized, keystore.EventAuthFailed
		w.Header().Set("WWW-Authenticate", g.challenge)
	case http.StatusForbidden:
		code, event = codeForbidden, keystore.EventScopeRejected
		switch {
		case rej.origin != "":
			msg, event = msgOriginDenied, keystore.EventOriginRejected
		case rej.scope != "":
			msg = scopeMessage(rej.scope)
		default:
			msg = msgUnmappedRoute
		}
	case http.StatusTooManyRequests:
		code, msg, event = codeRateLimited, msgRateLimited, keystore.EventAuthFailed
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(rej.retryAfter.Seconds())))))
	default:
		code, msg = codeUnavailable, msgUnavailable
	}
	if rej.ident != nil {
		rej.accessID, rej.label, rej.ownerID = rej.ident.AccessID, rej.ident.Label, rej.ident.OwnerID
	}
	clientIP, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)

	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.String("access_keys_error_id", errID))
		extra.Add(zap.String("access_keys_reason", rej.reason))
	}
	if rej.status == http.StatusServiceUnavailable {
		g.logger.Error("access key could not be verified", zap.String("error_id", errID), zap.String("access_id", rej.accessID), zap.Error(rej.err))
	} else if ce := g.logger.Check(zap.DebugLevel, "request rejected"); ce != nil {
		ce.Write(zap.String("error_id", errID), zap.Int("status", rej.status), zap.String("reason", rej.reason),
			zap.String("access_id", rej.accessID), zap.String("client_ip", clientIP))
	}
	if event != "" {
		ev := keystore.Event{
			EventName: event,
			Operator:  keystore.Operator{ID: rej.ownerID, AccessID: rej.accessID, Interface: keystore.InterfaceAPI, SourceIP: clientIP},
			Reason:    rej.reason,
			Details:   map[string]any{"errorId": errID, "method": r.Method, "path": r.URL.Path, "status": rej.status},
		}
		if rej.accessID != "" {
			ev.AccessKey = &keystore.KeyRef{AccessID: rej.accessID, Label: rej.label, OwnerID: rej.ownerID}
		}
		if rej.origin != "" {
			ev.Details["origin"] = truncate(rej.origin, 256)
		}
		if rej.scope != "" {
			ev.Details["scope"] = rej.scope
		}
		g.app.current().audit.reject(ev)
	}
	g.app.current().metrics.count(outcomeOf(rej.status))
	writeErrorA(w, rej.status, errID, code, msg)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// outcomeOf names the metrics outcome of a rejection status.
func outcomeOf(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return outcomeRejected
	case http.StatusTooManyRequests:
		return outcomeRateLimited
	case http.StatusForbidden:
		return outcomeForbidden
	}
	return outcomeUnavailable
}
