package mgmtapi

import (
	"slices"
	"strings"
	"testing"
)

func TestAPISegments(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/api/v1/accessKeys", []string{"accessKeys"}},
		{"/api/v1/accessKeys/", []string{"accessKeys"}},
		{"/api/v1/accessKeys/personal", []string{"accessKeys", "personal"}},
		{"/accessKeys/su0w3Q37CBzHUM/rotate", []string{"accessKeys", "su0w3Q37CBzHUM", "rotate"}},
		{"/gw/api/v1/users/u1", []string{"users", "u1"}},
		{"/api/v1/x/api/v1/roles", []string{"roles"}},
		{"/api/v1/policies/accessKeysLifetime", []string{"policies", "accessKeysLifetime"}},
		{"/api/v1/serviceAccounts/s/accessKeys", []string{"serviceAccounts", "s", "accessKeys"}},
		{"/api/v1/usage", []string{"usage"}},
		{"/api/v1//accessKeys", nil},
		{"/api/v1", nil},
		{"/api/v1/", nil},
		{"/api/v1/collectors", nil},
		{"/api/v1accessKeys", nil},
		{"/api/v12/accessKeys", nil},
		{"/", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, ok := apiSegments(tt.path)
		if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("apiSegments(%q) = %q, %v; want %q", tt.path, got, ok, tt.want)
		}
	}
}

func TestRouteAPI(t *testing.T) {
	tests := []struct {
		path    string
		methods string // "" when there is no such endpoint
	}{
		{"accessKeys", "GET, HEAD, OPTIONS, POST"},
		{"accessKeys/personal", "GET, HEAD, OPTIONS"},
		{"accessKeys/scopes", "GET, HEAD, OPTIONS"},
		{"accessKeys/su0w3Q37CBzHUM", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"accessKeys/su0w3Q37CBzHUM/rotate", "OPTIONS, PUT"},
		{"accessKeys/su0w3Q37CBzHUM/other", ""},
		{"accessKeys/a/b/c", ""},
		{"policies/accessKeysLifetime", "GET, HEAD, OPTIONS, PUT"},
		{"policies/disableUnusedAccessKeys", "GET, HEAD, OPTIONS, PUT"},
		{"policies", ""},
		{"policies/other", ""},
		{"users", "GET, HEAD, OPTIONS, POST"},
		{"users/u1", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"users/u1/accessKeys", ""},
		{"serviceAccounts", "GET, HEAD, OPTIONS, POST"},
		{"serviceAccounts/s1", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"serviceAccounts/s1/accessKeys", "GET, HEAD, OPTIONS, POST"},
		{"serviceAccounts/s1/accessKeys/su0w3Q37CBzHUM", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"serviceAccounts/s1/accessKeys/su0w3Q37CBzHUM/rotate", "OPTIONS, PUT"},
		{"serviceAccounts/s1/accessKeys/personal", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"serviceAccounts/s1/other", ""},
		{"roles", "GET, HEAD, OPTIONS, POST"},
		{"roles/r1", "DELETE, GET, HEAD, OPTIONS, PUT"},
		{"roles/r1/x", ""},
		{"accessKeys//rotate", ""},
		{"accessKeys/su0w3Q37CBzHUM/usage", "GET, HEAD, OPTIONS"},
		{"accessKeys/su0w3Q37CBzHUM/usage/x", ""},
		{"serviceAccounts/s1/accessKeys/su0w3Q37CBzHUM/usage", "GET, HEAD, OPTIONS"},
		{"usage", "GET, HEAD, OPTIONS"},
		{"usage/keys", ""},
	}
	for _, tt := range tests {
		m := routeAPI(strings.Split(tt.path, "/"))
		switch {
		case tt.methods == "" && m != nil:
			t.Errorf("%s: routed to %s", tt.path, m.allow())
		case tt.methods != "" && m == nil:
			t.Errorf("%s: not routed", tt.path)
		case m != nil && m.allow() != tt.methods:
			t.Errorf("%s: methods %s, want %s", tt.path, m.allow(), tt.methods)
		}
	}
}

// FuzzAPISegments: path routing never panics, and what it routes starts
// with one of the API's roots and has no empty segment.
func FuzzAPISegments(f *testing.F) {
	for _, s := range []string{"/api/v1/accessKeys", "/api/v1/serviceAccounts/a/accessKeys/b/rotate", "/x/api/v1/users/", "//", "/api/v1/api/v1/roles"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		segs, ok := apiSegments(path)
		if !ok {
			return
		}
		if !slices.Contains(apiRoots, segs[0]) {
			t.Fatalf("routed %q to %q", path, segs)
		}
		if m := routeAPI(segs); m != nil && slices.Contains(segs, "") {
			t.Fatalf("routed %q with an empty segment", path)
		}
	})
}
