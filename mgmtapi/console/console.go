// Package console serves the web console of the management API: static
// HTML, CSS and JavaScript modules, embedded from the static directory and
// served under /console/ with a strict Content-Security-Policy. The page
// holds no data; it signs in with an access key and then calls the
// management API like any other client.
//
// It owns the console's files and how they are served, nothing else: it
// imports nothing of accessgate and never imports Caddy.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// prefix is the path the web console is served under.
const prefix = "/console/"

// csp is the Content-Security-Policy of every console response: the
// page loads only its own files, runs no inline script or style, talks only
// to its own origin and cannot be framed.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// files holds the console: plain HTML, CSS and JavaScript modules,
// served as they are.
//
//go:embed static
var files embed.FS

// mediaTypes maps the extensions of the console's files to their media
// types, so that nothing depends on the machine's MIME tables.
var mediaTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// index maps the name of each servable file (relative to the
// static directory) to its contents; it is built once from files.
var index = buildIndex(files)

func buildIndex(fsys fs.FS) map[string]file {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		panic(err)
	}
	idx := map[string]file{}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := mediaTypes[path.Ext(name)]
		if !ok {
			return nil // only known kinds of file are served
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		idx[name] = file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return idx
}

// Serve serves the web console: the embedded files for paths under
// /console/ (index.html for /console/ itself) and a redirect from /console
// to /console/. It reports whether it answered the request; it answers
// nothing and returns false for every other path. It needs no credentials:
// the console's files hold no data, and the page calls the management API
// with the Access ID and Access Key the user signs in with.
//
// Only GET and HEAD are served. Unknown files and directories are 404 (there
// is no directory listing). Every answer carries a strict
// Content-Security-Policy, nosniff, no-referrer and frame-ancestors 'none'.
func Serve(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if p != strings.TrimSuffix(prefix, "/") && !strings.HasPrefix(p, prefix) {
		return false
	}
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed)
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		// A relative target, so that the redirect also works when a
		// prefix was stripped from the path (handle_path).
		target := "console/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		h := w.Header()
		h.Set("Location", target)
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMovedPermanently)
		return true
	}
	name := strings.TrimPrefix(p, prefix)
	if name == "" {
		name = "index.html"
	}
	f, ok := index[name]
	if !ok || !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound)
		return true
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	// The files carry no version in their names, so browsers revalidate
	// them each time; the ETag keeps that to a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	return true
}

// setSecurityHeaders sets the security headers of every console response.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// writeError answers a console request with a short plain-text error.
func writeError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
}
