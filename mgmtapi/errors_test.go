package mgmtapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/accessgate/accessgate/keystore"
)

func TestAsAPIError(t *testing.T) {
	user := &apiCall{noun: "user"}
	tests := []struct {
		name   string
		c      *apiCall
		err    error
		status int
		code   string
	}{
		{"validation", user, &keystore.ValidationError{Problems: []keystore.FieldError{{Field: "email", Code: "owner:invalid_email", Message: "m"}, {Code: "role:not_found", Message: "r"}}}, 400, "user:invalid_email"},
		{"not found owner", &apiCall{noun: "serviceAccount"}, &keystore.NotFoundError{Kind: "owner", ID: "x"}, 404, "serviceAccount:not_found"},
		{"not found key", user, &keystore.NotFoundError{Kind: "accessKey", ID: "x"}, 404, "accessKey:not_found"},
		{"conflict", user, &keystore.ConflictError{Code: "owner:exists", Message: "m"}, 409, "user:exists"},
		{"conflict without code", user, &keystore.ConflictError{Message: "m"}, 409, "user:conflict"},
		{"too large", user, &http.MaxBytesError{Limit: 10}, 413, "body.too.large"},
		{"api error", user, forbidden("manageAccessKeys"), 403, "forbidden"},
		{"wrapped api error", user, fmt.Errorf("x: %w", apiErrorf(404, "notfound", "m")), 404, "notfound"},
		{"refused", user, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 503, "service.unavailable"},
		{"refused errno", user, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), 503, "service.unavailable"},
		{"closed", user, redis.ErrClosed, 503, "service.unavailable"},
		{"pool timeout", user, redis.ErrPoolTimeout, 503, "service.unavailable"},
		{"other", user, errors.New("corrupt record"), 500, "internal.error"},
	}
	for _, tt := range tests {
		ae := tt.c.asAPIError(tt.err)
		if ae.status != tt.status || len(ae.problems) == 0 || ae.problems[0].Code != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, ae.status, ae.problems, tt.status, tt.code)
		}
	}
	ve := user.asAPIError(&keystore.ValidationError{Problems: []keystore.FieldError{{Code: "owner:a"}, {Code: "role:not_found"}}})
	if len(ve.problems) != 2 || ve.problems[1].Code != "role:not_found" {
		t.Errorf("problems %+v", ve.problems)
	}
	if ae := user.asAPIError(errors.New("secret detail")); strings.Contains(ae.Error(), "secret detail") || ae.cause == nil {
		t.Errorf("500 shows or loses its cause: %+v", ae)
	}
}
