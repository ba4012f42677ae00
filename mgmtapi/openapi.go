package mgmtapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDocument is the OpenAPI 3.1 document of the management API. The
// API tests validate every response they receive against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// isOpenAPIPath reports whether a request path names the OpenAPI
// document: /api/v1/openapi.json, or /openapi.json once a prefix was
// stripped.
func isOpenAPIPath(path string) bool {
	segs, ok := apiSegments(path)
	return ok && len(segs) == 1 && segs[0] == openAPIName
}

// openAPIName is the last segment of the document's path.
const openAPIName = "openapi.json"

// serveOpenAPI answers GET and HEAD of the OpenAPI document, which needs
// no credentials, and reports whether it did.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || !isOpenAPIPath(r.URL.Path) {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(openAPIDocument)
	}
	return true
}

// getOpenAPI serves GET /openapi.json to a request that went through
// authentication; only other methods get there, since serveOpenAPI
// answers GET and HEAD first.
func getOpenAPI(c *apiCall) error {
	serveOpenAPI(c.w, c.r)
	return nil
}
