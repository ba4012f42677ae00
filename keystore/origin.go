package keystore

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// MaxAllowlist is the largest number of origins one key may allowlist.
const MaxAllowlist = 20

// maxOriginLen bounds the length of an origin we are willing to parse.
const maxOriginLen = 300

// Errors returned by the origin parsers.
var (
	ErrOriginSyntax = errors.New("origin must look like scheme://host[:port]")
	ErrOriginScheme = errors.New("allowlist entries must use https")
	ErrOriginPath   = errors.New("allowlist entries must not have a path, query, fragment or user info")
)

// NormalizeOrigin parses a serialized origin as sent in an Origin header
// ("scheme://host[:port]") and returns its canonical form: scheme and host
// in lower case, the scheme's default port removed. "https://A.example.com:443"
// and "https://a.example.com" normalise to the same string. It does not
// allocate when the origin is already canonical.
func NormalizeOrigin(s string) (string, error) {
	if len(s) == 0 || len(s) > maxOriginLen {
		return "", ErrOriginSyntax
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", ErrOriginSyntax
	}
	scheme, rest := s[:i], s[i+3:]
	if !validScheme(scheme) {
		return "", ErrOriginSyntax
	}
	if strings.ContainsAny(rest, "/?#@\\ ") {
		return "", ErrOriginPath
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return "", err
	}
	lowerScheme := asciiLower(scheme)
	origPort := port
	if port != "" && port == defaultPort(lowerScheme) {
		port = ""
	}
	lowerHost := asciiLower(host)
	// Return the input itself when nothing changed.
	if lowerScheme == scheme && lowerHost == host && port == origPort {
		return s, nil
	}
	if port == "" {
		return lowerScheme + "://" + lowerHost, nil
	}
	return lowerScheme + "://" + lowerHost + ":" + port, nil
}

// NormalizeAllowlistEntry validates an allowlist entry and returns its
// canonical form. Entries must be https://host[:port] with no path; a lone
// trailing slash is tolerated and dropped.
func NormalizeAllowlistEntry(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "/") && strings.Count(s, "/") == 3 {
		s = s[:len(s)-1]
	}
	o, err := NormalizeOrigin(s)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(o, "https://") {
		return "", ErrOriginScheme
	}
	return o, nil
}

// NormalizeAllowlist validates and canonicalises a whole allowlist,
// removing duplicates while keeping order.
func NormalizeAllowlist(entries []string) ([]string, error) {
	if len(entries) > MaxAllowlist {
		return nil, errors.New("at most " + strconv.Itoa(MaxAllowlist) + " allowlist entries are allowed")
	}
	out := make([]string, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		o, err := NormalizeAllowlistEntry(e)
		if err != nil {
			return nil, errors.New(strconv.Quote(e) + ": " + err.Error())
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out, nil
}

// OriginAllowed reports whether the normalised origin is in the normalised
// allowlist.
func OriginAllowed(allowlist []string, origin string) bool {
	for _, a := range allowlist {
		if a == origin {
			return true
		}
	}
	return false
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "https", "wss":
		return "443"
	case "http", "ws":
		return "80"
	}
	return ""
}

// splitHostPort splits "host[:port]" where host may be a bracketed IPv6
// literal, and checks both parts.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", ErrOriginSyntax
		}
		host = s[:end+1]
		if a, err := netip.ParseAddr(s[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return "", "", ErrOriginSyntax
		}
		s = s[end+1:]
		if s == "" {
			return host, "", nil
		}
		if s[0] != ':' {
			return "", "", ErrOriginSyntax
		}
		port = s[1:]
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		} else {
			host = s
		}
		if !validHostname(host) {
			return "", "", ErrOriginSyntax
		}
	}
	if port != "" || strings.HasSuffix(s, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return "", "", ErrOriginSyntax
		}
	}
	return host, port, nil
}

// validHostname accepts DNS names (letters, digits, '-', '.', '_') and IPv4
// literals; labels must be non-empty and at most 63 characters.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// asciiLower lower-cases ASCII letters, returning s itself when it has none
// in upper case.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
