package gatewaytest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// caddyfileLine is a line of a Caddyfile with its comment removed, and the
// block nesting depth at its start.
type caddyfileLine struct {
	text  string
	depth int
}

// caddyfileLines splits a Caddyfile into non-empty lines with their
// nesting depth. Braces inside quotes and comments are ignored; braces
// that open and close on one line, as in placeholders, cancel out.
func caddyfileLines(caddyfile string) []caddyfileLine {
	var lines []caddyfileLine
	depth := 0
	for _, raw := range strings.Split(caddyfile, "\n") {
		var b strings.Builder
		inQuote := false
		delta := 0
		for i, r := range raw {
			if r == '"' && (i == 0 || raw[i-1] != '\\') {
				inQuote = !inQuote
			}
			if !inQuote {
				if r == '#' && (i == 0 || raw[i-1] == ' ' || raw[i-1] == '\t') {
					break
				}
				switch r {
				case '{':
					delta++
				case '}':
					delta--
				}
			}
			b.WriteRune(r)
		}
		if text := strings.TrimSpace(b.String()); text != "" {
			lines = append(lines, caddyfileLine{text: text, depth: depth})
		}
		depth += delta
	}
	return lines
}

// adminAddress returns the admin endpoint address set in the Caddyfile's
// global options, with a missing host taken as 127.0.0.1.
func adminAddress(caddyfile string) (string, error) {
	lines := caddyfileLines(caddyfile)
	if len(lines) > 0 && lines[0].text == "{" {
		for _, l := range lines[1:] {
			if l.depth == 0 {
				break
			}
			fields := strings.Fields(l.text)
			if l.depth != 1 || fields[0] != "admin" {
				continue
			}
			if len(fields) < 2 || fields[1] == "{" {
				break
			}
			if fields[1] == "off" {
				return "", errors.New("the Caddyfile turns the admin endpoint off; gateways need it")
			}
			addr := strings.TrimPrefix(fields[1], "tcp/")
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return "", fmt.Errorf("admin address %q: %v", fields[1], err)
			}
			if host == "" {
				host = "127.0.0.1"
			}
			return net.JoinHostPort(host, port), nil
		}
	}
	return "", errors.New("the Caddyfile's global options must set `admin 127.0.0.1:<port>` (with a port from FreePort), so that gateways never share Caddy's default admin address")
}

// siteBase returns the base URL of the Caddyfile's first site block: its
// first address, with the scheme it gives (http when it gives none) and a
// loopback host unless it names localhost or an IP address.
func siteBase(caddyfile string) (string, error) {
	lines := caddyfileLines(caddyfile)
	for i, l := range lines {
		if l.depth != 0 || (i == 0 && l.text == "{") {
			continue
		}
		if strings.HasPrefix(l.text, "(") || strings.HasPrefix(l.text, "&(") || strings.HasPrefix(l.text, "import ") {
			continue // snippets, named routes and imports are not sites
		}
		addrs := strings.FieldsFunc(l.text, func(r rune) bool {
			return r == ' ' || r == '\t' || r == ','
		})
		if len(addrs) == 0 || addrs[0] == "{" {
			continue
		}
		return addressBase(addrs[0])
	}
	return "", errors.New("the Caddyfile has no site block")
}

func addressBase(addr string) (string, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("site address %q: %v", addr, err)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port), nil
}
