package caddymodule

import (
	"net/http"
	"slices"
	"testing"
)

func TestConnectionWithoutIdentity(t *testing.T) {
	tests := []struct {
		in    []string
		names bool
		want  []string
	}{
		{nil, false, nil},
		{[]string{"keep-alive"}, false, nil},
		{[]string{"close, x-hop"}, false, nil},
		{[]string{"X-Access-Id"}, true, nil},
		{[]string{"keep-alive, X-Access-Id, X-Access-Owner, X-Access-Scopes"}, true, []string{"keep-alive"}},
		{[]string{" x-access-owner ,Upgrade", "X-ACCESS-SCOPES", "te"}, true, []string{"Upgrade", "te"}},
		{[]string{",,x-access-id,,"}, true, nil},
		{[]string{"X-Access-Ids, X-Access"}, false, nil},
	}
	for _, tc := range tests {
		if got := connectionNamesIdentity(tc.in); got != tc.names {
			t.Errorf("connectionNamesIdentity(%q) = %v", tc.in, got)
		}
		if !tc.names {
			continue
		}
		if got := connectionWithout(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("connectionWithout(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestGuardIdentityHeadersAllocs: an ordinary request costs nothing.
func TestGuardIdentityHeadersAllocs(t *testing.T) {
	r := memoRequest(http.MethodGet, "/api/v1/collectors")
	r.Header.Set("Connection", "keep-alive")
	if n := testing.AllocsPerRun(100, func() { guardIdentityHeaders(r) }); n != 0 {
		t.Errorf("guardIdentityHeaders allocates %v times per ordinary request", n)
	}
}
