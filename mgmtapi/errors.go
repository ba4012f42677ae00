package mgmtapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/keystore"
)

// Generic error codes of body B. Field problems carry codes of the form
// <resource>:<problem>, such as accessKey:label_required.
const (
	codeNotFound          = "notfound"
	codeMethodUnsupported = "method.unsupported"
	codeContentType       = "contenttype.invalid"
	codeBodyTooLarge      = "body.too.large"
	codeJSONInvalid       = "json.invalid"
	codeInternal          = "internal.error"
)

// apiProblem is one entry of body B's errors.
type apiProblem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorBodyB is the body of every management API error but those of
// authentication, which use body A.
type errorBodyB struct {
	ID     string       `json:"id"`
	Errors []apiProblem `json:"errors"`
}

// apiError is an error answered with body B.
type apiError struct {
	status   int
	problems []apiProblem
	// scope is the capability that was missing, for 403s.
	scope string
	// cause is logged, never shown.
	cause error
}

func (e *apiError) Error() string {
	if len(e.problems) == 0 {
		return http.StatusText(e.status)
	}
	return e.problems[0].Message
}

func apiErrorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, problems: []apiProblem{{Code: code, Message: fmt.Sprintf(format, args...)}}}
}

// forbidden is the 403 of a missing capability; it names the first of
// the capabilities that would have sufficed.
func forbidden(capability string) *apiError {
	e := apiErrorf(http.StatusForbidden, errbody.CodeForbidden, "This access key lacks the capability %s needed for this request", capability)
	e.scope = capability
	return e
}

// asAPIError maps an error of the store or of input handling to the
// status and problems it is answered with.
func (c *apiCall) asAPIError(err error) *apiError {
	var (
		ae  *apiError
		ve  *keystore.ValidationError
		nfe *keystore.NotFoundError
		ce  *keystore.ConflictError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		out := &apiError{status: http.StatusBadRequest}
		for _, p := range ve.Problems {
			out.problems = append(out.problems, apiProblem{Code: c.code(p.Code), Message: p.Message})
		}
		if len(out.problems) == 0 {
			out.problems = []apiProblem{{Code: c.noun + ":invalid", Message: ve.Error()}}
		}
		return out
	case errors.As(err, &nfe):
		kind := nfe.Kind
		if kind == "owner" {
			kind = c.noun
		}
		return apiErrorf(http.StatusNotFound, kind+":not_found", "%s %q does not exist", kind, nfe.ID)
	case errors.As(err, &ce):
		code := ce.Code
		if code == "" {
			code = c.noun + ":conflict"
		}
		return &apiError{status: http.StatusConflict, problems: []apiProblem{{Code: c.code(code), Message: ce.Message}}}
	case errors.As(err, &mbe):
		return apiErrorf(http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the request body is larger than %d bytes", mbe.Limit)
	case redisUnavailable(err):
		out := apiErrorf(http.StatusServiceUnavailable, errbody.CodeUnavailable, "%s", errbody.MsgUnavailable)
		out.cause = err
		return out
	}
	out := apiErrorf(http.StatusInternalServerError, codeInternal, "An internal error occurred; quote the error id when reporting it.")
	out.cause = err
	return out
}

// code names owner problems after the resource being served: the store
// reports owner:invalid_email, the users endpoint answers
// user:invalid_email.
func (c *apiCall) code(code string) string {
	if rest, ok := strings.CutPrefix(code, "owner:"); ok && (c.noun == "user" || c.noun == "serviceAccount") {
		return c.noun + ":" + rest
	}
	return code
}

// redisUnavailable reports whether err means that Redis could not be
// reached or could not serve the request right now.
func redisUnavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		redis.IsLoadingError(err), redis.IsReadOnlyError(err), redis.IsClusterDownError(err),
		redis.IsTryAgainError(err), redis.IsMasterDownError(err), redis.IsMaxClientsError(err), redis.IsOOMError(err),
		// A master short of replicas (min-replicas-to-write) refuses
		// writes, in a transaction as EXECABORT.
		redis.IsNoReplicasError(err), redis.IsExecAbortError(err):
		return true
	}
	return false
}

// fail answers err with body B; server-side failures are logged with the
// error id, and missing capabilities are audited.
func (c *apiCall) fail(err error) {
	ae := c.asAPIError(err)
	errID := errbody.NewID()
	if c.h.LogErrorID != nil {
		c.h.LogErrorID(c.r, errID)
	}
	switch {
	case ae.status >= 500:
		c.h.logger().Error("management request failed", zap.String("error_id", errID), zap.Int("status", ae.status),
			zap.String("method", keystore.ClientText(c.r.Method)), zap.String("path", keystore.ClientText(c.r.URL.Path)), zap.String("access_id", c.ident.AccessID), zap.Error(ae.cause))
	case ae.status == http.StatusForbidden:
		c.auditForbidden(errID, ae.scope)
	}
	b, _ := json.Marshal(errorBodyB{ID: errID, Errors: ae.problems})
	c.send(ae.status, b)
}

// auditForbidden queues the audit event of a request refused for a
// missing capability.
func (c *apiCall) auditForbidden(errID, scope string) {
	c.inst.AuditRefusal(keystore.Event{
		EventName: keystore.EventScopeRejected,
		Operator:  c.op,
		AccessKey: &keystore.KeyRef{AccessID: c.ident.AccessID, Label: keystore.ClientText(c.ident.Label), OwnerID: c.ident.OwnerID},
		Reason:    "capability_missing",
		Details:   map[string]any{"errorId": errID, "method": keystore.ClientText(c.r.Method), "path": keystore.ClientText(c.r.URL.Path), "status": http.StatusForbidden, "scope": scope},
	})
}

// reply answers with v as JSON.
func (c *apiCall) reply(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.send(status, b)
	return nil
}

// noContent answers 204.
func (c *apiCall) noContent() error {
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *apiCall) send(status int, b []byte) {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b)
}
