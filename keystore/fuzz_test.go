package keystore

import (
	"strings"
	"testing"
)

func FuzzNormalizeOrigin(f *testing.F) {
	for _, s := range []string{
		"https://a.example.com",
		"https://A.example.com:443",
		"HTTP://x:80",
		"http://x:8080",
		"https://[::1]:443",
		"https://[2001:DB8::A]:8443",
		"wss://h.example:443",
		"https://a.example.com/",
		"https://u@h",
		"https://h:0443",
		"https://h:",
		"null",
		"",
		"a+b.c-d://h_1.example",
		"https://[1.2.3.4]",
		"https://[fe80::1%eth0]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeOrigin(in)
		if err != nil {
			if out != "" {
				t.Fatalf("NormalizeOrigin(%q) = %q with error %v", in, out, err)
			}
		} else {
			again, err := NormalizeOrigin(out)
			if err != nil || again != out {
				t.Fatalf("NormalizeOrigin(%q) = %q, but NormalizeOrigin(%q) = %q, %v", in, out, out, again, err)
			}
			scheme, rest, ok := strings.Cut(out, "://")
			if !ok || scheme == "" || rest == "" || strings.ContainsAny(rest, "/?#@ ") || scheme != asciiLowerAll(scheme) {
				t.Fatalf("NormalizeOrigin(%q) = %q: not scheme://host[:port] in lower case", in, out)
			}
		}
		// Inputs equal up to ASCII case normalise equally.
		for _, variant := range []string{asciiUpper(in), asciiLowerAll(in)} {
			vout, verr := NormalizeOrigin(variant)
			if (err == nil) != (verr == nil) || vout != out {
				t.Fatalf("NormalizeOrigin(%q) = %q, %v but NormalizeOrigin(%q) = %q, %v", in, out, err, variant, vout, verr)
			}
		}
		// Allowlist entries are origins too.
		if e, err := NormalizeAllowlistEntry(in); err == nil {
			if !strings.HasPrefix(e, "https://") {
				t.Fatalf("NormalizeAllowlistEntry(%q) = %q", in, e)
			}
			if again, err := NormalizeAllowlistEntry(e); err != nil || again != e {
				t.Fatalf("NormalizeAllowlistEntry(%q) = %q, but again %q, %v", in, e, again, err)
			}
		}
	})
}

func FuzzValidAccessKey(f *testing.F) {
	for range 4 {
		k := NewAccessKey()
		f.Add(k)
		f.Add(k[:63] + "0")
		f.Add(strings.ToLower(k))
	}
	f.Add("")
	f.Add(strings.Repeat("0", 64))
	f.Add(strings.Repeat("z", 64))
	f.Add(strings.Repeat("é", 32))
	f.Fuzz(func(t *testing.T, key string) {
		if !ValidAccessKey(key) {
			return
		}
		if len(key) != AccessKeyLen || !isBase62(key) {
			t.Fatalf("ValidAccessKey accepted %q: wrong shape", key)
		}
		if checksum(key[:58]) != key[58:] {
			t.Fatalf("ValidAccessKey accepted %q: checksum %q does not match", key, checksum(key[:58]))
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func asciiLowerAll(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
