package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// limitsJSON is the limits of v as JSON, to compare.
func limitsJSON(t *testing.T, v keyView) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"rateLimit": v.RateLimit, "concurrencyLimit": v.ConcurrencyLimit, "quota": v.Quota})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// storedLimits is the limits of key id as Redis holds them, as JSON.
func storedLimits(t *testing.T, store *keystore.Store, id string) string {
	t.Helper()
	k, err := store.Key(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var v keyView
	v.RateLimit, v.ConcurrencyLimit, v.Quota = normalRate(k.RateLimit), k.ConcurrencyLimit, k.Quota
	return limitsJSON(t, v)
}

// noLimits is limitsJSON of a key with the defaults.
const noLimits = `{"concurrencyLimit":null,"quota":null,"rateLimit":null}`

// TestCLIUpdateLimits: update sets, keeps and clears each limit, in
// Redis and in what it prints.
func TestCLIUpdateLimits(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	setupOwner(c)
	k := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))

	// Each step runs on the key as the step before left it.
	steps := []struct {
		name string
		args []string
		want string
	}{
		{"rate", []string{"--rate", "100/m"},
			`{"concurrencyLimit":null,"quota":null,"rateLimit":{"requests":100,"periodSeconds":60,"burst":100}}`},
		{"rate with burst and concurrency", []string{"--rate", "10/s", "--burst", "25", "--concurrency", "5"},
			`{"concurrencyLimit":5,"quota":null,"rateLimit":{"requests":10,"periodSeconds":1,"burst":25}}`},
		{"quota", []string{"--quota", "1000/day"},
			`{"concurrencyLimit":5,"quota":{"requests":1000,"period":"day"},"rateLimit":{"requests":10,"periodSeconds":1,"burst":25}}`},
		{"label leaves the limits", []string{"--label", "deploy"},
			`{"concurrencyLimit":5,"quota":{"requests":1000,"period":"day"},"rateLimit":{"requests":10,"periodSeconds":1,"burst":25}}`},
		{"rate per hour", []string{"--rate", "3600/h"},
			`{"concurrencyLimit":5,"quota":{"requests":1000,"period":"day"},"rateLimit":{"requests":3600,"periodSeconds":3600,"burst":3600}}`},
		{"clear the rate", []string{"--rate", "none"},
			`{"concurrencyLimit":5,"quota":{"requests":1000,"period":"day"},"rateLimit":null}`},
		{"monthly quota", []string{"--quota", "50000/month"},
			`{"concurrencyLimit":5,"quota":{"requests":50000,"period":"month"},"rateLimit":null}`},
		{"clear the rest", []string{"--concurrency", "none", "--quota", "none"}, noLimits},
		{"clear what is clear", []string{"--rate", "none"}, noLimits},
	}
	for _, s := range steps {
		got := decodeJSON[keyView](t, c.ok(append([]string{"update", k.ID, "--json"}, s.args...)...))
		if g := limitsJSON(t, got); g != s.want {
			t.Errorf("%s: update --json limits = %s, want %s", s.name, g, s.want)
		}
		if g := storedLimits(t, store, k.ID); g != s.want {
			t.Errorf("%s: stored limits = %s, want %s", s.name, g, s.want)
		}
	}
	if got := findKey(t, c, k.ID); got.Label != "deploy" {
		t.Errorf("label = %q, want deploy", got.Label)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"set", []string{"--rate", "100/m", "--concurrency", "10", "--quota", "1000/day"}, "  Limits:    100/m, 10 conc, 1000/day\n"},
		{"burst", []string{"--rate", "100/m", "--burst", "150"}, "  Limits:    100/m burst 150, 10 conc, 1000/day\n"},
		{"unchanged", []string{"--label", "ci"}, "  Limits:    100/m burst 150, 10 conc, 1000/day\n"},
		{"cleared", []string{"--rate", "none", "--concurrency", "none", "--quota", "none"}, "  Limits:    default\n"},
		{"none set, none changed", []string{"--label", "ci2"}, "  Allowlist: (none)\n"},
	}
	for _, tc := range tests {
		out := c.ok(append([]string{"update", k.ID}, tc.args...)...)
		if !strings.HasSuffix(out, tc.want) {
			t.Errorf("%s: update printed %q, want it to end with %q", tc.name, out, tc.want)
		}
	}
}

// TestCLIUpdateRefusesBadLimits: a bad limit value fails with a message
// naming its flag and the forms it takes, and changes nothing.
func TestCLIUpdateRefusesBadLimits(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	setupOwner(c)
	k := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--label", "ci", "--json"))
	c.ok("update", k.ID, "--rate", "5/s", "--concurrency", "3", "--quota", "9/day")
	const want = `{"concurrencyLimit":3,"quota":{"requests":9,"period":"day"},"rateLimit":{"requests":5,"periodSeconds":1,"burst":5}}`
	before := eventCount(t, store)

	rateForms := "give N/s, N/m or N/h with N from 1 to 1000000000, such as 100/m, or none for the default"
	quotaForms := "give N/day or N/month with N from 1 to 1000000000000, such as 100000/day, or none for the default"
	concForms := "give a whole number from 1 to 1000000, or none for the default"
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"rate without a period", []string{"--rate", "5"}, []string{`--rate "5": ` + rateForms}},
		{"rate of zero", []string{"--rate", "0/s"}, []string{`--rate "0/s": ` + rateForms}},
		{"rate per day", []string{"--rate", "5/d"}, []string{`--rate "5/d": ` + rateForms}},
		{"negative rate", []string{"--rate", "-5/s"}, []string{`--rate "-5/s": ` + rateForms}},
		{"empty rate", []string{"--rate", ""}, []string{`--rate "": ` + rateForms}},
		{"quota per week", []string{"--quota", "10/week"}, []string{`--quota "10/week": ` + quotaForms}},
		{"quota of zero", []string{"--quota", "0/day"}, []string{`--quota "0/day": ` + quotaForms}},
		{"quota without a period", []string{"--quota", "10"}, []string{`--quota "10": ` + quotaForms}},
		{"negative concurrency", []string{"--concurrency", "-1"}, []string{`--concurrency "-1": ` + concForms}},
		{"zero concurrency", []string{"--concurrency", "0"}, []string{`--concurrency "0": ` + concForms}},
		{"concurrency not a number", []string{"--concurrency", "ten"}, []string{`--concurrency "ten": ` + concForms}},
		{"concurrency too high", []string{"--concurrency", "1000001"}, []string{`--concurrency "1000001": ` + concForms}},
		{"burst without rate", []string{"--burst", "5"}, []string{"--burst needs --rate"}},
		{"burst with rate none", []string{"--rate", "none", "--burst", "5"}, []string{"--burst cannot go with --rate none"}},
		{"burst of zero", []string{"--rate", "5/s", "--burst", "0"}, []string{"--burst 0: give a whole number from 1 to 1000000000"}},
		{"burst not a number", []string{"--rate", "5/s", "--burst", "many"}, []string{`invalid argument "many" for "--burst"`}},
		{"every problem", []string{"--rate", "5", "--quota", "10/week", "--concurrency", "-1", "--label", "x"},
			[]string{"invalid input:\n  --rate \"5\": ", "\n  --concurrency \"-1\": ", "\n  --quota \"10/week\": "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := c
			sub.t = t
			sub.fail(append([]string{"update", k.ID}, tc.args...), tc.want...)
		})
	}
	wantEvents(t, store, before)
	if got := storedLimits(t, store, k.ID); got != want {
		t.Errorf("after refused updates, limits = %s, want %s", got, want)
	}
	if got := findKey(t, c, k.ID); got.Label != "ci" {
		t.Errorf("after refused updates, label = %q", got.Label)
	}
}

// TestCLICreateWithLimits: create stores the limits it is given, prints
// them, and refuses bad ones without creating a key.
func TestCLICreateWithLimits(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	setupOwner(c)

	out := c.ok("create", "--user", "alice", "--rate", "100/m", "--burst", "150", "--concurrency", "3", "--quota", "5000/month", "--json")
	k := decodeJSON[keyView](t, out)
	const want = `{"concurrencyLimit":3,"quota":{"requests":5000,"period":"month"},"rateLimit":{"requests":100,"periodSeconds":60,"burst":150}}`
	if got := limitsJSON(t, k); got != want {
		t.Errorf("create --json limits = %s, want %s", got, want)
	}
	if got := storedLimits(t, store, k.ID); got != want {
		t.Errorf("stored limits = %s, want %s", got, want)
	}
	r := c.run("create", "--user", "alice", "--label", "text", "--rate", "2/s", "--quota", "10/day")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.out, "\nLimits:     2/s, 10/day\n") {
		t.Errorf("create printed %q, want a Limits line", r.out)
	}
	text := printedField(t, r.out, "Access ID:")
	if got := storedLimits(t, store, text); got != `{"concurrencyLimit":null,"quota":{"requests":10,"period":"day"},"rateLimit":{"requests":2,"periodSeconds":1,"burst":2}}` {
		t.Errorf("stored limits of the text key = %s", got)
	}
	if out := c.ok("create", "--user", "alice"); strings.Contains(out, "Limits") {
		t.Errorf("create without limits printed a Limits line:\n%s", out)
	}

	before := eventCount(t, store)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad rate", []string{"--rate", "5/d"}, []string{`--rate "5/d": give N/s, N/m or N/h`}},
		{"bad quota", []string{"--quota", "10/week"}, []string{`--quota "10/week": give N/day or N/month`}},
		{"bad concurrency", []string{"--concurrency", "-1"}, []string{`--concurrency "-1": give a whole number`}},
		{"burst without rate", []string{"--burst", "5"}, []string{"--burst needs --rate"}},
		{"none", []string{"--rate", "none", "--quota", "none"}, []string{"--rate: none clears a limit", "--quota: none clears a limit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := c
			sub.t = t
			sub.fail(append([]string{"create", "--user", "alice"}, tc.args...), tc.want...)
		})
	}
	wantEvents(t, store, before)
	if keys, err := store.KeysOfOwner(t.Context(), "alice"); err != nil || len(keys) != 3 {
		t.Errorf("after refused creates, alice has %d keys (%v), want 3", len(keys), err)
	}
	rotated := decodeJSON[keyView](t, c.ok("rotate", k.ID, "--json"))
	if got := limitsJSON(t, rotated); got != want {
		t.Errorf("rotate --json limits = %s, want %s", got, want)
	}
}

// TestCLIListLimits: list shows a LIMITS column only when a key has
// limits, and --json carries the limits and the use of the quota.
func TestCLIListLimits(t *testing.T) {
	c, srv := newCLI(t)
	store := keystore.New(srv.Client(t), keystore.Options{})
	setupOwner(c)
	plain := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--label", "plain", "--json"))
	limited := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--label", "limited", "--json"))

	table := c.ok("list")
	header, _, _ := strings.Cut(table, "\n")
	if got := strings.Join(strings.Fields(header), " "); got != "ID LABEL OWNER STATUS LAST USED EXPIRES AT SCOPES" {
		t.Errorf("list without limits:\n%s", table)
	}
	raw := decodeJSON[struct{ Data []map[string]any }](t, c.ok("list", "--json"))
	for _, k := range raw.Data {
		for _, f := range []string{"rateLimit", "concurrencyLimit", "quota", "quotaResetsAt"} {
			if v, ok := k[f]; !ok || v != nil {
				t.Errorf("list --json: %s of a key without limits = %v (present %v), want null", f, v, ok)
			}
		}
		if v, ok := k["quotaUsed"]; !ok || v != float64(0) {
			t.Errorf("list --json: quotaUsed of a key without limits = %v (present %v), want 0 as the API shows it", v, ok)
		}
	}

	c.ok("update", limited.ID, "--rate", "100/m", "--concurrency", "10", "--quota", "1000/day")
	// The quota counter as the gateway keeps it (see package limits), for
	// today and tomorrow, so that a test running over midnight reads it.
	rdb := srv.Client(t)
	now := time.Now().UTC()
	for _, d := range []time.Time{now, now.AddDate(0, 0, 1)} {
		if err := rdb.Set(t.Context(), fmt.Sprintf("%s:quota:{%s}:%s", store.Prefix(), limited.ID, d.Format("20060102")), 7, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	table = c.ok("list")
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID LABEL OWNER STATUS LAST USED EXPIRES AT LIMITS SCOPES" {
		t.Fatalf("list with limits:\n%s", table)
	}
	for _, l := range lines[1:] {
		want := "  -                         default"
		if strings.HasPrefix(l, limited.ID) {
			want = "  100/m, 10 conc, 1000/day  default"
		}
		if !strings.HasSuffix(l, want) {
			t.Errorf("list line %q does not end with %q", l, want)
		}
	}

	listed := decodeJSON[struct{ Data []keyView }](t, c.ok("list", "--json"))
	for _, k := range listed.Data {
		switch k.ID {
		case plain.ID:
			if got := limitsJSON(t, k); got != noLimits || k.QuotaUsed != 0 || k.QuotaResetsAt != nil {
				t.Errorf("list --json, plain key: %s, quota used %v, resets %v", got, k.QuotaUsed, k.QuotaResetsAt)
			}
		case limited.ID:
			if got := limitsJSON(t, k); got != `{"concurrencyLimit":10,"quota":{"requests":1000,"period":"day"},"rateLimit":{"requests":100,"periodSeconds":60,"burst":100}}` {
				t.Errorf("list --json, limited key: %s", got)
			}
			if k.QuotaUsed != 7 {
				t.Errorf("list --json, quotaUsed = %v, want 7", k.QuotaUsed)
			}
			if k.QuotaResetsAt == nil || !k.QuotaResetsAt.After(now) || k.QuotaResetsAt.Truncate(24*time.Hour) != k.QuotaResetsAt.Time {
				t.Errorf("list --json, quotaResetsAt = %v, want the next UTC midnight after %v", k.QuotaResetsAt, now)
			}
		default:
			t.Errorf("list --json lists %s", k.ID)
		}
	}
	if got := findKey(t, c, limited.ID); got.ID != limited.ID {
		t.Errorf("findKey = %+v", got)
	}
}

// TestLimitList: the compact form of a key's limits.
func TestLimitList(t *testing.T) {
	n := 10
	lim := func(r *limits.Rate, c *int, q *limits.Quota) keyView {
		var v keyView
		v.RateLimit, v.ConcurrencyLimit, v.Quota = r, c, q
		return v
	}
	tests := []struct {
		v    keyView
		want string
	}{
		{keyView{}, "-"},
		{lim(&limits.Rate{Requests: 100, PeriodSeconds: 60, Burst: 100}, nil, nil), "100/m"},
		{lim(&limits.Rate{Requests: 4, PeriodSeconds: 1, Burst: 8}, &n, nil), "4/s burst 8, 10 conc"},
		{lim(nil, nil, &limits.Quota{Requests: 1000, Period: "month"}), "1000/month"},
		{lim(&limits.Rate{Requests: 5, PeriodSeconds: 3600}, &n, &limits.Quota{Requests: 1000, Period: "day"}), "5/h, 10 conc, 1000/day"},
	}
	for _, tc := range tests {
		if got := tc.v.limitList(); got != tc.want {
			t.Errorf("limitList(%+v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// fakeAPI answers GET and PUT of one access key as the management API
// does, keeping the bodies of the PUTs.
type fakeAPI struct {
	mu   sync.Mutex
	puts []map[string]json.RawMessage
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := `{"id":"suAAAAAAAAAAAAAA","label":"ci","key":"","corsHeaders":[],"disabled":false,"scopes":[],"effectiveScopes":[],
		"createdAt":"2026-01-01T00:00:00Z","createdBy":"x","modifiedAt":"2026-01-01T00:00:00Z","modifiedBy":"x","lastUsed":null,"expiresAt":null,"ownerId":"alice",
		"rateLimit":{"requests":100,"periodSeconds":60,"burst":100},"concurrencyLimit":null,"quota":{"requests":1000,"period":"day"},"quotaUsed":12,"quotaResetsAt":"2026-01-02T00:00:00Z"}`
	if r.Method == http.MethodPut {
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.puts = append(f.puts, body)
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, key)
}

// TestCLIRemoteUpdateSendsLimits: update with --api sends the limits
// given, null for none, and leaves out the others; it prints the limits
// the API answers with.
func TestCLIRemoteUpdateSendsLimits(t *testing.T) {
	api := &fakeAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		args []string
		want map[string]string
	}{
		{"set all", []string{"--rate", "100/m", "--burst", "150", "--concurrency", "10", "--quota", "1000/day"}, map[string]string{
			"disabled": "false", "rateLimit": `{"requests":100,"periodSeconds":60,"burst":150}`, "concurrencyLimit": "10", "quota": `{"requests":1000,"period":"day"}`}},
		{"rate only", []string{"--rate", "5/s"}, map[string]string{"disabled": "false", "rateLimit": `{"requests":5,"periodSeconds":1}`}},
		{"clear", []string{"--concurrency", "none", "--quota", "none"}, map[string]string{"disabled": "false", "concurrencyLimit": "null", "quota": "null"}},
		{"scopes only", []string{"--scope", "viewCollectors"}, map[string]string{"disabled": "false", "scopes": `["viewCollectors"]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"update", "suAAAAAAAAAAAAAA", "--api", srv.URL, "--id", "x", "--key", "y"}, tc.args...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			api.mu.Lock()
			body := api.puts[len(api.puts)-1]
			api.mu.Unlock()
			got := map[string]string{}
			for k, v := range body {
				got[k] = string(v)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("PUT body = %v, want %v", got, tc.want)
			}
			if !strings.HasSuffix(r.out, "  Limits:    100/m, 1000/day\n") {
				t.Errorf("update printed %q", r.out)
			}
		})
	}
	r := runCLI(t, "update", "suAAAAAAAAAAAAAA", "--json", "--api", srv.URL, "--id", "x", "--key", "y", "--rate", "100/m")
	if r.err != nil {
		t.Fatal(r.err)
	}
	v := decodeJSON[keyView](t, r.out)
	if v.QuotaUsed != 12 || v.QuotaResetsAt == nil || !v.QuotaResetsAt.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("update --json: quota used %v, resets at %v", v.QuotaUsed, v.QuotaResetsAt)
	}
	n := len(api.puts)
	r = runCLI(t, "update", "suAAAAAAAAAAAAAA", "--api", srv.URL, "--id", "x", "--key", "y", "--rate", "5/d")
	if r.err == nil || !strings.Contains(r.err.Error(), `--rate "5/d": give N/s, N/m or N/h`) {
		t.Errorf("update --rate 5/d with --api: %v", r.err)
	}
	if len(api.puts) != n {
		t.Errorf("a refused update sent a PUT")
	}
}

// TestLimitFlagsHelp: the help of create and update names the limit
// flags, their forms and examples.
func TestLimitFlagsHelp(t *testing.T) {
	tests := []struct {
		verb string
		want []string
	}{
		{"create", []string{"--rate N/s|N/m|N/h", "--burst N", "--concurrency N", "--quota N/day|N/month",
			"create --user alice --rate 100/m --burst 200 --concurrency 10 --quota 100000/day"}},
		{"update", []string{"--rate N/s|N/m|N/h", "--burst N", "--concurrency N", "--quota N/day|N/month",
			"--rate none, --concurrency none and --quota none", "update ID --rate 100/m --burst 200 --concurrency 10", "update ID --rate none --quota none"}},
	}
	for _, tc := range tests {
		r := runCLI(t, tc.verb, "--help")
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.out, w) {
				t.Errorf("%s --help lacks %q:\n%s", tc.verb, w, r.out)
			}
		}
	}
}

// TestBadLimitsFailBeforeConnecting: a bad limit is refused before Redis
// or the API is reached.
func TestBadLimitsFailBeforeConnecting(t *testing.T) {
	tests := [][]string{
		{"update", "suAAAAAAAAAAAAAA", "--rate", "5", "--redis", "redis://127.0.0.1:1"},
		{"update", "suAAAAAAAAAAAAAA", "--burst", "5", "--api", "http://127.0.0.1:1/api/v1", "--id", "x", "--key", "y"},
		{"create", "--user", "alice", "--quota", "10/week", "--redis", "redis://127.0.0.1:1"},
		{"create", "--concurrency", "-1", "--api", "http://127.0.0.1:1/api/v1", "--id", "x", "--key", "y"},
	}
	for _, args := range tests {
		r := runCLI(t, args...)
		if r.err == nil || strings.Contains(r.err.Error(), "reach") || !strings.Contains(r.err.Error(), "give") && !strings.Contains(r.err.Error(), "needs --rate") {
			t.Errorf("access-keys %s: error %v, want the bad value named", strings.Join(args, " "), r.err)
		}
	}
}
