// Package errbody holds what the error answers of the gateway and of the
// management API share: error ids, body A (the body of every
// authentication and authorisation error) and the codes and messages the
// contract fixes for it. Both faces import it, so that a code or a message
// is spelt in one place; body B, the management API's own, lives in
// mgmtapi.
//
// It imports nothing of accessgate and never imports Caddy.
package errbody

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// Error codes and messages of body A.
const (
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeRateLimited   = "rate.limit.exceeded"
	CodeQuotaExceeded = "quota.exceeded"
	CodeUnavailable   = "service.unavailable"
	CodeBadRequest    = "bad.request"

	MsgUnauthorized  = "Credential could not be verified."
	MsgOriginDenied  = "The request origin is not allowlisted to use this access key"
	MsgUnavailable   = "The access key service is temporarily unavailable. Try again later."
	MsgRateLimited   = "Too many failed authentication attempts. Try again later."
	MsgUnmappedRoute = "This access key is not allowed to use this route: no scope is mapped to it"
	MsgBadPath       = "The request path contains a dot segment, a backslash or an encoded percent sign; send it in its plain form."
)

// bodyA is the body of every authentication and authorisation error.
type bodyA struct {
	Status  int    `json:"status"`
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

const idChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// NewID returns a fresh 5-5-5 upper-case alphanumeric error id, such as
// FRXHW-NB12G-HMYO6.
func NewID() string {
	var b [17]byte
	for i := range b {
		if i == 5 || i == 11 {
			b[i] = '-'
			continue
		}
		b[i] = idChars[rand.IntN(len(idChars))]
	}
	return string(b[:])
}

// WriteA writes body A with the given status, error id, code and message.
func WriteA(w http.ResponseWriter, status int, id, code, msg string) {
	b, _ := json.Marshal(bodyA{Status: status, ID: id, Code: code, Message: msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ScopeMessage is the 403 message naming a missing scope.
func ScopeMessage(scope string) string {
	return "This access key lacks the scope " + scope + " needed for this request"
}
