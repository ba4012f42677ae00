package gatewaytest

import (
	"strings"
	"testing"
)

func TestAdminAddress(t *testing.T) {
	tests := []struct {
		caddyfile, want, err string
	}{
		{"{\n\tadmin 127.0.0.1:2999\n}\n:80 {\n}\n", "127.0.0.1:2999", ""},
		{"{\n\tdebug\n\tadmin :2999 {\n\t\torigins localhost\n\t}\n}\n", "127.0.0.1:2999", ""},
		{"{\n\t# admin 127.0.0.1:1\n\tadmin localhost:2999 # trailing\n}\n", "localhost:2999", ""},
		{"{\n\tadmin off\n}\n", "", "off"},
		{":8080 {\n\tadmin 127.0.0.1:1\n}\n", "", "global options"},
		{"{\n\tservers {\n\t\tadmin x\n\t}\n}\n", "", "global options"},
	}
	for _, tt := range tests {
		got, err := adminAddress(tt.caddyfile)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("adminAddress(%q) = %q, %v; want error with %q", tt.caddyfile, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("adminAddress(%q) = %q, %v; want %q", tt.caddyfile, got, err, tt.want)
		}
	}
}

func TestSiteBase(t *testing.T) {
	tests := []struct {
		caddyfile, want string
	}{
		{"{\n\tadmin 127.0.0.1:1\n}\nhttp://127.0.0.1:8080 {\n}\n", "http://127.0.0.1:8080"},
		{"(snip) {\n\theader X {a}\n}\n:9000, :9001 {\n\timport snip\n}\n", "http://127.0.0.1:9000"},
		{"http://localhost:81 {\n}\n", "http://localhost:81"},
		{"https://127.0.0.1:8443 {\n}\n", "https://127.0.0.1:8443"},
		{"http://api.example.com:8080 {\n\trespond \"{ not a block\"\n}\n", "http://127.0.0.1:8080"},
		{"http://[::1]:8080 {\n}\n", "http://[::1]:8080"},
	}
	for _, tt := range tests {
		got, err := siteBase(tt.caddyfile)
		if err != nil || got != tt.want {
			t.Errorf("siteBase(%q) = %q, %v; want %q", tt.caddyfile, got, err, tt.want)
		}
	}
	if _, err := siteBase("{\n\tadmin 127.0.0.1:1\n}\n"); err == nil {
		t.Error("siteBase with no site: no error")
	}
}
