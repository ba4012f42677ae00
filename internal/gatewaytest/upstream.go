package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Echo is what the Upstream server saw of a request.
type Echo struct {
	// Method is the request method.
	Method string `json:"method"`
	// Path is the request's URL path.
	Path string `json:"path"`
	// RawQuery is the request's encoded query, without the '?'.
	RawQuery string `json:"raw_query"`
	// Host is the Host header the upstream received.
	Host string `json:"host"`
	// Header holds every other request header.
	Header http.Header `json:"header"`
	// Body is the request body.
	Body string `json:"body"`
}

// Upstream starts a real HTTP server standing for the API behind the
// gateway. It answers every request with 200 and a JSON Echo of the
// request, so tests can check exactly what reached it. It is closed when
// the test ends.
func Upstream(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Echo{
			Method:   r.Method,
			Path:     r.URL.Path,
			RawQuery: r.URL.RawQuery,
			Host:     r.Host,
			Header:   r.Header,
			Body:     string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// DecodeEcho reads and closes resp's body and decodes the Echo the
// Upstream server answered with. A status other than 200 or a body that
// is not an Echo fails the test, since the response then did not come
// from the upstream.
func DecodeEcho(t testing.TB, resp *http.Response) Echo {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("gatewaytest: reading response body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gatewaytest: want the upstream's echo, got %s: %s", resp.Status, body)
	}
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("gatewaytest: response is not an upstream echo (%v): %s", err, body)
	}
	return e
}
