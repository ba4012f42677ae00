package mgmtapi

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		name, host, origin string
		tls                bool
		want               bool
	}{
		{"same https", "api.example.com", "https://api.example.com", true, true},
		{"same with default port", "api.example.com:443", "https://API.example.com", true, true},
		{"same http with port", "127.0.0.1:8080", "http://127.0.0.1:8080", false, true},
		{"scheme differs", "api.example.com", "http://api.example.com", true, false},
		{"host differs", "api.example.com", "https://app.example.com", true, false},
		{"port differs", "api.example.com:8443", "https://api.example.com", true, false},
		{"no origin", "api.example.com", "", true, false},
		{"bad origin", "api.example.com", "null", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/accessKeys", nil)
			r.Host = tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := sameOrigin(r); got != tc.want {
				t.Errorf("sameOrigin = %v, want %v", got, tc.want)
			}
		})
	}
}
