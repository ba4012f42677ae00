package caddymodule

import (
	"encoding/base64"
	"strings"
	"testing"
)

// parseBasic is decodeBasic with the parts copied out of the buffer.
func parseBasic(header string) (id, key string, ok bool) {
	var buf basicBuf
	idb, keyb, ok := decodeBasic(header, &buf)
	if !ok {
		return "", "", false
	}
	return string(idb), string(keyb), true
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, header, id, key string
		ok                    bool
	}{
		{"valid", "Basic " + enc("suABC:secret"), "suABC", "secret", true},
		{"scheme case-insensitive", "bAsIc " + enc("a:b"), "a", "b", true},
		{"extra spaces after scheme", "Basic   " + enc("a:b"), "a", "b", true},
		{"colon in key", "Basic " + enc("a:b:c"), "a", "b:c", true},
		{"empty key", "Basic " + enc("a:"), "a", "", true},
		{"empty", "", "", "", false},
		{"scheme only", "Basic ", "", "", false},
		{"bearer", "Bearer " + enc("a:b"), "", "", false},
		{"no colon", "Basic " + enc("ab"), "", "", false},
		{"empty id", "Basic " + enc(":b"), "", "", false},
		{"bad base64", "Basic !!!!", "", "", false},
		{"url-safe alphabet", "Basic " + base64.URLEncoding.EncodeToString([]byte("a?>:b")), "", "", false},
		{"oversized", "Basic " + strings.Repeat("QUFB", 200), "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, key, ok := parseBasic(tc.header)
			if ok != tc.ok || id != tc.id || key != tc.key {
				t.Errorf("parseBasic(%q) = %q, %q, %v; want %q, %q, %v", tc.header, id, key, ok, tc.id, tc.key, tc.ok)
			}
		})
	}
}

// FuzzParseBasic checks that any header parses without panicking, and that
// whatever parses round-trips through a Basic header.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("suABCDEFGHIJKL:key")), "Basic", "basic ::::", "Basic =", "Basic " + strings.Repeat("A", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, key, ok := parseBasic(header)
		if !ok {
			if id != "" || key != "" {
				t.Fatalf("failed parse returned %q, %q", id, key)
			}
			return
		}
		if id == "" || strings.Contains(id, ":") {
			t.Fatalf("parsed id %q must be non-empty and colon-free", id)
		}
		again := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+key))
		id2, key2, ok2 := parseBasic(again)
		if !ok2 || id2 != id || key2 != key {
			t.Fatalf("round trip of %q:%q gave %q:%q %v", id, key, id2, key2, ok2)
		}
	})
}
