package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// ListTiming is the latency of listing keys through the management API.
type ListTiming struct {
	// First and Deep are the median latencies of the first page and of a
	// page deep in the list.
	First, Deep time.Duration
	// Requests is the number of requests timed per page.
	Requests int
	// DeepBy says how the deep page was reached: "token" (an Access ID
	// from the middle of the seeded keys) or "walk" (following next).
	DeepBy string
}

// listPage is the part of a list response the timing checks.
type listPage struct {
	Data []json.RawMessage `json:"data"`
	Next *string           `json:"next"`
}

// MeasureList times GET /api/v1/accessKeys?limit=100 on base (such as
// http://127.0.0.1:8080) with the Authorization header auth: the first
// page, and a page deep in the list, n times each, interleaved, on one
// keep-alive connection. deepToken is tried as the deep page's token; if
// the API refuses it, the deep page is reached by following next from
// the start, at most walk keys deep.
func MeasureList(ctx context.Context, base, auth, deepToken string, n, walk int) (ListTiming, error) {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	get := func(limit int, token string) (listPage, int, time.Duration, error) {
		u := base + "/api/v1/accessKeys?limit=" + fmt.Sprint(limit)
		if token != "" {
			u += "&token=" + url.QueryEscape(token)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return listPage{}, 0, 0, err
		}
		req.Header.Set("Authorization", auth)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return listPage{}, 0, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		elapsed := time.Since(t0)
		if err != nil {
			return listPage{}, 0, 0, err
		}
		var p listPage
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &p); err != nil {
				return listPage{}, 0, 0, fmt.Errorf("GET %s: %v", u, err)
			}
		}
		return p, resp.StatusCode, elapsed, nil
	}
	want := func(limit int, token string) (listPage, time.Duration, error) {
		p, status, d, err := get(limit, token)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET /api/v1/accessKeys (token %q): status %d", token, status)
		}
		if err == nil && len(p.Data) != limit {
			err = fmt.Errorf("GET /api/v1/accessKeys (token %q): %d keys, want %d", token, len(p.Data), limit)
		}
		return p, d, err
	}

	t := ListTiming{Requests: n, DeepBy: "token"}
	if _, _, err := want(100, ""); err != nil {
		return t, err
	}
	_, status, _, err := get(100, deepToken)
	if err != nil {
		return t, err
	}
	if status != http.StatusOK {
		// The token is not an Access ID: follow next instead.
		t.DeepBy, deepToken = "walk", ""
		for depth := 0; depth < walk; depth += 1000 {
			p, _, err := want(1000, deepToken)
			if err != nil || p.Next == nil {
				break
			}
			deepToken = *p.Next
		}
		if deepToken == "" {
			return t, fmt.Errorf("no page deep in the list: the first page of 1000 has no next")
		}
	}
	var first, deep []float64
	for i := range n + 5 {
		_, d1, err := want(100, "")
		if err != nil {
			return t, err
		}
		_, d2, err := want(100, deepToken)
		if err != nil {
			return t, err
		}
		if i >= 5 { // the first few warm the connection and the caches
			first = append(first, float64(d1))
			deep = append(deep, float64(d2))
		}
	}
	t.First, t.Deep = time.Duration(Median(first)), time.Duration(Median(deep))
	return t, nil
}

// MiddleID returns the middle of ids in sorted order, an Access ID about
// halfway through the list of keys when ids are a uniform sample.
func MiddleID(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	s := slices.Clone(ids)
	slices.Sort(s)
	return s[len(s)/2]
}
