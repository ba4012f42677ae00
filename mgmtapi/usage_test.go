package mgmtapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/mgmtapi/client"
	"github.com/accessgate/accessgate/usage"
)

// usageFixture is the API fixture with usage written for some of its
// keys, at times far enough from now that requests the tests make (which
// the gateway may count) fall in other buckets.
type usageFixture struct {
	*apiFixture
	now time.Time // the minute the data was written relative to
	// robot is a key of the service account robot; gone a key deleted
	// after it was used.
	robot, gone cred
}

// counts builds usage counts from pairs of outcome and number.
func counts(pairs ...int64) usage.Counts {
	var c usage.Counts
	for i := 0; i+1 < len(pairs); i += 2 {
		c[pairs[i]] = pairs[i+1]
	}
	return c
}

// Outcomes as the int64 that counts takes.
const (
	oUnauth = int64(usage.Unauthorized)
	oForbid = int64(usage.Forbidden)
	oLimit  = int64(usage.RateLimited)
	o2xx    = int64(usage.Status2xx)
	o3xx    = int64(usage.Status3xx)
	o4xx    = int64(usage.Status4xx)
	o5xx    = int64(usage.Status5xx)
)

func newUsageFixture(t *testing.T) *usageFixture {
	t.Helper()
	f := &usageFixture{apiFixture: newAPIFixture(t), now: time.Now().UTC().Truncate(time.Minute)}
	ctx := context.Background()
	if _, err := f.store.CreateOwner(ctx, keystore.Owner{ID: "robot", Kind: keystore.OwnerServiceAccount, Name: "Robot", Email: "robot@example.com", RoleIDs: []string{"member"}, IsActive: true}, testOp); err != nil {
		t.Fatal(err)
	}
	f.robot = f.key(t, "robot", nil)
	f.gone = f.key(t, "bob", nil)
	at := func(d time.Duration) time.Time { return f.now.Add(-d) }
	ds := []usage.Delta{
		// Written newest first: the API answers oldest first.
		{AccessID: f.alice.id, Minute: at(75 * time.Minute), Counts: counts(o4xx, 2, oLimit, 1)},
		{AccessID: f.alice.id, Minute: at(90 * time.Minute), Counts: counts(o2xx, 3, oUnauth, 1)},
		{AccessID: f.alice.id, Minute: at(5 * time.Hour), Counts: counts(o2xx, 10)},
		{AccessID: f.alice.id, Minute: at(7 * time.Hour), Counts: counts(o5xx, 1, oForbid, 2)},
		{AccessID: f.alice.id, Minute: at(3 * 24 * time.Hour), Counts: counts(o3xx, 4)},
		{AccessID: f.bob.id, Minute: at(90 * time.Minute), Counts: counts(o2xx, 100)},
		{AccessID: f.robot.id, Minute: at(80 * time.Minute), Counts: counts(o2xx, 5)},
		{AccessID: f.gone.id, Minute: at(80 * time.Minute), Counts: counts(o2xx, 50, oForbid, 1)},
	}
	if _, err := usage.NewStore(f.rdb, f.prefix).Write(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteKey(ctx, f.gone.id, testOp); err != nil {
		t.Fatal(err)
	}
	return f
}

// query builds a query string; times are given as offsets before now.
func (f *usageFixture) query(kv ...any) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case time.Duration:
			q.Set(kv[i].(string), f.now.Add(-v).Format(time.RFC3339))
		case string:
			q.Set(kv[i].(string), v)
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// bucketJSON is a bucket as the API shows it.
type bucketJSON struct {
	Start        string `json:"start"`
	Requests     int64  `json:"requests"`
	Allowed      int64  `json:"allowed"`
	Unauthorized int64  `json:"unauthorized"`
	Forbidden    int64  `json:"forbidden"`
	RateLimited  int64  `json:"rateLimited"`
	Status2xx    int64  `json:"status2xx"`
	Status3xx    int64  `json:"status3xx"`
	Status4xx    int64  `json:"status4xx"`
	Status5xx    int64  `json:"status5xx"`
}

// bucketAt is the bucket of granularity g holding t, with counts c.
func bucketAt(t time.Time, g usage.Granularity, c usage.Counts) bucketJSON {
	start := t.Truncate(g.Width())
	return bucketJSON{
		Start: start.Format(keystore.TimeFormat), Requests: c.Requests(), Allowed: c.Allowed(),
		Unauthorized: c[usage.Unauthorized], Forbidden: c[usage.Forbidden], RateLimited: c[usage.RateLimited],
		Status2xx: c[usage.Status2xx], Status3xx: c[usage.Status3xx], Status4xx: c[usage.Status4xx], Status5xx: c[usage.Status5xx],
	}
}

func add(a, b usage.Counts) usage.Counts {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

// TestAPIKeyUsage: a key's usage in the shape of the contract, only
// non-empty buckets, oldest first, at each granularity; the default
// granularity is the finest that reaches back to from; the caller sees
// its own keys, holders of manageAccessKeys every key, others get 404.
func TestAPIKeyUsage(t *testing.T) {
	t.Parallel()
	f := newUsageFixture(t)
	at := func(d time.Duration) time.Time { return f.now.Add(-d) }
	minute := []bucketJSON{
		bucketAt(at(90*time.Minute), usage.Minute, counts(o2xx, 3, oUnauth, 1)),
		bucketAt(at(75*time.Minute), usage.Minute, counts(o4xx, 2, oLimit, 1)),
	}
	tests := []struct {
		name    string
		caller  *cred
		path    string
		status  int
		code    string
		gran    string
		want    []bucketJSON
		wantHas *bucketJSON // a bucket the data must hold (ranges reaching now)
	}{
		{name: "own key, minutes", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 2*time.Hour, "to", 60*time.Minute, "granularity", "minute"),
			status: 200, gran: "minute", want: minute},
		{name: "own key, hours", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 8*time.Hour, "to", 3*time.Hour, "granularity", "hour"),
			status: 200, gran: "hour", want: []bucketJSON{
				bucketAt(at(7*time.Hour), usage.Hour, counts(o5xx, 1, oForbid, 2)),
				bucketAt(at(5*time.Hour), usage.Hour, counts(o2xx, 10)),
			}},
		{name: "own key, days", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 5*24*time.Hour, "to", 2*24*time.Hour, "granularity", "day"),
			status: 200, gran: "day", want: []bucketJSON{bucketAt(at(3*24*time.Hour), usage.Day, counts(o3xx, 4))}},
		{name: "nothing in range", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 50*time.Minute, "to", 40*time.Minute),
			status: 200, gran: "minute", want: []bucketJSON{}},
		{name: "default granularity: minute", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 100*time.Minute, "to", 60*time.Minute),
			status: 200, gran: "minute", want: minute},
		{name: "default granularity: hour", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 70*time.Hour, "to", 3*time.Hour),
			status: 200, gran: "hour", want: []bucketJSON{
				bucketAt(at(7*time.Hour), usage.Hour, counts(o5xx, 1, oForbid, 2)),
				bucketAt(at(5*time.Hour), usage.Hour, counts(o2xx, 10)),
			}},
		{name: "default granularity: day", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 30*24*time.Hour, "to", 2*24*time.Hour),
			status: 200, gran: "day", want: []bucketJSON{bucketAt(at(3*24*time.Hour), usage.Day, counts(o3xx, 4))}},
		{name: "defaults: the last 24 hours by hour", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage",
			status: 200, gran: "hour", wantHas: &bucketJSON{}},
		{name: "range beyond the retention is clamped", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", "2000-01-01T00:00:00Z", "to", "2100-01-01T00:00:00+01:00", "granularity", "minute"),
			status: 200, gran: "minute", wantHas: &minute[0]},
		{name: "zone offsets", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage?granularity=minute&from=" + url.QueryEscape(at(2*time.Hour).In(time.FixedZone("", 5*3600)).Format(time.RFC3339)) + "&to=" + url.QueryEscape(at(time.Hour).In(time.FixedZone("", -3600)).Format(time.RFC3339)),
			status: 200, gran: "minute", want: minute},
		{name: "a zone offset's + left unescaped", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage?granularity=minute&to=" + url.QueryEscape(at(time.Hour).Format(time.RFC3339)) + "&from=" + at(2*time.Hour).In(time.FixedZone("", 5*3600)).Format(time.RFC3339),
			status: 200, gran: "minute", want: minute},
		{name: "manageAccessKeys reads any key", caller: &f.admin, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", 2*time.Hour, "to", 60*time.Minute, "granularity", "minute"),
			status: 200, gran: "minute", want: minute},
		{name: "another user's key is not found", caller: &f.bob, path: "/accessKeys/" + f.alice.id + "/usage", status: 404, code: "accessKey:not_found"},
		{name: "no key capability", caller: &f.carol, path: "/accessKeys/" + f.carol.id + "/usage", status: 403, code: "forbidden"},
		{name: "unknown key", caller: &f.admin, path: "/accessKeys/nosuchkey0000000/usage", status: 404, code: "accessKey:not_found"},
		{name: "deleted key", caller: &f.admin, path: "/accessKeys/" + f.gone.id + "/usage", status: 404, code: "accessKey:not_found"},
		{name: "service account key", caller: &f.admin, path: "/serviceAccounts/robot/accessKeys/" + f.robot.id + "/usage" + f.query("from", 2*time.Hour, "to", 60*time.Minute, "granularity", "minute"),
			status: 200, gran: "minute", want: []bucketJSON{bucketAt(at(80*time.Minute), usage.Minute, counts(o2xx, 5))}},
		{name: "a user's key under a service account", caller: &f.admin, path: "/serviceAccounts/robot/accessKeys/" + f.alice.id + "/usage", status: 404, code: "accessKey:not_found"},
		{name: "service account keys need manageAccessKeys", caller: &f.alice, path: "/serviceAccounts/robot/accessKeys/" + f.robot.id + "/usage", status: 403, code: "forbidden"},
		{name: "bad from", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage?from=yesterday", status: 400, code: "usage:invalid_from"},
		{name: "bad to", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage?to=2026-13-01T00:00:00Z", status: 400, code: "usage:invalid_to"},
		{name: "to before from", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", time.Hour, "to", 2*time.Hour), status: 400, code: "usage:invalid_to"},
		{name: "to equal to from", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage" + f.query("from", time.Hour, "to", time.Hour), status: 400, code: "usage:invalid_to"},
		{name: "bad granularity", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage?granularity=week", status: 400, code: "usage:invalid_granularity"},
		{name: "granularity is case-sensitive", caller: &f.alice, path: "/accessKeys/" + f.alice.id + "/usage?granularity=Hour", status: 400, code: "usage:invalid_granularity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, http.MethodGet, tc.path, tc.caller, nil)
			if tc.status != http.StatusOK {
				r.fails(t, tc.status, tc.code)
				return
			}
			m := r.ok(t, http.StatusOK)
			fieldsExactly(t, m, "accessId", "granularity", "data")
			var got struct {
				AccessID    string       `json:"accessId"`
				Granularity string       `json:"granularity"`
				Data        []bucketJSON `json:"data"`
			}
			r.into(t, &got)
			if got.Granularity != tc.gran || got.Data == nil {
				t.Errorf("granularity %q, data %v; want %q and a list", got.Granularity, got.Data, tc.gran)
			}
			checkBuckets(t, r.body, got.Data)
			switch {
			case tc.wantHas != nil && tc.wantHas.Start == "":
				if len(got.Data) == 0 {
					t.Errorf("no data in the last 24 hours: %s", r.body)
				}
			case tc.wantHas != nil:
				if !slices.Contains(got.Data, *tc.wantHas) {
					t.Errorf("data %+v lacks %+v", got.Data, *tc.wantHas)
				}
			case !slices.Equal(got.Data, tc.want):
				t.Errorf("data\n %+v\nwant\n %+v", got.Data, tc.want)
			}
		})
	}

	// Every bad value is reported at once.
	r := f.do(t, http.MethodGet, "/accessKeys/"+f.alice.id+"/usage?from=x&to=y&granularity=z", &f.alice, nil)
	for _, code := range []string{"usage:invalid_from", "usage:invalid_to", "usage:invalid_granularity"} {
		r.fails(t, http.StatusBadRequest, code)
	}
}

// checkBuckets checks what every bucket of a body must hold: exactly the
// fields of the contract, starts as RFC 3339 UTC with milliseconds,
// oldest first without repeats, and consistent sums.
func checkBuckets(t *testing.T, body []byte, data []bucketJSON) {
	t.Helper()
	var raw struct{ Data []map[string]any }
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, b := range raw.Data {
		fieldsExactly(t, b, "start", "requests", "allowed", "unauthorized", "forbidden", "rateLimited", "status2xx", "status3xx", "status4xx", "status5xx")
		parseAPITime(t, b["start"])
	}
	for i, b := range data {
		if i > 0 && b.Start <= data[i-1].Start {
			t.Errorf("bucket %s after %s: not oldest first", b.Start, data[i-1].Start)
		}
		if b.Requests == 0 {
			t.Errorf("empty bucket %+v", b)
		}
		if b.Allowed != b.Status2xx+b.Status3xx+b.Status4xx+b.Status5xx || b.Requests != b.Allowed+b.Unauthorized+b.Forbidden+b.RateLimited {
			t.Errorf("bucket %+v does not add up", b)
		}
	}
}

// TestAPIOrgUsage: the organisation's totals and its top keys, with the
// label and owner of each key (empty for a key deleted since), busiest
// first; manageAccessKeys only; bad values answer 400.
func TestAPIOrgUsage(t *testing.T) {
	t.Parallel()
	f := newUsageFixture(t)
	at := func(d time.Duration) time.Time { return f.now.Add(-d) }
	type topJSON struct {
		AccessID string `json:"accessId"`
		Label    string `json:"label"`
		OwnerID  string `json:"ownerId"`
		Requests int64  `json:"requests"`
		Rejected int64  `json:"rejected"`
	}
	// Minutes 90 and 80 may share a bucket only with themselves: the
	// buckets below are distinct minutes.
	wantData := []bucketJSON{
		bucketAt(at(90*time.Minute), usage.Minute, add(counts(o2xx, 3, oUnauth, 1), counts(o2xx, 100))),
		bucketAt(at(80*time.Minute), usage.Minute, add(counts(o2xx, 5), counts(o2xx, 50, oForbid, 1))),
		bucketAt(at(75*time.Minute), usage.Minute, counts(o4xx, 2, oLimit, 1)),
	}
	allTop := []topJSON{
		{AccessID: f.bob.id, Label: "key of bob", OwnerID: "bob", Requests: 100},
		{AccessID: f.gone.id, Requests: 51, Rejected: 1},
		{AccessID: f.alice.id, Label: "key of alice", OwnerID: "alice", Requests: 7, Rejected: 2},
		{AccessID: f.robot.id, Label: "key of robot", OwnerID: "robot", Requests: 5},
	}
	window := f.query("from", 2*time.Hour, "to", 60*time.Minute, "granularity", "minute")
	tests := []struct {
		name   string
		caller *cred
		query  string
		status int
		code   string
		gran   string
		data   []bucketJSON
		top    []topJSON
	}{
		{name: "minutes, top keys", caller: &f.admin, query: window, status: 200, gran: "minute", data: wantData, top: allTop},
		{name: "top 1", caller: &f.admin, query: window + "&top=1", status: 200, gran: "minute", data: wantData, top: allTop[:1]},
		{name: "top 100", caller: &f.admin, query: window + "&top=100", status: 200, gran: "minute", data: wantData, top: allTop},
		{name: "default granularity", caller: &f.admin, query: f.query("from", 100*time.Minute, "to", 60*time.Minute), status: 200, gran: "minute", data: wantData, top: allTop},
		{name: "nothing in range", caller: &f.admin, query: f.query("from", 50*24*time.Hour, "to", 40*24*time.Hour), status: 200, gran: "day", data: []bucketJSON{}, top: []topJSON{}},
		{name: "needs manageAccessKeys", caller: &f.alice, status: 403, code: "forbidden"},
		{name: "needs manageAccessKeys (reader)", caller: &f.carol, status: 403, code: "forbidden"},
		{name: "top 0", caller: &f.admin, query: "?top=0", status: 400, code: "usage:invalid_top"},
		{name: "top 101", caller: &f.admin, query: "?top=101", status: 400, code: "usage:invalid_top"},
		{name: "top not a number", caller: &f.admin, query: "?top=ten", status: 400, code: "usage:invalid_top"},
		{name: "bad from", caller: &f.admin, query: "?from=2026-01-01", status: 400, code: "usage:invalid_from"},
		{name: "to before from", caller: &f.admin, query: f.query("from", time.Hour, "to", 2*time.Hour), status: 400, code: "usage:invalid_to"},
		{name: "bad granularity", caller: &f.admin, query: "?granularity=month", status: 400, code: "usage:invalid_granularity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, http.MethodGet, "/usage"+tc.query, tc.caller, nil)
			if tc.status != http.StatusOK {
				r.fails(t, tc.status, tc.code)
				return
			}
			m := r.ok(t, http.StatusOK)
			fieldsExactly(t, m, "granularity", "data", "topKeys")
			var got struct {
				Granularity string       `json:"granularity"`
				Data        []bucketJSON `json:"data"`
				TopKeys     []topJSON    `json:"topKeys"`
			}
			r.into(t, &got)
			checkBuckets(t, r.body, got.Data)
			if got.Granularity != tc.gran || !slices.Equal(got.Data, tc.data) {
				t.Errorf("granularity %q, data\n %+v\nwant %q,\n %+v", got.Granularity, got.Data, tc.gran, tc.data)
			}
			if got.TopKeys == nil || !slices.Equal(got.TopKeys, tc.top) {
				t.Errorf("topKeys\n %+v\nwant\n %+v", got.TopKeys, tc.top)
			}
		})
	}
	r := f.do(t, http.MethodGet, "/usage?top=0&granularity=x", &f.admin, nil)
	r.fails(t, http.StatusBadRequest, "usage:invalid_top")
	r.fails(t, http.StatusBadRequest, "usage:invalid_granularity")
}

// TestAPIUsageClient reads usage through the Go client: a key's buckets
// and the organisation's totals and top keys, and the API's 400 as an
// Error with the field's code.
func TestAPIUsageClient(t *testing.T) {
	t.Parallel()
	f := newUsageFixture(t)
	ctx := t.Context()
	admin, err := client.New(f.base, f.admin.id, f.admin.secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := client.UsageQuery{From: f.now.Add(-2 * time.Hour), To: f.now.Add(-time.Hour), Granularity: "minute", Top: 2}
	ku, err := admin.KeyUsage(ctx, f.alice.id, q)
	if err != nil {
		t.Fatal(err)
	}
	if ku.AccessID != f.alice.id || ku.Granularity != "minute" || len(ku.Data) != 2 ||
		!ku.Data[0].Start.Equal(f.now.Add(-90*time.Minute)) || ku.Data[0].Requests != 4 || ku.Data[1].RateLimited != 1 {
		t.Errorf("key usage %+v", ku)
	}
	ou, err := admin.OrgUsage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if ou.Granularity != "minute" || len(ou.Data) != 3 || ou.Data[0].Status2xx != 103 ||
		len(ou.TopKeys) != 2 || ou.TopKeys[0] != (client.TopKey{AccessID: f.bob.id, Label: "key of bob", OwnerID: "bob", Requests: 100}) ||
		ou.TopKeys[1] != (client.TopKey{AccessID: f.gone.id, Requests: 51, Rejected: 1}) {
		t.Errorf("org usage %+v", ou)
	}
	_, err = admin.OrgUsage(ctx, client.UsageQuery{Granularity: "week"})
	if ce, ok := errors.AsType[*client.Error](err); !ok || ce.Status != http.StatusBadRequest || !ce.HasCode("usage:invalid_granularity") {
		t.Errorf("granularity week: %v", err)
	}
}
