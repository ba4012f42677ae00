package caddymodule

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

// consolePrefix is the path the web console is served under.
const consolePrefix = "/console/"

// consoleCSP is the Content-Security-Policy of every console response: the
// page loads only its own files, runs no inline script or style, talks only
// to its own origin and cannot be framed.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// consoleFiles holds the console: plain HTML, CSS and JavaScript modules,
// served as they are.
//
//go:embed console
var consoleFiles embed.FS

// consoleTypes maps the extensions of the console's files to their media
// types, so that nothing depends on the machine's MIME tables.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// consoleFile is one embedded file, ready to serve.
type consoleFile struct {
	body        []byte
	contentType string
	etag        string
}

// consoleIndex maps the name of each servable file (relative to the
// console directory) to its contents; it is built once from consoleFiles.
var consoleIndex = buildConsoleIndex(consoleFiles)

func buildConsoleIndex(fsys fs.FS) map[string]consoleFile {
	sub, err := fs.Sub(fsys, "console")
	if err != nil {
		panic(err)
	}
	idx := map[string]consoleFile{}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := consoleTypes[path.Ext(name)]
		if !ok {
			return nil // only known kinds of file are served
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		idx[name] = consoleFile{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return idx
}

// serveConsole serves the web console: the embedded files for paths under
// /console/ (index.html for /console/ itself) and a redirect from /console
// to /console/. It reports whether it answered the request; it answers
// nothing and returns false for every other path. It needs no credentials:
// the console's files hold no data, and the page calls the management API
// with the Access ID and Access Key the user signs in with.
//
// Only GET and HEAD are served. Unknown files and directories are 404 (there
// is no directory listing). Every answer carries a strict
// Content-Security-Policy, nosniff, no-referrer and frame-ancestors 'none'.
func serveConsole(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if p != strings.TrimSuffix(consolePrefix, "/") && !strings.HasPrefix(p, consolePrefix) {
		return false
	}
	setConsoleHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		consoleError(w, http.StatusMethodNotAllowed)
		return true
	}
	if !strings.HasPrefix(p, consolePrefix) {
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
	name := strings.TrimPrefix(p, consolePrefix)
	if name == "" {
		name = "index.html"
	}
	f, ok := consoleIndex[name]
	if !ok || !fs.ValidPath(name) {
		consoleError(w, http.StatusNotFound)
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

// setConsoleHeaders sets the security headers of every console response.
func setConsoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// consoleError answers a console request with a short plain-text error.
func consoleError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
}
