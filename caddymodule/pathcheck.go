package caddymodule

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessgate/accessgate/internal/errbody"
	"github.com/accessgate/accessgate/keystore"
)

// badRequestPath reports whether strict paths refuse the path of r: one
// with a dot segment in any spelling (`..`, `.`, `..;x`, `.;x`, `%2e%2e`,
// `%2E.`), a backslash (raw or `%5c`) or an encoded percent sign (`%25`,
// double encoding). Caddy's path matcher judges such a path after
// resolving it, while reverse_proxy forwards it as sent, and upstreams
// read it in their own ways (`..;` as `..` in Java servers, `\` as `/` on
// Windows, a second decoding pass), so the upstream could serve another
// path than the one the scope rules judged.
//
// A decoded path that is not valid UTF-8 is refused as well: overlong
// encodings such as `%c0%ae` are read as `.` by some servers.
//
// An opaque request target (`GET http:..;/x`), which the scope rules see
// as an empty path while reverse_proxy forwards it as the target, is
// refused too.
//
// The decoded path (URL.Path, what the scope rules see) is checked, and
// the raw one too when net/http kept it (URL.RawPath, set when the client
// spelled the path otherwise than its default encoding): every raw
// spelling above decodes into a form refused in the decoded path (`..`,
// `\`, `%`). It allocates nothing.
func badRequestPath(r *http.Request) bool {
	return r.URL.Opaque != "" || badDecodedPath(r.URL.Path) || r.URL.RawPath != "" && badEscapedPath(r.URL.RawPath) ||
		!utf8.ValidString(r.URL.Path)
}

// badDecodedPath reports whether the decoded path p has a dot segment, a
// backslash or a percent sign. It looks only at the dots, found with
// strings.IndexByte, since most paths have none.
func badDecodedPath(p string) bool {
	if strings.IndexByte(p, '\\') >= 0 || strings.IndexByte(p, '%') >= 0 {
		return true
	}
	for i := strings.IndexByte(p, '.'); i >= 0; {
		if i == 0 || p[i-1] == '/' { // a segment starts with a dot
			j := i + 1
			if j < len(p) && p[j] == '.' {
				j++
			}
			if j == len(p) || p[j] == '/' || p[j] == ';' {
				return true
			}
		}
		next := strings.IndexByte(p[i+1:], '.')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// badEscapedPath reports whether the percent-encoded path p has a dot
// segment, a backslash or an encoded percent sign, reading `%2e`, `%2f`,
// `%3b` and `%5c` as `.`, `/`, `;` and `\`. An invalid escape is refused.
func badEscapedPath(p string) bool {
	// dots counts the dots that begin the current segment; -1 once the
	// segment has anything else (it can then be no dot segment).
	dots := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return true
			}
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
		}
		switch c {
		case '\\', '%':
			return true
		case '/', ';':
			if dots == 1 || dots == 2 {
				return true
			}
			dots = 0
			if c == ';' {
				dots = -1 // a segment's parameters: not a new segment
			}
		case '.':
			if dots >= 0 && dots < 3 {
				dots++
			}
		default:
			dots = -1
		}
	}
	return dots == 1 || dots == 2
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// refuseBadPath answers a request whose path strict paths refuse: 400,
// body A, before any credential work. It is logged at debug level with
// its error id; it is no authentication, so it is neither audited nor
// counted among the authentication outcomes.
func (h *Handler) refuseBadPath(w http.ResponseWriter, r *http.Request) {
	errID := errbody.NewID()
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.String("access_keys_error_id", errID))
		extra.Add(zap.String("access_keys_reason", "bad_path"))
	}
	if ce := h.gate.logger.Check(zap.DebugLevel, "request path refused"); ce != nil {
		ce.Write(zap.String("error_id", errID), zap.String("path", keystore.ClientText(r.URL.EscapedPath())), zap.String("client_ip", clientIP(r)))
	}
	errbody.WriteA(w, http.StatusBadRequest, errID, errbody.CodeBadRequest, errbody.MsgBadPath)
}
