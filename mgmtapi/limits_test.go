package mgmtapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// keyLimits are the limit fields of an AccessKey answer.
type keyLimits struct {
	RateLimit        *limits.Rate  `json:"rateLimit"`
	ConcurrencyLimit *int          `json:"concurrencyLimit"`
	Quota            *limits.Quota `json:"quota"`
	QuotaUsed        int64         `json:"quotaUsed"`
	QuotaResetsAt    *string       `json:"quotaResetsAt"`
}

func (l keyLimits) String() string {
	b, _ := json.Marshal(l)
	return string(b)
}

// sameLimits compares the settings (not the usage) of two answers.
func sameLimits(a, b keyLimits) bool {
	eq := func(x, y any) bool {
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		return string(bx) == string(by)
	}
	return eq(a.RateLimit, b.RateLimit) && eq(a.ConcurrencyLimit, b.ConcurrencyLimit) && eq(a.Quota, b.Quota)
}

func limitsOf(t testing.TB, r apiResp) keyLimits {
	t.Helper()
	var l keyLimits
	r.into(t, &l)
	return l
}

func intp(n int) *int { return &n }

// TestAPIKeyLimitsUpdate walks one key of alice through PUTs that set,
// leave and clear its limits, by an admin and by alice herself, who holds
// only createAccessKeys: she may send the values she reads back but not
// raise, lower or remove a limit.
func TestAPIKeyLimitsUpdate(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	k := f.key(t, "alice", nil)
	path := "/accessKeys/" + k.id
	rate := &limits.Rate{Requests: 100, PeriodSeconds: 60, Burst: 100}
	rate2 := &limits.Rate{Requests: 5, PeriodSeconds: 1, Burst: 10}
	day := &limits.Quota{Requests: 1000, Period: "day"}

	steps := []struct {
		name   string
		caller *cred
		body   map[string]any
		status int // 200 or 403
		want   keyLimits
	}{
		{"admin sets a rate, burst left out", &f.admin, map[string]any{"rateLimit": map[string]any{"requests": 100, "periodSeconds": 60}}, 200,
			keyLimits{RateLimit: rate}},
		{"admin sets the others, the rate left out", &f.admin, map[string]any{"concurrencyLimit": 5, "quota": map[string]any{"requests": 1000, "period": "day"}}, 200,
			keyLimits{RateLimit: rate, ConcurrencyLimit: intp(5), Quota: day}},
		{"owner leaves them out", &f.alice, map[string]any{}, 200,
			keyLimits{RateLimit: rate, ConcurrencyLimit: intp(5), Quota: day}},
		{"owner sends them back unchanged", &f.alice, map[string]any{"rateLimit": rate, "concurrencyLimit": 5, "quota": day}, 200,
			keyLimits{RateLimit: rate, ConcurrencyLimit: intp(5), Quota: day}},
		{"owner sends the rate with burst left out", &f.alice, map[string]any{"rateLimit": map[string]any{"requests": 100, "periodSeconds": 60}}, 200,
			keyLimits{RateLimit: rate, ConcurrencyLimit: intp(5), Quota: day}},
		{"owner raises the rate", &f.alice, map[string]any{"rateLimit": map[string]any{"requests": 1000, "periodSeconds": 60}}, 403, keyLimits{}},
		{"owner raises the burst", &f.alice, map[string]any{"rateLimit": map[string]any{"requests": 100, "periodSeconds": 60, "burst": 500}}, 403, keyLimits{}},
		{"owner clears the rate", &f.alice, map[string]any{"rateLimit": nil}, 403, keyLimits{}},
		{"owner clears the quota", &f.alice, map[string]any{"quota": nil}, 403, keyLimits{}},
		{"owner changes the quota period", &f.alice, map[string]any{"quota": map[string]any{"requests": 1000, "period": "month"}}, 403, keyLimits{}},
		{"owner raises concurrency", &f.alice, map[string]any{"concurrencyLimit": 6}, 403, keyLimits{}},
		{"owner clears concurrency among unchanged values", &f.alice, map[string]any{"rateLimit": rate, "concurrencyLimit": nil}, 403, keyLimits{}},
		{"admin changes the rate", &f.admin, map[string]any{"rateLimit": rate2}, 200,
			keyLimits{RateLimit: rate2, ConcurrencyLimit: intp(5), Quota: day}},
		{"admin clears the rate", &f.admin, map[string]any{"rateLimit": nil}, 200,
			keyLimits{ConcurrencyLimit: intp(5), Quota: day}},
		{"admin clears the rest", &f.admin, map[string]any{"concurrencyLimit": nil, "quota": nil}, 200, keyLimits{}},
		{"owner clears what is already the default", &f.alice, map[string]any{"rateLimit": nil, "concurrencyLimit": nil, "quota": nil}, 200, keyLimits{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			body := map[string]any{"disabled": false}
			for k, v := range st.body {
				body[k] = v
			}
			if st.status == http.StatusForbidden {
				f.unchanged(t, func() {
					msgs := f.do(t, http.MethodPut, path, st.caller, body).fails(t, http.StatusForbidden, "forbidden")
					if len(msgs) != 1 || msgs[0] == "" {
						t.Errorf("messages %q", msgs)
					}
				})
				return
			}
			got := limitsOf(t, f.do(t, http.MethodPut, path, st.caller, body))
			if !sameLimits(got, st.want) {
				t.Errorf("PUT answered %v, want %v", got, st.want)
			}
			read := limitsOf(t, f.do(t, http.MethodGet, path, &f.admin, nil))
			if !sameLimits(read, st.want) {
				t.Errorf("GET answers %v, want %v", read, st.want)
			}
			if (read.Quota == nil) != (read.QuotaResetsAt == nil) || read.QuotaUsed != 0 {
				t.Errorf("quota usage %v", read)
			}
		})
	}

	// Each change by the admin wrote one AccessKeyUpdated event carrying
	// the limits before and after; the owner's no-ops wrote none.
	evs, err := f.store.Events(context.Background(), keystore.EventFilter{Name: keystore.EventKeyUpdated, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var mine []keystore.Event
	for _, e := range evs {
		if e.AccessKey != nil && e.AccessKey.AccessID == k.id {
			mine = append(mine, e)
		}
	}
	if len(mine) != 5 {
		t.Fatalf("%d AccessKeyUpdated events, want 5 (the admin's changes)", len(mine))
	}
	decode := func(v any) keyLimits {
		b, _ := json.Marshal(v)
		var l keyLimits
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	from, to := decode(mine[2].From), decode(mine[2].To)
	if from.RateLimit == nil || from.RateLimit.Requests != 100 || to.RateLimit == nil || *to.RateLimit != *rate2 ||
		from.Quota == nil || *from.Quota != *day || to.ConcurrencyLimit == nil || *to.ConcurrencyLimit != 5 {
		t.Errorf("the rate change recorded from %v to %v", from, to)
	}
	if last := decode(mine[4].To); last.ConcurrencyLimit != nil || last.Quota != nil || decode(mine[4].From).Quota == nil {
		t.Errorf("the last change recorded from %v to %v", decode(mine[4].From), last)
	}
	if mine[0].Operator.ID != "ADMIN1" {
		t.Errorf("operator %+v", mine[0].Operator)
	}
}

// TestAPIKeyLimitsCreate creates keys with limits: an admin may, for
// itself and for a service account; alice, with createAccessKeys only,
// may create keys with the default limits but not with limits of her
// choosing.
func TestAPIKeyLimitsCreate(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	if _, err := f.store.CreateOwner(context.Background(), keystore.Owner{ID: "robot", Kind: keystore.OwnerServiceAccount, Name: "Robot", Email: "robot@example.com", IsActive: true}, testOp); err != nil {
		t.Fatal(err)
	}
	full := map[string]any{
		"rateLimit":        map[string]any{"requests": 4, "periodSeconds": 1, "burst": 8},
		"concurrencyLimit": 3,
		"quota":            map[string]any{"requests": 100000, "period": "month"},
	}
	want := keyLimits{RateLimit: &limits.Rate{Requests: 4, PeriodSeconds: 1, Burst: 8}, ConcurrencyLimit: intp(3), Quota: &limits.Quota{Requests: 100000, Period: "month"}}
	tests := []struct {
		name   string
		caller *cred
		path   string
		limits map[string]any
		status int
		want   keyLimits
	}{
		{"admin, own key", &f.admin, "/accessKeys", full, 200, want},
		{"admin, service account key", &f.admin, "/serviceAccounts/robot/accessKeys", full, 200, want},
		{"admin, rate only", &f.admin, "/accessKeys", map[string]any{"rateLimit": map[string]any{"requests": 10, "periodSeconds": 3600}},
			200, keyLimits{RateLimit: &limits.Rate{Requests: 10, PeriodSeconds: 3600, Burst: 10}}},
		{"member, no limits", &f.alice, "/accessKeys", nil, 200, keyLimits{}},
		{"member, null limits", &f.alice, "/accessKeys", map[string]any{"rateLimit": nil, "concurrencyLimit": nil, "quota": nil}, 200, keyLimits{}},
		{"member, a rate", &f.alice, "/accessKeys", map[string]any{"rateLimit": map[string]any{"requests": 1, "periodSeconds": 1}}, 403, keyLimits{}},
		{"member, a quota", &f.alice, "/accessKeys", map[string]any{"quota": map[string]any{"requests": 1, "period": "day"}}, 403, keyLimits{}},
		{"member, concurrency", &f.alice, "/accessKeys", map[string]any{"concurrencyLimit": 1}, 403, keyLimits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"label": tt.name}
			for k, v := range tt.limits {
				body[k] = v
			}
			if tt.status == http.StatusForbidden {
				f.unchanged(t, func() {
					f.do(t, http.MethodPost, tt.path, tt.caller, body).fails(t, http.StatusForbidden, "forbidden")
				})
				return
			}
			r := f.do(t, http.MethodPost, tt.path, tt.caller, body)
			created := r.ok(t, http.StatusOK)
			got := limitsOf(t, r)
			if !sameLimits(got, tt.want) {
				t.Errorf("created with %v, want %v", got, tt.want)
			}
			stored, err := f.store.Key(context.Background(), created["id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if !sameLimits(keyLimits{RateLimit: viewRate(stored.RateLimit), ConcurrencyLimit: stored.ConcurrencyLimit, Quota: stored.Quota}, tt.want) {
				t.Errorf("stored %+v %v %+v, want %v", stored.RateLimit, stored.ConcurrencyLimit, stored.Quota, tt.want)
			}
			if (got.Quota != nil) != (got.QuotaResetsAt != nil) {
				t.Errorf("quota %v", got)
			}
		})
	}
}

func viewRate(r *limits.Rate) *limits.Rate {
	if r == nil {
		return nil
	}
	n := r.Normalized()
	return &n
}

// TestAPIKeyLimitsInvalid sends limits of the wrong type or out of range
// to POST and PUT: each is answered 400 with the field's code and changes
// nothing.
func TestAPIKeyLimitsInvalid(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	k := f.key(t, "alice", nil)
	tests := []struct {
		name string
		json string // the limit fields of the body
		code string
	}{
		{"rate as text", `"rateLimit":"100/m"`, "accessKey:invalid_type"},
		{"rate as array", `"rateLimit":[100,60]`, "accessKey:invalid_type"},
		{"rate as number", `"rateLimit":100`, "accessKey:invalid_type"},
		{"rate empty", `"rateLimit":{}`, "accessKey:invalid_rate_limit"},
		{"rate negative", `"rateLimit":{"requests":-1,"periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"rate zero", `"rateLimit":{"requests":0,"periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"rate odd period", `"rateLimit":{"requests":10,"periodSeconds":30}`, "accessKey:invalid_rate_limit"},
		{"rate float", `"rateLimit":{"requests":1.5,"periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"rate exponent", `"rateLimit":{"requests":1e3,"periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"rate numeric text", `"rateLimit":{"requests":"100","periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"rate huge", `"rateLimit":{"requests":99999999999999999999999999,"periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"rate over the maximum", `"rateLimit":{"requests":1000000001,"periodSeconds":60}`, "accessKey:invalid_rate_limit"},
		{"burst negative", `"rateLimit":{"requests":10,"periodSeconds":60,"burst":-5}`, "accessKey:invalid_rate_limit"},
		{"burst boolean", `"rateLimit":{"requests":10,"periodSeconds":60,"burst":true}`, "accessKey:invalid_rate_limit"},
		{"concurrency zero", `"concurrencyLimit":0`, "accessKey:invalid_concurrency_limit"},
		{"concurrency negative", `"concurrencyLimit":-3`, "accessKey:invalid_concurrency_limit"},
		{"concurrency float", `"concurrencyLimit":2.5`, "accessKey:invalid_concurrency_limit"},
		{"concurrency huge", `"concurrencyLimit":1e100`, "accessKey:invalid_concurrency_limit"},
		{"concurrency over the maximum", `"concurrencyLimit":1000001`, "accessKey:invalid_concurrency_limit"},
		{"concurrency beyond 64 bits", `"concurrencyLimit":18446744073709551617`, "accessKey:invalid_concurrency_limit"},
		{"concurrency as text", `"concurrencyLimit":"5"`, "accessKey:invalid_type"},
		{"concurrency boolean", `"concurrencyLimit":true`, "accessKey:invalid_type"},
		{"concurrency object", `"concurrencyLimit":{"n":5}`, "accessKey:invalid_type"},
		{"quota as text", `"quota":"1000/day"`, "accessKey:invalid_type"},
		{"quota zero", `"quota":{"requests":0,"period":"day"}`, "accessKey:invalid_quota"},
		{"quota negative", `"quota":{"requests":-10,"period":"day"}`, "accessKey:invalid_quota"},
		{"quota weekly", `"quota":{"requests":10,"period":"week"}`, "accessKey:invalid_quota"},
		{"quota period missing", `"quota":{"requests":10}`, "accessKey:invalid_quota"},
		{"quota period number", `"quota":{"requests":10,"period":1}`, "accessKey:invalid_quota"},
		{"quota float", `"quota":{"requests":10.5,"period":"day"}`, "accessKey:invalid_quota"},
		{"quota over the maximum", `"quota":{"requests":1000000000001,"period":"month"}`, "accessKey:invalid_quota"},
		{"one valid, one invalid", `"rateLimit":{"requests":10,"periodSeconds":60},"quota":{"requests":-1,"period":"day"}`, "accessKey:invalid_quota"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.unchanged(t, func() {
				f.do(t, http.MethodPost, "/accessKeys", &f.admin, `{"label":"x",`+tt.json+`}`).fails(t, http.StatusBadRequest, tt.code)
				f.do(t, http.MethodPut, "/accessKeys/"+k.id, &f.admin, `{"disabled":false,`+tt.json+`}`).fails(t, http.StatusBadRequest, tt.code)
				// A caller who may not set limits learns nothing more.
				f.do(t, http.MethodPut, "/accessKeys/"+k.id, &f.alice, `{"disabled":false,`+tt.json+`}`).fails(t, http.StatusBadRequest, tt.code)
			})
		})
	}
}

// TestAPIKeyQuotaUsage reads the quota counters the gateway writes: a
// key shows the requests counted in its current period and when the
// period ends, in every answer that shows it, and keeps both its limits
// and its count through a rotation.
func TestAPIKeyQuotaUsage(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	ctx := context.Background()
	k := f.key(t, "alice", nil)
	other := f.key(t, "alice", nil)
	day := limits.Quota{Requests: 1000, Period: "day"}
	month := limits.Quota{Requests: 50000, Period: "month"}
	f.do(t, http.MethodPut, "/accessKeys/"+k.id, &f.admin, map[string]any{"disabled": false, "quota": day, "concurrencyLimit": 2}).ok(t, http.StatusOK)
	f.do(t, http.MethodPut, "/accessKeys/"+other.id, &f.admin, map[string]any{"disabled": false, "quota": month}).ok(t, http.StatusOK)

	// The period may end between the count and the read: then count again.
	var used, usedOther int64
	var wantDay, wantMonth time.Time
	for {
		now := time.Now()
		var err error
		if used, err = limits.AddQuotaUse(ctx, f.rdb, f.prefix, k.id, day, now, 42); err != nil {
			t.Fatal(err)
		}
		if usedOther, err = limits.AddQuotaUse(ctx, f.rdb, f.prefix, other.id, month, now, 7); err != nil {
			t.Fatal(err)
		}
		_, wantDay = day.Window(now)
		_, wantMonth = month.Window(now)
		if _, end := day.Window(time.Now().Add(time.Minute)); end.Equal(wantDay) {
			break
		}
		time.Sleep(2 * time.Minute)
	}
	check := func(t *testing.T, what string, got map[string]any, wantUsed int64, wantReset time.Time) {
		t.Helper()
		if got["quotaUsed"] != float64(wantUsed) {
			t.Errorf("%s: quotaUsed %v, want %d", what, got["quotaUsed"], wantUsed)
		}
		if wantReset.IsZero() {
			if got["quotaResetsAt"] != nil {
				t.Errorf("%s: quotaResetsAt %v, want null", what, got["quotaResetsAt"])
			}
			return
		}
		if r := parseAPITime(t, got["quotaResetsAt"]); !r.Equal(wantReset) {
			t.Errorf("%s: quotaResetsAt %v, want %v", what, r, wantReset)
		}
	}
	byID := func(t *testing.T, body map[string]any) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, x := range body["data"].([]any) {
			m := x.(map[string]any)
			out[m["id"].(string)] = m
		}
		return out
	}

	t.Run("get", func(t *testing.T) {
		check(t, "key", f.do(t, http.MethodGet, "/accessKeys/"+k.id, &f.alice, nil).ok(t, http.StatusOK), used, wantDay)
		check(t, "other", f.do(t, http.MethodGet, "/accessKeys/"+other.id, &f.alice, nil).ok(t, http.StatusOK), usedOther, wantMonth)
		check(t, "no quota", f.do(t, http.MethodGet, "/accessKeys/"+f.alice.id, &f.alice, nil).ok(t, http.StatusOK), 0, time.Time{})
	})
	t.Run("lists", func(t *testing.T) {
		for _, l := range []struct {
			path   string
			caller *cred
		}{{"/accessKeys?limit=1000", &f.admin}, {"/accessKeys?limit=2", &f.admin}, {"/accessKeys/personal", &f.alice}} {
			page := byID(t, f.do(t, http.MethodGet, l.path, l.caller, nil).ok(t, http.StatusOK))
			if m := page[k.id]; m != nil {
				check(t, l.path+" key", m, used, wantDay)
			}
			if m := page[other.id]; m != nil {
				check(t, l.path+" other", m, usedOther, wantMonth)
			}
			for id, m := range page {
				if id != k.id && id != other.id {
					check(t, l.path+" "+id, m, 0, time.Time{})
				}
			}
		}
		all := byID(t, f.do(t, http.MethodGet, "/accessKeys?limit=1000", &f.admin, nil).ok(t, http.StatusOK))
		if all[k.id] == nil || all[other.id] == nil {
			t.Errorf("the list lacks the keys with a quota")
		}
	})
	t.Run("rotation keeps limits and count", func(t *testing.T) {
		r := f.do(t, http.MethodPut, "/accessKeys/"+k.id+"/rotate", &f.alice, nil)
		rotated := r.ok(t, http.StatusOK)
		newID := rotated["id"].(string)
		if newID == k.id {
			t.Fatal("rotation kept the Access ID")
		}
		got := limitsOf(t, r)
		if !sameLimits(got, keyLimits{ConcurrencyLimit: intp(2), Quota: &day}) {
			t.Errorf("rotated key limits %v", got)
		}
		check(t, "rotated", rotated, used, wantDay)
		nk, err := f.store.Key(ctx, newID)
		if err != nil {
			t.Fatal(err)
		}
		if nk.LimitID() != k.id {
			t.Errorf("the rotated key is limited as %q, want %q", nk.LimitID(), k.id)
		}
		// Uses of the new key count against the same quota.
		if _, err := limits.AddQuotaUse(ctx, f.rdb, f.prefix, nk.LimitID(), day, time.Now(), 8); err != nil {
			t.Fatal(err)
		}
		check(t, "after a use", f.do(t, http.MethodGet, "/accessKeys/"+newID, &f.alice, nil).ok(t, http.StatusOK), used+8, wantDay)
	})
}

// TestAPIOwnerRateLimit sets, leaves and clears the rate limit of a user
// and of a service account through the API.
func TestAPIOwnerRateLimit(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	ctx := context.Background()
	for _, kind := range []struct {
		path, noun string
		create     map[string]any
	}{
		{"/users", "user", map[string]any{"email": "dave@example.com", "firstName": "Dave", "lastName": "D"}},
		{"/serviceAccounts", "serviceAccount", map[string]any{"name": "Robot", "email": "robot@example.com"}},
	} {
		t.Run(kind.noun, func(t *testing.T) {
			body := map[string]any{"rateLimit": map[string]any{"requests": 4, "periodSeconds": 1, "burst": 8}}
			for k, v := range kind.create {
				body[k] = v
			}
			created := f.do(t, http.MethodPost, kind.path, &f.admin, body).ok(t, http.StatusOK)
			id := created["id"].(string)
			rateOf := func(m map[string]any) string {
				b, _ := json.Marshal(m["rateLimit"])
				return string(b)
			}
			if got := rateOf(created); got != `{"burst":8,"periodSeconds":1,"requests":4}` {
				t.Errorf("created with rateLimit %s", got)
			}
			steps := []struct {
				name string
				body map[string]any
				want string // rateLimit as JSON, keys sorted
				code string // for a 400
			}{
				{"left out", map[string]any{"isActive": true}, `{"burst":8,"periodSeconds":1,"requests":4}`, ""},
				{"changed, burst left out", map[string]any{"rateLimit": map[string]any{"requests": 100, "periodSeconds": 60}}, `{"burst":100,"periodSeconds":60,"requests":100}`, ""},
				{"sent back", map[string]any{"rateLimit": map[string]any{"requests": 100, "periodSeconds": 60, "burst": 100}}, `{"burst":100,"periodSeconds":60,"requests":100}`, ""},
				{"invalid", map[string]any{"rateLimit": map[string]any{"requests": 100, "periodSeconds": 7}}, "", kind.noun + ":invalid_rate_limit"},
				{"wrong type", map[string]any{"rateLimit": "100/m"}, "", kind.noun + ":invalid_type"},
				{"float", map[string]any{"rateLimit": map[string]any{"requests": 0.5, "periodSeconds": 1}}, "", kind.noun + ":invalid_rate_limit"},
				{"cleared", map[string]any{"rateLimit": nil}, `null`, ""},
				{"cleared again", map[string]any{"rateLimit": nil}, `null`, ""},
			}
			for _, st := range steps {
				if st.code != "" {
					f.unchanged(t, func() {
						f.do(t, http.MethodPut, kind.path+"/"+id, &f.admin, st.body).fails(t, http.StatusBadRequest, st.code)
					})
					continue
				}
				if got := rateOf(f.do(t, http.MethodPut, kind.path+"/"+id, &f.admin, st.body).ok(t, http.StatusOK)); got != st.want {
					t.Errorf("%s: PUT answered rateLimit %s, want %s", st.name, got, st.want)
				}
				if got := rateOf(f.do(t, http.MethodGet, kind.path+"/"+id, &f.admin, nil).ok(t, http.StatusOK)); got != st.want {
					t.Errorf("%s: GET answers rateLimit %s, want %s", st.name, got, st.want)
				}
				o, err := f.store.Owner(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(viewRate(o.RateLimit))
				var stored any
				if err := json.Unmarshal(b, &stored); err != nil {
					t.Fatal(err)
				}
				if got := rateOf(map[string]any{"rateLimit": stored}); got != st.want {
					t.Errorf("%s: stored rateLimit %s, want %s", st.name, got, st.want)
				}
			}
			// Without manageUsersAndRoles, nothing of an owner changes.
			f.unchanged(t, func() {
				f.do(t, http.MethodPut, kind.path+"/"+id, &f.alice, map[string]any{"rateLimit": nil}).fails(t, http.StatusForbidden, "forbidden")
			})
		})
	}
	// The lists show the rate limit too.
	list := f.do(t, http.MethodGet, "/users?limit=1000", &f.admin, nil).ok(t, http.StatusOK)
	for _, x := range list["data"].([]any) {
		if _, ok := x.(map[string]any)["rateLimit"]; !ok {
			t.Errorf("listed user without rateLimit: %v", x)
		}
	}
}
