package caddymodule

import (
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
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
	// limit names the usage limit that refused the request, with
	// limitMsg; KindNone for other refusals.
	limit    limits.Kind
	limitMsg string
	// keyFound says the record of the key of a 401 exists (wrong secret,
	// deactivated, expired, rotated, owner inactive): such a refusal is
	// counted in the key's usage, unlike one of an unknown Access ID.
	keyFound bool
}

// statusClientClosed is the status a request whose client went away
// before it was answered gets in the access log: nginx's 499 Client
// Closed Request, as Caddy's reverse proxy uses it.
const statusClientClosed = 499

// reject answers a refused request with body A, logs it with its error id,
// queues its audit event (rate-limited) and, for the access_keys handler,
// counts it in the key's usage when the key exists (countRejection). The 503s of an outage are
// logged at error level at most once a second (see logLimiter); the
// others, like every rejection, at debug level, and every error id is in
// the request's access log fields.
func (g *gate) reject(w http.ResponseWriter, r *http.Request, rej rejection) {
	errID := errbody.NewID()
	var code, msg, event string
	switch rej.status {
	case http.StatusUnauthorized:
		code, msg, event = errbody.CodeUnauthorized, errbody.MsgUnauthorized, keystore.EventAuthFailed
		w.Header().Set("WWW-Authenticate", g.challenge)
	case http.StatusForbidden:
		code, event = errbody.CodeForbidden, keystore.EventScopeRejected
		switch {
		case rej.origin != "":
			msg, event = errbody.MsgOriginDenied, keystore.EventOriginRejected
		case rej.scope != "":
			msg = errbody.ScopeMessage(rej.scope)
		default:
			msg = errbody.MsgUnmappedRoute
		}
	case http.StatusTooManyRequests:
		code, msg, event = errbody.CodeRateLimited, errbody.MsgRateLimited, keystore.EventAuthFailed
		if rej.limit != limits.KindNone {
			code, msg, event = limitCode(rej.limit), rej.limitMsg, keystore.EventKeyRateLimited
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(rej.retryAfter.Seconds())))))
	case statusClientClosed:
		// Nothing to tell a client that is gone, and nothing to audit.
	default:
		code, msg = errbody.CodeUnavailable, errbody.MsgUnavailable
	}
	if rej.ident != nil {
		rej.accessID, rej.label, rej.ownerID = rej.ident.AccessID, rej.ident.Label, rej.ident.OwnerID
	}
	clientIP, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)

	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.String("access_keys_error_id", errID))
		extra.Add(zap.String("access_keys_reason", rej.reason))
	}
	logged := false
	if rej.status == http.StatusServiceUnavailable {
		if suppressed, ok := g.errLog.allow(g.app.current().now()); ok {
			fields := []zap.Field{zap.String("error_id", errID), zap.String("access_id", rej.accessID), zap.Error(rej.err)}
			if suppressed > 0 {
				fields = append(fields, zap.Int64("suppressed", suppressed))
			}
			g.logger.Error("access key could not be verified", fields...)
			logged = true
		}
	}
	if !logged {
		if ce := g.logger.Check(zap.DebugLevel, "request rejected"); ce != nil {
			ce.Write(zap.String("error_id", errID), zap.Int("status", rej.status), zap.String("reason", rej.reason),
				zap.String("access_id", rej.accessID), zap.String("client_ip", clientIP), zap.Error(rej.err))
		}
	}
	if event != "" {
		ev := keystore.Event{
			EventName: event,
			Operator:  keystore.Operator{ID: rej.ownerID, AccessID: rej.accessID, Interface: keystore.InterfaceAPI, SourceIP: clientIP},
			Reason:    rej.reason,
			Details:   map[string]any{"errorId": errID, "method": keystore.ClientText(r.Method), "path": keystore.ClientText(r.URL.Path), "status": rej.status},
		}
		if rej.accessID != "" {
			ev.AccessKey = &keystore.KeyRef{AccessID: rej.accessID, Label: keystore.ClientText(rej.label), OwnerID: rej.ownerID}
		}
		if rej.origin != "" {
			ev.Details["origin"] = keystore.ClientText(rej.origin)
		}
		if rej.scope != "" {
			ev.Details["scope"] = rej.scope
		}
		if rej.limit != limits.KindNone {
			ev.Details["limit"] = rej.limit.String()
		}
		g.app.current().audit.reject(ev)
	}
	if g.countUsage {
		g.app.current().countRejection(&rej)
	}
	if rej.limit == limits.KindNone {
		// A request refused by a usage limit was authenticated: it is
		// counted among the usage limits' decisions instead.
		g.app.current().metrics.count(outcomeOf(rej.status))
	}
	if rej.status == statusClientClosed {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(statusClientClosed)
		return
	}
	errbody.WriteA(w, rej.status, errID, code, msg)
}

// logLimiter lets one log line through per second and counts the ones it
// holds back, so that an outage under load writes a line a second rather
// than one per request. Safe for concurrent use; the zero value is ready,
// and a nil *logLimiter lets every line through.
type logLimiter struct {
	next       atomic.Int64 // Unix nanoseconds from which a line may pass
	suppressed atomic.Int64
}

// allow reports whether a line may be written at now and, if so, how many
// were held back since the last one.
func (l *logLimiter) allow(now time.Time) (suppressed int64, ok bool) {
	if l == nil {
		return 0, true
	}
	t, next := now.UnixNano(), l.next.Load()
	if t < next || !l.next.CompareAndSwap(next, t+int64(time.Second)) {
		l.suppressed.Add(1)
		return 0, false
	}
	return l.suppressed.Swap(0), true
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
	case statusClientClosed:
		return outcomeClientClosed
	}
	return outcomeUnavailable
}
