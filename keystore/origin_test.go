package keystore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

func TestNormalizeOrigin(t *testing.T) {
	long := "https://" + strings.Repeat("a.", 150) + "com"
	tests := []struct {
		in      string
		want    string
		wantErr error // nil: success; otherwise errors.Is target
	}{
		{"https://a.example.com", "https://a.example.com", nil},
		{"https://A.example.com:443", "https://a.example.com", nil},
		{"HTTPS://A.EXAMPLE.COM", "https://a.example.com", nil},
		{"http://a.example.com:80", "http://a.example.com", nil},
		{"http://a.example.com:443", "http://a.example.com:443", nil},
		{"https://a.example.com:80", "https://a.example.com:80", nil},
		{"https://a.example.com:8443", "https://a.example.com:8443", nil},
		{"https://a.example.com:65535", "https://a.example.com:65535", nil},
		{"https://localhost:1", "https://localhost:1", nil},
		{"https://127.0.0.1:8080", "https://127.0.0.1:8080", nil},
		{"https://[::1]", "https://[::1]", nil},
		{"https://[::1]:443", "https://[::1]", nil},
		{"https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443", nil},
		{"wss://x.example:443", "wss://x.example", nil},
		{"chrome-extension://abcdef", "chrome-extension://abcdef", nil},
		{"https://under_score.example", "https://under_score.example", nil},

		{"", "", ErrOriginSyntax},
		{"null", "", ErrOriginSyntax},
		{"a.example.com", "", ErrOriginSyntax},
		{"://a.example.com", "", ErrOriginSyntax},
		{"1https://a.example.com", "", ErrOriginSyntax},
		{"https://", "", ErrOriginSyntax},
		{"https://a.example.com/", "", ErrOriginPath},
		{"https://a.example.com/path", "", ErrOriginPath},
		{"https://a.example.com?q=1", "", ErrOriginPath},
		{"https://a.example.com#frag", "", ErrOriginPath},
		{"https://user@a.example.com", "", ErrOriginPath},
		{"https://user:pw@a.example.com", "", ErrOriginPath},
		{"https://a.example.com\\x", "", ErrOriginPath},
		{"https://a example.com", "", ErrOriginPath},
		{"https://a.example.com:", "", ErrOriginSyntax},
		{"https://a.example.com:0", "", ErrOriginSyntax},
		{"https://a.example.com:0443", "", ErrOriginSyntax},
		{"https://a.example.com:+443", "", ErrOriginSyntax},
		{"https://a.example.com:-1", "", ErrOriginSyntax},
		{"https://a.example.com:65536", "", ErrOriginSyntax},
		{"https://a.example.com:http", "", ErrOriginSyntax},
		{"https://a.example.com:443:443", "", ErrOriginSyntax},
		{"https://a..example.com", "", ErrOriginSyntax},
		{"https://.example.com", "", ErrOriginSyntax},
		{"https://example.com.", "", ErrOriginSyntax},
		{"https://" + strings.Repeat("a", 64) + ".com", "", ErrOriginSyntax},
		{"https://exämple.com", "", ErrOriginSyntax},
		{"https://[::1", "", ErrOriginSyntax},
		{"https://[::1]x", "", ErrOriginSyntax},
		{"https://[::1]:", "", ErrOriginSyntax},
		{"https://[fe80::1%25eth0]", "", ErrOriginSyntax},
		{"https://[not-ip]", "", ErrOriginSyntax},
		{"https://[1.2.3.4]", "", ErrOriginSyntax}, // IP-literal must be IPv6
		{long, "", ErrOriginSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeOrigin(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NormalizeOrigin(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("NormalizeOrigin(%q) returned %q with its error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			again, err := NormalizeOrigin(got)
			if err != nil || again != got {
				t.Errorf("NormalizeOrigin(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestNormalizeOriginDefaultPortsEqual(t *testing.T) {
	pairs := [][2]string{
		{"https://A.example.com:443", "https://a.example.com"},
		{"HTTP://Example.COM:80", "http://example.com"},
		{"https://[::1]:443", "HTTPS://[::1]"},
	}
	for _, p := range pairs {
		a, errA := NormalizeOrigin(p[0])
		b, errB := NormalizeOrigin(p[1])
		if errA != nil || errB != nil || a != b {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; NormalizeOrigin(%q) = %q, %v; want equal", p[0], a, errA, p[1], b, errB)
		}
	}
}

func TestNormalizeOriginCanonicalDoesNotAllocate(t *testing.T) {
	for _, in := range []string{
		"https://a.example.com",
		"https://a.example.com:8443",
		"http://localhost:3000",
		"https://[2001:db8::1]:8443",
	} {
		in := strings.Clone(in)
		var out string
		allocs := testing.AllocsPerRun(200, func() { out, _ = NormalizeOrigin(in) })
		if allocs != 0 {
			t.Errorf("NormalizeOrigin(%q) allocates %.1f times, want 0", in, allocs)
		}
		if out != in || unsafe.StringData(out) != unsafe.StringData(in) {
			t.Errorf("NormalizeOrigin(%q) = %q: want the input string itself", in, out)
		}
	}
}

func TestNormalizeAllowlistEntry(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"https://app.example.com", "https://app.example.com", nil},
		{"https://app.example.com/", "https://app.example.com", nil},
		{"https://App.Example.com:443/", "https://app.example.com", nil},
		{"https://app.example.com:8443/", "https://app.example.com:8443", nil},
		{"  https://app.example.com  ", "https://app.example.com", nil},
		{"HTTPS://[::1]:9000", "https://[::1]:9000", nil},

		{"http://app.example.com", "", ErrOriginScheme},
		{"http://app.example.com:443", "", ErrOriginScheme},
		{"wss://app.example.com", "", ErrOriginScheme},
		{"https://app.example.com//", "", ErrOriginPath},
		{"https://app.example.com/x", "", ErrOriginPath},
		{"https://app.example.com/x/", "", ErrOriginPath},
		{"https://app.example.com?", "", ErrOriginPath},
		{"app.example.com", "", ErrOriginSyntax},
		{"", "", ErrOriginSyntax},
		{"/", "", ErrOriginSyntax},
		{"null", "", ErrOriginSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeAllowlistEntry(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NormalizeAllowlistEntry(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeAllowlistEntry(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalizeAllowlist(t *testing.T) {
	twenty := make([]string, 20)
	for i := range twenty {
		twenty[i] = fmt.Sprintf("https://h%d.example.com", i)
	}
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"nil", nil, []string{}, false},
		{"one", []string{"https://a.example.com"}, []string{"https://a.example.com"}, false},
		{"dedupe keeps first order", []string{"https://b.example.com", "https://A.example.com:443", "https://a.example.com/", "https://b.example.com"},
			[]string{"https://b.example.com", "https://a.example.com"}, false},
		{"twenty", twenty, twenty, false},
		{"twenty-one", append(append([]string(nil), twenty...), "https://x.example.com"), nil, true},
		{"twenty-one duplicates", append(append([]string(nil), twenty...), twenty[0]), nil, true},
		{"one bad", []string{"https://a.example.com", "http://b.example.com"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAllowlist(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NormalizeAllowlist = %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeAllowlist: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || got == nil {
				t.Fatalf("NormalizeAllowlist = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestOriginAllowed(t *testing.T) {
	list, err := NormalizeAllowlist([]string{"https://a.example.com", "https://b.example.com:8443"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://A.example.com:443", true},
		{"https://b.example.com:8443", true},
		{"https://b.example.com", false},
		{"http://a.example.com", false},
		{"https://c.example.com", false},
	}
	for _, tt := range tests {
		o, err := NormalizeOrigin(tt.origin)
		if err != nil {
			t.Fatalf("NormalizeOrigin(%q): %v", tt.origin, err)
		}
		if got := OriginAllowed(list, o); got != tt.want {
			t.Errorf("OriginAllowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if OriginAllowed(nil, "https://a.example.com") {
		t.Error("an empty allowlist allowed an origin")
	}
}
