package caddymodule

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// Error codes and messages of body A.
const (
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeRateLimited  = "rate.limit.exceeded"
	codeUnavailable  = "service.unavailable"
	codeBadRequest   = "bad.request"

	msgUnauthorized  = "Credential could not be verified."
	msgOriginDenied  = "The request origin is not allowlisted to use this access key"
	msgUnavailable   = "The access key service is temporarily unavailable. Try again later."
	msgRateLimited   = "Too many failed authentication attempts. Try again later."
	msgUnmappedRoute = "This access key is not allowed to use this route: no scope is mapped to it"
	msgBadPath       = "The request path contains a dot segment, a backslash or an encoded percent sign; send it in its plain form."
)

// errorBodyA is the body of every authentication and authorisation error.
type errorBodyA struct {
	Status  int    `json:"status"`
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

const errorIDChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newErrorID returns a fresh 5-5-5 upper-case alphanumeric error id, such
// as FRXHW-NB12G-HMYO6.
func newErrorID() string {
	var b [17]byte
	for i := range b {
		if i == 5 || i == 11 {
			b[i] = '-'
			continue
		}
		b[i] = errorIDChars[rand.IntN(len(errorIDChars))]
	}
	return string(b[:])
}

// writeErrorA writes body A with the given status, code and message.
func writeErrorA(w http.ResponseWriter, status int, id, code, msg string) {
	b, _ := json.Marshal(errorBodyA{Status: status, ID: id, Code: code, Message: msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// scopeMessage is the 403 message naming a missing scope.
func scopeMessage(scope string) string {
	return "This access key lacks the scope " + scope + " needed for this request"
}
