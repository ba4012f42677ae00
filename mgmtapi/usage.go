package mgmtapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/usage"
)

// Usage analytics: GET /accessKeys/{id}/usage (and the same under
// /serviceAccounts/{sa}) and GET /usage. Both read the buckets of one
// granularity whose start lies in [from, to). The range is bounded by
// what is kept: from is moved up to the oldest bucket the granularity
// retains (now minus its retention) and to down to the end of the
// current bucket, so that a request never reads more than one
// retention's worth of buckets.

// Parameters of the usage endpoints.
const (
	defaultUsageRange = 24 * time.Hour
	defaultTopKeys    = 10
	maxTopKeys        = 100
)

// apiUsageBucket is one bucket of usage as the API shows it.
type apiUsageBucket struct {
	Start        keystore.Timestamp `json:"start"`
	Requests     int64              `json:"requests"`
	Allowed      int64              `json:"allowed"`
	Unauthorized int64              `json:"unauthorized"`
	Forbidden    int64              `json:"forbidden"`
	RateLimited  int64              `json:"rateLimited"`
	Status2xx    int64              `json:"status2xx"`
	Status3xx    int64              `json:"status3xx"`
	Status4xx    int64              `json:"status4xx"`
	Status5xx    int64              `json:"status5xx"`
}

// apiKeyUsage is the body of GET /accessKeys/{id}/usage.
type apiKeyUsage struct {
	AccessID    string           `json:"accessId"`
	Granularity string           `json:"granularity"`
	Data        []apiUsageBucket `json:"data"`
}

// apiOrgUsage is the body of GET /usage.
type apiOrgUsage struct {
	Granularity string           `json:"granularity"`
	Data        []apiUsageBucket `json:"data"`
	TopKeys     []apiTopKey      `json:"topKeys"`
}

// apiTopKey is a key among those with the most requests. Label and
// OwnerID are "" for a key deleted since.
type apiTopKey struct {
	AccessID string `json:"accessId"`
	Label    string `json:"label"`
	OwnerID  string `json:"ownerId"`
	Requests int64  `json:"requests"`
	Rejected int64  `json:"rejected"`
}

// usageBuckets builds the public shape of buckets, keeping their order.
func usageBuckets(bs []usage.Bucket) []apiUsageBucket {
	out := make([]apiUsageBucket, 0, len(bs))
	for i := range bs {
		c := &bs[i].Counts
		out = append(out, apiUsageBucket{
			Start:        keystore.Timestamp{Time: bs[i].Start.UTC().Truncate(time.Millisecond)},
			Requests:     c.Requests(),
			Allowed:      c.Allowed(),
			Unauthorized: c[usage.Unauthorized],
			Forbidden:    c[usage.Forbidden],
			RateLimited:  c[usage.RateLimited],
			Status2xx:    c[usage.Status2xx],
			Status3xx:    c[usage.Status3xx],
			Status4xx:    c[usage.Status4xx],
			Status5xx:    c[usage.Status5xx],
		})
	}
	return out
}

// usageQuery is the range and granularity a usage request asks for,
// after defaults and clamping.
type usageQuery struct {
	from, to time.Time
	g        usage.Granularity
	// empty is set when nothing of the range is kept any more.
	empty bool
}

// usageQuery reads from, to and granularity, reporting every bad value
// at once (400 usage:invalid_from, usage:invalid_to,
// usage:invalid_granularity), with top when withTop is set
// (usage:invalid_top); top is 0 otherwise.
func (c *apiCall) usageQuery(withTop bool) (usageQuery, int, error) {
	q := c.r.URL.Query()
	now := c.store.Now()
	var problems []apiProblem
	bad := func(field, format string, args ...any) {
		problems = append(problems, apiErrorf(http.StatusBadRequest, "usage:invalid_"+field, format, args...).problems...)
	}
	to, ok := usageTime(q.Get("to"), now)
	if !ok {
		bad("to", "to must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")
	}
	from, fromOK := usageTime(q.Get("from"), to.Add(-defaultUsageRange))
	if !fromOK {
		bad("from", "from must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")
	}
	if ok && fromOK && !to.After(from) {
		bad("to", "to must be later than from")
	}
	var g usage.Granularity
	if s := q.Get("granularity"); s != "" {
		if g, ok = usage.ParseGranularity(s); !ok {
			bad("granularity", "granularity must be minute, hour or day")
		}
	} else {
		g = usage.Finest(from, now)
	}
	top := 0
	if withTop {
		top = defaultTopKeys
		if s := q.Get("top"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxTopKeys {
				bad("top", "top must be a whole number from 1 to %d", maxTopKeys)
			}
			top = n
		}
	}
	if len(problems) > 0 {
		return usageQuery{}, 0, &apiError{status: http.StatusBadRequest, problems: problems}
	}
	uq := usageQuery{from: from, to: to, g: g}
	if oldest := now.Add(-g.Retention()); uq.from.Before(oldest) {
		uq.from = oldest
	}
	if end := now.Truncate(g.Width()).Add(g.Width()); uq.to.After(end) {
		uq.to = end
	}
	uq.empty = !uq.to.After(uq.from)
	return uq, top, nil
}

// usageTime reads an RFC 3339 time, def when s is empty. A "+" of a
// zone offset that was not escaped arrives as a space and is read as
// the "+" it was.
func usageTime(s string, def time.Time) (time.Time, bool) {
	if s == "" {
		return def, true
	}
	t, err := time.Parse(time.RFC3339, strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return def, false
	}
	return t.UTC(), true
}

// getKeyUsage serves GET /accessKeys/{id}/usage: the usage of a key the
// caller may see (its own, or any with manageAccessKeys).
func getKeyUsage(sa, id string) apiFunc {
	return func(c *apiCall) error {
		k, err := c.loadKey(sa, id, false)
		if err != nil {
			return err
		}
		uq, _, err := c.usageQuery(false)
		if err != nil {
			return err
		}
		var bs []usage.Bucket
		if !uq.empty {
			if bs, err = c.inst.Usage().Key(c.ctx, k.ID, uq.from, uq.to, uq.g); err != nil {
				return err
			}
		}
		return c.reply(http.StatusOK, apiKeyUsage{AccessID: k.ID, Granularity: string(uq.g), Data: usageBuckets(bs)})
	}
}

// getOrgUsage serves GET /usage: the organisation's totals and the keys
// with the most requests (manageAccessKeys). Top keys deleted since keep
// their place, with an empty label and owner.
func getOrgUsage(c *apiCall) error {
	if err := c.require(capManageKeys); err != nil {
		return err
	}
	uq, top, err := c.usageQuery(true)
	if err != nil {
		return err
	}
	out := apiOrgUsage{Granularity: string(uq.g), Data: []apiUsageBucket{}, TopKeys: []apiTopKey{}}
	if uq.empty {
		return c.reply(http.StatusOK, out)
	}
	st := c.inst.Usage()
	bs, err := st.Org(c.ctx, uq.from, uq.to, uq.g)
	if err != nil {
		return err
	}
	out.Data = usageBuckets(bs)
	tops, err := st.Top(c.ctx, uq.from, uq.to, top)
	if err != nil {
		return err
	}
	for _, t := range tops {
		tk := apiTopKey{AccessID: t.AccessID, Requests: t.Requests, Rejected: t.Rejected}
		k, err := c.store.KeyOrRetired(c.ctx, t.AccessID)
		switch _, gone := errors.AsType[*keystore.NotFoundError](err); {
		case err == nil:
			tk.Label, tk.OwnerID = k.Label, k.OwnerID
		case !gone:
			return err
		}
		out.TopKeys = append(out.TopKeys, tk)
	}
	return c.reply(http.StatusOK, out)
}
