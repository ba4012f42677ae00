package caddymodule

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessgate/accessgate/keystore"
)

// ScopeRule maps a scope to the requests that need it.
type ScopeRule struct {
	// Scope is the scope (capability) ID a matching request needs.
	Scope string `json:"scope"`
	// Methods are the upper-case HTTP methods the rule covers; empty
	// covers every method. A request method matches whatever its case
	// (`delete` needs the scope of `DELETE`), and GET also covers HEAD.
	Methods []string `json:"methods,omitempty"`
	// Paths are path patterns in the syntax of Caddy's path matcher.
	Paths []string `json:"paths"`

	// methods is Methods with HEAD added when GET is there.
	methods []string
	paths   caddyhttp.MatchPath
}

func (r *ScopeRule) provision(ctx caddy.Context) error {
	if !keystore.ValidID(r.Scope) {
		return fmt.Errorf("scope %q: invalid scope id", r.Scope)
	}
	if len(r.Paths) == 0 {
		return fmt.Errorf("scope %s: at least one path is required", r.Scope)
	}
	for _, m := range r.Methods {
		if m == "" || m != upperASCII(m) {
			return fmt.Errorf("scope %s: method %q must be upper case", r.Scope, m)
		}
	}
	r.methods = slices.Clone(r.Methods)
	if slices.Contains(r.methods, http.MethodGet) && !slices.Contains(r.methods, http.MethodHead) {
		r.methods = append(r.methods, http.MethodHead)
	}
	r.paths = caddyhttp.MatchPath(slices.Clone(r.Paths))
	return r.paths.Provision(ctx)
}

// matches reports whether the rule covers req.
func (r *ScopeRule) matches(req *http.Request) (bool, error) {
	if !r.coversMethod(req.Method) {
		return false, nil
	}
	return r.paths.MatchWithError(req)
}

// coversMethod reports whether the rule covers the request method m. The
// comparison folds case the Unicode way (strings.EqualFold), so that no
// spelling an upstream might upper-case into a rule's method (`delete`,
// `poſt`) escapes the rule. It allocates nothing.
func (r *ScopeRule) coversMethod(m string) bool {
	if len(r.Methods) == 0 {
		return true
	}
	for _, rm := range r.methods {
		if strings.EqualFold(rm, m) {
			return true
		}
	}
	return false
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
