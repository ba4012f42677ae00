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

// ListTarget is a management API whose key list MeasureLists times.
type ListTarget struct {
	// Base is the API's origin, such as http://127.0.0.1:8080.
	Base string
	// Auth is the Authorization header of a key allowed to list every key.
	Auth string
	// DeepToken is tried as the token of the page deep in the list; if
	// the API refuses it, that page is reached by following next.
	DeepToken string
}

// lister times one target's pages on one keep-alive connection.
type lister struct {
	ListTarget
	client *http.Client
	// deep is the token of the deep page and by how it was found.
	deep, by string
}

// get fetches a page and times it; a page that is not 200 is not read.
func (l *lister) get(ctx context.Context, limit int, token string) (listPage, int, time.Duration, error) {
	u := l.Base + "/api/v1/accessKeys?limit=" + fmt.Sprint(limit)
	if token != "" {
		u += "&token=" + url.QueryEscape(token)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return listPage{}, 0, 0, err
	}
	req.Header.Set("Authorization", l.Auth)
	t0 := time.Now()
	resp, err := l.client.Do(req)
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

// want fetches a page that must be full.
func (l *lister) want(ctx context.Context, limit int, token string) (listPage, time.Duration, error) {
	p, status, d, err := l.get(ctx, limit, token)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s/api/v1/accessKeys (token %q): status %d", l.Base, token, status)
	}
	if err == nil && len(p.Data) != limit {
		err = fmt.Errorf("GET %s/api/v1/accessKeys (token %q): %d keys, want %d", l.Base, token, len(p.Data), limit)
	}
	return p, d, err
}

// prepare checks the first page and finds the deep page's token.
func (l *lister) prepare(ctx context.Context, walk int) error {
	if _, _, err := l.want(ctx, 100, ""); err != nil {
		return err
	}
	_, status, _, err := l.get(ctx, 100, l.DeepToken)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		l.deep, l.by = l.DeepToken, "token"
		return nil
	}
	// The token is not an Access ID: follow next instead.
	l.by = "walk"
	for depth := 0; depth < walk; depth += 1000 {
		p, _, err := l.want(ctx, 1000, l.deep)
		if err != nil || p.Next == nil {
			break
		}
		l.deep = *p.Next
	}
	if l.deep == "" {
		return fmt.Errorf("%s: no page deep in the list: the first page of 1000 has no next", l.Base)
	}
	return nil
}

// MeasureLists times GET /api/v1/accessKeys?limit=100 on each target:
// the first page, and a page deep in the list, n times each, the targets
// and pages interleaved so that they share the same background load. The
// deep page is reached by DeepToken, or by following next from the
// start, at most walk keys deep.
func MeasureLists(ctx context.Context, targets []ListTarget, n, walk int) ([]ListTiming, error) {
	ls := make([]*lister, len(targets))
	for i, t := range targets {
		ls[i] = &lister{ListTarget: t, client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
		defer ls[i].client.CloseIdleConnections()
		if err := ls[i].prepare(ctx, walk); err != nil {
			return nil, err
		}
	}
	first := make([][]float64, len(ls))
	deep := make([][]float64, len(ls))
	for round := range n + 5 {
		for i, l := range ls {
			_, d1, err := l.want(ctx, 100, "")
			if err != nil {
				return nil, err
			}
			_, d2, err := l.want(ctx, 100, l.deep)
			if err != nil {
				return nil, err
			}
			if round >= 5 { // the first few warm the connections and the caches
				first[i] = append(first[i], float64(d1))
				deep[i] = append(deep[i], float64(d2))
			}
		}
	}
	out := make([]ListTiming, len(ls))
	for i, l := range ls {
		out[i] = ListTiming{First: time.Duration(Median(first[i])), Deep: time.Duration(Median(deep[i])), Requests: n, DeepBy: l.by}
	}
	return out, nil
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
