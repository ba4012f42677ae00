package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// UsageBucket is the requests of one bucket, by outcome.
type UsageBucket struct {
	Start        time.Time `json:"start"`
	Requests     int64     `json:"requests"`
	Allowed      int64     `json:"allowed"`
	Unauthorized int64     `json:"unauthorized"`
	Forbidden    int64     `json:"forbidden"`
	RateLimited  int64     `json:"rateLimited"`
	Status2xx    int64     `json:"status2xx"`
	Status3xx    int64     `json:"status3xx"`
	Status4xx    int64     `json:"status4xx"`
	Status5xx    int64     `json:"status5xx"`
}

// KeyUsage is the usage of one access key: its non-empty buckets, oldest
// first.
type KeyUsage struct {
	AccessID    string        `json:"accessId"`
	Granularity string        `json:"granularity"`
	Data        []UsageBucket `json:"data"`
}

// TopKey is a key among those with the most requests; Label and OwnerID
// are "" for a key deleted since.
type TopKey struct {
	AccessID string `json:"accessId"`
	Label    string `json:"label"`
	OwnerID  string `json:"ownerId"`
	Requests int64  `json:"requests"`
	Rejected int64  `json:"rejected"`
}

// OrgUsage is the usage of every key together, and the busiest keys.
type OrgUsage struct {
	Granularity string        `json:"granularity"`
	Data        []UsageBucket `json:"data"`
	TopKeys     []TopKey      `json:"topKeys"`
}

// UsageQuery chooses the range of a usage request. Zero fields take the
// API's defaults: the last 24 hours, the finest granularity that reaches
// back to From, and 10 top keys.
type UsageQuery struct {
	From, To time.Time
	// Granularity is "minute", "hour" or "day".
	Granularity string
	// Top is how many top keys OrgUsage lists (1..100).
	Top int
}

// values encodes q as query parameters.
func (q UsageQuery) values(top bool) string {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Granularity != "" {
		v.Set("granularity", q.Granularity)
	}
	if top && q.Top != 0 {
		v.Set("top", strconv.Itoa(q.Top))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// KeyUsage returns the usage of the access key id (the caller's own, or
// any with manageAccessKeys).
func (c *Client) KeyUsage(ctx context.Context, id string, q UsageQuery) (*KeyUsage, error) {
	var u KeyUsage
	return &u, c.do(ctx, http.MethodGet, keysPath("", id)+"/usage"+q.values(false), nil, &u)
}

// OrgUsage returns the usage of every key together and the keys with the
// most requests (needs manageAccessKeys).
func (c *Client) OrgUsage(ctx context.Context, q UsageQuery) (*OrgUsage, error) {
	var u OrgUsage
	return &u, c.do(ctx, http.MethodGet, "/usage"+q.values(true), nil, &u)
}
