package mgmtapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The API tests check every response they receive against the OpenAPI
// document that the API serves (openapi.json), with kin-openapi, the
// common OpenAPI validator for Go: a response the document does not
// describe fails the test that received it.

var (
	openAPIOnce sync.Once
	openAPIDoc  *openapi3.T
	openAPIRaw  []byte
	openAPIErr  error
)

// loadOpenAPI loads and validates openapi.json once.
func loadOpenAPI(t testing.TB) (*openapi3.T, []byte) {
	t.Helper()
	openAPIOnce.Do(func() {
		openAPIRaw, openAPIErr = os.ReadFile("openapi.json")
		if openAPIErr != nil {
			return
		}
		openAPIDoc, openAPIErr = openapi3.NewLoader().LoadFromData(openAPIRaw)
		if openAPIErr != nil {
			return
		}
		openAPIErr = openAPIDoc.Validate(context.Background())
	})
	if openAPIErr != nil {
		t.Fatalf("openapi.json: %v", openAPIErr)
	}
	return openAPIDoc, openAPIRaw
}

// TestOpenAPIDocumentIsValid: openapi.json is a valid OpenAPI 3.1
// document.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	for _, name := range []string{"AccessKey", "AccessKeyPublic", "AccessKeyCreateRequest", "AccessKeyUpdateRequest",
		"ListAccessKeysResult", "PaginatedListAccessKeysResult", "ErrorResponse", "ErrorDescription",
		"AccessKeysLifetimePolicy", "DisableUnusedAccessKeysPolicy", "AuthErrorResponse",
		"UsageBucket", "KeyUsage", "OrgUsage", "TopKey"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
}

// apiPathOf returns the management API path of a URL the tests send
// requests to: what follows /api/v1, or /mgmt on the fixture's site that
// strips that prefix. It reports false for other paths.
func apiPathOf(u *url.URL) (string, bool) {
	p := u.Path
	if i := strings.Index(p, "/api/v1/"); i >= 0 {
		return p[i+len("/api/v1"):], true
	}
	if rest, ok := strings.CutPrefix(p, "/mgmt/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// findOperation finds the path template of the document that matches an
// API path, preferring literal segments to parameters, and its
// parameters.
func findOperation(doc *openapi3.T, path string) (string, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	best, bestParams, bestScore := "", map[string]string(nil), -1
	for tmpl := range doc.Paths.Map() {
		tsegs := strings.Split(strings.Trim(tmpl, "/"), "/")
		if len(tsegs) != len(segs) {
			continue
		}
		params, score := map[string]string{}, 0
		for i, ts := range tsegs {
			switch {
			case strings.HasPrefix(ts, "{") && segs[i] != "":
				params[strings.Trim(ts, "{}")] = segs[i]
			case ts == segs[i]:
				score++
			default:
				score = -1
			}
			if score < 0 {
				break
			}
		}
		if score > bestScore {
			best, bestParams, bestScore = tmpl, params, score
		}
	}
	return best, bestParams
}

// errorResponses names the document's error response of each status.
var errorResponses = map[int]string{
	400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
	409: "Conflict", 413: "PayloadTooLarge", 415: "UnsupportedMediaType", 429: "TooManyRequests",
	500: "InternalError", 503: "ServiceUnavailable",
}

// checkError checks an error answer outside any operation of the
// document (an unknown path or method) against the document's error
// response of its status.
func checkError(t testing.TB, doc *openapi3.T, what string, status int, body []byte) {
	t.Helper()
	name, ok := errorResponses[status]
	if !ok {
		t.Errorf("openapi: %s: status %d is not an error the document describes: %s", what, status, body)
		return
	}
	schema := doc.Components.Responses[name].Value.Content.Get("application/json").Schema.Value
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("openapi: %s: %d body is not JSON: %s", what, status, body)
		return
	}
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("openapi: %s: %d body does not match %s: %v\n%s", what, status, name, err, body)
	}
}

// checkOpenAPI fails the test when a response of the management API does
// not validate against the document.
func checkOpenAPI(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	doc, _ := loadOpenAPI(t)
	what := req.Method + " " + req.URL.Path
	path, isAPI := apiPathOf(req.URL)
	if strings.HasPrefix(req.URL.Path, "/console") || status == http.StatusNoContent && req.Method == http.MethodOptions {
		return // the console's pages and CORS preflights are not the API's
	}
	if !isAPI {
		// The gateway's own routes; the API-only site answers errors.
		if status >= 400 && strings.HasPrefix(header.Get("Content-Type"), "application/json") {
			checkError(t, doc, what, status, body)
		}
		return
	}
	tmpl, params := findOperation(doc, path)
	var item *openapi3.PathItem
	if tmpl != "" {
		item = doc.Paths.Value(tmpl)
	}
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(method)
	}
	if op == nil {
		if req.Method == http.MethodHead {
			if _, ok := errorResponses[status]; !ok {
				t.Errorf("openapi: %s: status %d", what, status)
			}
			return
		}
		checkError(t, doc, what, status, body)
		return
	}
	r2 := req.Clone(context.Background())
	r2.Body = io.NopCloser(bytes.NewReader(nil))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    r2,
			PathParams: params,
			Route:      &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op},
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   req.Method == http.MethodHead,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("openapi: %s (%s): %d response does not validate: %v\n%s", what, tmpl, status, err, body)
	}
}

// TestAPIOpenAPIWithoutCredentials: the document is served as it is, as
// JSON, without credentials, at /api/v1/openapi.json and under a
// stripped prefix; other methods need credentials and then get 405.
func TestAPIOpenAPIWithoutCredentials(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, raw := loadOpenAPI(t)
	for _, u := range []string{f.base + "/openapi.json", f.stripped + "/openapi.json"} {
		r := apiDo(t, http.MethodGet, u, nil, nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" || !bytes.Equal(r.body, raw) {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 application/json, openapi.json as it is", u, r.status, r.header.Get("Content-Type"), len(r.body))
		}
		h := apiDo(t, http.MethodHead, u, nil, nil)
		if h.status != http.StatusOK || h.header.Get("Content-Length") != strconv.Itoa(len(raw)) || len(h.body) != 0 {
			t.Errorf("HEAD %s: %d, Content-Length %q", u, h.status, h.header.Get("Content-Length"))
		}
	}
	apiDo(t, http.MethodPost, f.base+"/openapi.json", nil, "{}").bodyA(t, http.StatusUnauthorized, "unauthorized", "")
	r := apiDo(t, http.MethodPost, f.base+"/openapi.json", &f.carol, "{}")
	r.fails(t, http.StatusMethodNotAllowed, "method.unsupported")
	if allow := r.header.Get("Allow"); allow != "GET, HEAD, OPTIONS" {
		t.Errorf("Allow %q", allow)
	}
	apiDo(t, http.MethodGet, f.base+"/openapi.json/more", &f.carol, nil).fails(t, http.StatusNotFound, "notfound")
}
