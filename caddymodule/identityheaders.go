package caddymodule

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// isIdentityHeader reports whether name is one of the identity headers set
// for the upstream, in any case.
func isIdentityHeader(name string) bool {
	return strings.EqualFold(name, HeaderAccessID) || strings.EqualFold(name, HeaderAccessOwner) ||
		strings.EqualFold(name, HeaderAccessScopes)
}

// guardIdentityHeaders makes the identity headers just set on r reach the
// upstream as they are: their names are removed from the Connection
// header, which would otherwise make reverse_proxy drop them as hop-by-hop
// headers, and request trailers with those names are dropped, declared or
// not. An ordinary request (no such Connection token, no trailers) costs a
// scan of its Connection header and allocates nothing.
func guardIdentityHeaders(r *http.Request) {
	if conn := r.Header["Connection"]; connectionNamesIdentity(conn) {
		if kept := connectionWithout(conn); len(kept) > 0 {
			r.Header["Connection"] = kept
		} else {
			delete(r.Header, "Connection")
		}
	}
	guardIdentityTrailers(r)
}

// guardIdentityTrailers drops the request trailers of r named like
// identity headers, declared or not.
func guardIdentityTrailers(r *http.Request) {
	if r.Trailer != nil && r.Body != nil && r.Body != http.NoBody {
		dropIdentityTrailers(r.Trailer)
		r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer}
	}
}

// connectionNamesIdentity reports whether the Connection header values
// name an identity header.
func connectionNamesIdentity(values []string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if isIdentityHeader(textproto.TrimString(tok)) {
				return true
			}
		}
	}
	return false
}

// connectionWithout returns the Connection header values without the
// tokens naming identity headers, and without empty values.
func connectionWithout(values []string) []string {
	var out []string
	for _, v := range values {
		var kept []string
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" && !isIdentityHeader(tok) {
				kept = append(kept, tok)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, ", "))
		}
	}
	return out
}

// dropIdentityTrailers deletes the trailers named like identity headers.
func dropIdentityTrailers(t http.Header) {
	for k := range t {
		if isIdentityHeader(k) {
			delete(t, k)
		}
	}
}

// trailerGuard drops trailers named like identity headers once the body is
// read: net/http fills a request's Trailer map only when its body reaches
// EOF, with every trailer received, declared or not, and reverse_proxy
// forwards what is in the map then.
type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		dropIdentityTrailers(g.trailer)
	}
	return n, err
}
