package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/limits"
)

// keyLimits is what the management API says of a key's limits (CONTRACT
// §8). Each field is kept raw as well, so that null and absent differ.
type keyLimits struct {
	RateLimit        *limits.Rate  `json:"rateLimit"`
	ConcurrencyLimit *int          `json:"concurrencyLimit"`
	Quota            *limits.Quota `json:"quota"`
	QuotaUsed        *int64        `json:"quotaUsed"`
	QuotaResetsAt    *string       `json:"quotaResetsAt"`
	raw              map[string]json.RawMessage
}

// isNull reports whether the object holds field, set to null.
func (k keyLimits) isNull(field string) bool {
	v, ok := k.raw[field]
	return ok && string(v) == "null"
}

// getLimits reads a key's limits from the management API.
func (s *stack) getLimits(t *testing.T, c cred, id string) keyLimits {
	t.Helper()
	code, body := s.apiCall(t, c, http.MethodGet, "accessKeys/"+id, nil)
	if code != http.StatusOK {
		t.Fatalf("GET accessKeys/%s = %d: %s", id, code, body)
	}
	var k keyLimits
	if err := json.Unmarshal(body, &k); err != nil {
		t.Fatalf("GET accessKeys/%s: %v in %s", id, err, body)
	}
	if err := json.Unmarshal(body, &k.raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rateLimit", "concurrencyLimit", "quota", "quotaUsed", "quotaResetsAt"} {
		if _, ok := k.raw[f]; !ok {
			t.Fatalf("GET accessKeys/%s has no %s field: %s", id, f, body)
		}
	}
	return k
}

// sentPut is one PUT request the console sent, as recorded in the page.
type sentPut struct {
	URL  string `json:"url"`
	Body string `json:"body"`
}

// fields decodes the body of a recorded PUT.
func (p sentPut) fields(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p.Body), &m); err != nil {
		t.Fatalf("PUT %s: body %q: %v", p.URL, p.Body, err)
	}
	return m
}

// recordPuts makes the page keep the URL and body of every PUT it sends,
// in window.sentPuts.
func recordPuts(b *browser) {
	b.t.Helper()
	eval[bool](b, `(() => {
		if (window.sentPuts) { window.sentPuts.length = 0; return true; }
		window.sentPuts = [];
		const send = window.fetch;
		window.fetch = (input, init) => {
			if (init && init.method === 'PUT') window.sentPuts.push({url: String(input), body: String(init.body ?? '')});
			return send(input, init);
		};
		return true;
	})()`)
}

// lastPut returns the last PUT the page sent to accessKeys/<id>, failing
// the test when there is none or when the URL names another key.
func lastPut(b *browser, id string) sentPut {
	b.t.Helper()
	puts := eval[[]sentPut](b, `window.sentPuts ?? []`)
	if len(puts) == 0 {
		b.t.Fatalf("the console sent no PUT")
	}
	p := puts[len(puts)-1]
	if !strings.HasSuffix(p.URL, "/api/v1/accessKeys/"+id) {
		b.t.Fatalf("the console sent PUT %s, want accessKeys/%s", p.URL, id)
	}
	return p
}

// thousands writes n with a comma every three digits, as the console
// does in English.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out.WriteByte(',')
		}
		out.WriteRune(c)
	}
	return out.String()
}

// TestConsoleLimits works through the usage limits of keys in the web
// console (CONTRACT §8): the tables show a key's rate, concurrency and
// quota with the quota used so far; the edit dialog sets them, sends null
// for a field that is cleared and leaves out fields left as they were; a
// key without manageAccessKeys sees the limits but may not change them,
// and the API's refusal is shown in the dialog. Every change is checked
// through the management API as well as in the requests the page sends.
func TestConsoleLimits(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	s := startStack(t)
	s.role(t, "admin", "createAccessKeys", "manageAccessKeys", "viewCollectors")
	s.role(t, "developer", "createAccessKeys", "viewCollectors")
	s.user(t, "alice", "admin")
	s.user(t, "bob", "developer")
	consoleOrigin := s.origin("api.localhost")
	alice := s.key(t, keystore.KeySpec{OwnerID: "alice", Label: "Console", CORSHeaders: []string{consoleOrigin}}, 0)
	conc := 10
	metered := s.key(t, keystore.KeySpec{OwnerID: "alice", Label: "Metered", Limits: keystore.KeyLimits{
		RateLimit:        &limits.Rate{Requests: 100, PeriodSeconds: 60},
		ConcurrencyLimit: &conc,
		Quota:            &limits.Quota{Requests: 100000, Period: limits.PeriodDay},
	}}, 0)
	plain := s.key(t, keystore.KeySpec{OwnerID: "alice", Label: "Plain"}, 0)
	bob := s.key(t, keystore.KeySpec{OwnerID: "bob", Label: "Bob console", CORSHeaders: []string{consoleOrigin}}, 0)

	// Three requests through the gateway use some of the metered key's quota.
	for range 3 {
		req, err := http.NewRequest(http.MethodGet, consoleOrigin+"/data/report", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(metered.id, metered.secret)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /data/report with the metered key = %d: %s", resp.StatusCode, body)
		}
	}

	b := newBrowser(t, s)
	consoleURL := consoleOrigin + "/console/"
	row := func(panel, id string) string { return fmt.Sprintf(`#panel-%s tr[data-id=%q]`, panel, id) }
	limitsCell := func(panel, id string) string { return row(panel, id) + ` td[data-label="Limits"]` }
	menuButton := func(panel, id string) string { return fmt.Sprintf(`#menubtn-%s-%s`, panel, id) }
	openEdit := func(b *browser, panel, id string) {
		b.t.Helper()
		b.click(menuButton(panel, id))
		b.click(menuButton(panel, id) + ` + [role=menu] [data-op="edit"]`)
		b.waitJS("the edit dialog", `document.querySelector('#edit-dialog').open`)
	}
	signIn := func(b *browser, c cred) {
		b.t.Helper()
		b.waitJS("the sign-in form", `!document.querySelector('#signin-view').hidden`)
		b.fill(`#signin-access-id`, c.id)
		b.fill(`#signin-access-key`, c.secret)
		b.click(`#signin-submit`)
		b.waitJS("the console", `!document.querySelector('#app-view').hidden`)
	}
	// setValue sets an input or select without typing, as a person would
	// by choosing from a list.
	setValue := func(b *browser, sel, v string) {
		b.t.Helper()
		eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, sel, v))
	}

	t.Run("the tables show limits and quota use", func(t *testing.T) {
		b := b.on(t)
		b.run("opening the console", chromedp.Navigate(consoleURL))
		signIn(b, alice)
		b.waitJS("the metered key", fmt.Sprintf(`!!document.querySelector(%q)`, limitsCell("personal", metered.id)+` .quota-used`))
		k := s.getLimits(t, alice, metered.id)
		if k.QuotaUsed == nil || *k.QuotaUsed < 3 || k.Quota == nil || k.Quota.Requests != 100000 {
			t.Fatalf("the API reports quota %+v used %v after 3 requests, want 100000/day and at least 3", k.Quota, k.QuotaUsed)
		}
		used := *k.QuotaUsed
		for _, panel := range []string{"personal", "org"} {
			if panel == "org" {
				b.click(`#tab-org`)
				b.waitJS("the organisation's keys", fmt.Sprintf(`!!document.querySelector(%q)`, limitsCell("org", metered.id)+` .quota-used`))
			}
			cell := limitsCell(panel, metered.id)
			if got := b.text(cell + ` .limits-short`); got != "100/min · 10 conc" {
				t.Errorf("%s: limits shown = %q, want \"100/min · 10 conc\"", panel, got)
			}
			want := thousands(used) + " / 100,000 today"
			if got := b.text(cell + ` .quota-used`); got != want {
				t.Errorf("%s: quota use shown = %q, want %q", panel, got, want)
			}
			bar := eval[struct{ Value, Max float64 }](b, fmt.Sprintf(`(() => { const m = document.querySelector(%q); return m ? {Value: m.value, Max: m.max} : {Value: -1, Max: -1}; })()`, cell+` meter.quota-bar`))
			if bar.Max != 100000 || bar.Value != float64(min(used, 100000)) {
				t.Errorf("%s: quota bar = %+v, want %d of 100000", panel, bar, min(used, 100000))
			}
			if sr := b.text(cell + ` .visually-hidden`); !strings.Contains(sr, "100 requests per minute") || !strings.Contains(sr, "10 requests in flight") {
				t.Errorf("%s: the limits in words for screen readers = %q", panel, sr)
			}
			if got := b.text(limitsCell(panel, plain.id) + ` .limits-none [aria-hidden]`); got != "-" {
				t.Errorf("%s: limits of a key without its own = %q, want \"-\"", panel, got)
			}
		}
		b.screenshot("key-limits")
		b.click(`#tab-personal`)
		b.waitJS("the personal keys", fmt.Sprintf(`!!document.querySelector(%q)`, row("personal", plain.id)))
	})

	t.Run("the edit dialog sets a rate, concurrency and quota", func(t *testing.T) {
		b := b.on(t)
		recordPuts(b)
		openEdit(b, "personal", plain.id)
		if eval[bool](b, `document.querySelector('#edit-limits').disabled || !document.querySelector('#edit-limits-locked').hidden`) {
			t.Fatalf("the Limits section is locked for a key with manageAccessKeys")
		}
		empty := eval[bool](b, `['#edit-rate-requests', '#edit-rate-burst', '#edit-concurrency', '#edit-quota-requests'].every(s => document.querySelector(s).value === '')`)
		if !empty {
			t.Errorf("the limits of a key without its own are not empty in the dialog")
		}
		// Every input has a label.
		unlabelled := eval[[]string](b, `[...document.querySelectorAll('#edit-limits input, #edit-limits select')].filter(e => e.labels.length === 0).map(e => e.id)`)
		if len(unlabelled) != 0 {
			t.Errorf("inputs without a label: %v", unlabelled)
		}

		// A burst without a rate is refused in the dialog.
		b.fill(`#edit-rate-burst`, "40")
		b.click(`#edit-submit`)
		b.waitJS("the burst's message", `!document.querySelector('#edit-rate-burst-error').hidden`)
		if got := b.text(`#edit-rate-burst-error`); !strings.Contains(got, "needs a rate") {
			t.Errorf("message for a burst without a rate = %q", got)
		}
		if n := eval[int](b, `window.sentPuts.length`); n != 0 {
			t.Errorf("the console sent %d PUTs for a refused burst", n)
		}

		b.fill(`#edit-rate-requests`, "20")
		setValue(b, `#edit-rate-period`, "1")
		b.fill(`#edit-concurrency`, "5")
		b.fill(`#edit-quota-requests`, "5000")
		setValue(b, `#edit-quota-period`, "month")
		b.screenshot("edit-key-limits")
		b.click(`#edit-submit`)
		b.waitJS("the dialog to close", `!document.querySelector('#edit-dialog').open`)
		sent := lastPut(b, plain.id).fields(t)
		want := map[string]string{
			"rateLimit":        `{"requests":20,"periodSeconds":1,"burst":40}`,
			"concurrencyLimit": `5`,
			"quota":            `{"requests":5000,"period":"month"}`,
		}
		for f, v := range want {
			if got := string(sent[f]); got != v {
				t.Errorf("PUT %s = %s, want %s", f, got, v)
			}
		}

		k := s.getLimits(t, alice, plain.id)
		if k.RateLimit == nil || k.RateLimit.Normalized() != (limits.Rate{Requests: 20, PeriodSeconds: 1, Burst: 40}) {
			t.Errorf("API rateLimit = %+v, want 20/s burst 40", k.RateLimit)
		}
		if k.ConcurrencyLimit == nil || *k.ConcurrencyLimit != 5 {
			t.Errorf("API concurrencyLimit = %v, want 5", k.ConcurrencyLimit)
		}
		if k.Quota == nil || *k.Quota != (limits.Quota{Requests: 5000, Period: limits.PeriodMonth}) {
			t.Errorf("API quota = %+v, want 5000/month", k.Quota)
		}
		if k.QuotaUsed == nil || k.QuotaResetsAt == nil {
			t.Errorf("API quotaUsed %v, quotaResetsAt %v: want both for a key with a quota", k.QuotaUsed, k.QuotaResetsAt)
		}
		cell := limitsCell("personal", plain.id)
		b.waitJS("the new limits in the row", fmt.Sprintf(`document.querySelector(%q)?.innerText === '20/s, burst 40 · 5 conc'`, cell+` .limits-short`))
		if got := b.text(cell + ` .quota-used`); got != "0 / 5,000 this month" {
			t.Errorf("quota use shown = %q, want \"0 / 5,000 this month\"", got)
		}
	})

	t.Run("clearing a field sends null and leaves the others out", func(t *testing.T) {
		b := b.on(t)
		recordPuts(b)
		openEdit(b, "personal", plain.id)
		shown := eval[[]string](b, `['#edit-rate-requests', '#edit-rate-period', '#edit-rate-burst', '#edit-concurrency', '#edit-quota-requests', '#edit-quota-period'].map(s => document.querySelector(s).value)`)
		if strings.Join(shown, " ") != "20 1 40 5 5000 month" {
			t.Errorf("the dialog shows the limits as %v, want 20 per second, burst 40, 5, 5000 per month", shown)
		}
		b.fill(`#edit-concurrency`, "")
		b.click(`#edit-submit`)
		b.waitJS("the dialog to close", `!document.querySelector('#edit-dialog').open`)
		sent := lastPut(b, plain.id).fields(t)
		if got, ok := sent["concurrencyLimit"]; !ok || string(got) != "null" {
			t.Errorf("PUT concurrencyLimit = %s (sent: %v), want null", got, ok)
		}
		for _, f := range []string{"rateLimit", "quota"} {
			if v, ok := sent[f]; ok {
				t.Errorf("PUT carries the untouched %s: %s", f, v)
			}
		}
		k := s.getLimits(t, alice, plain.id)
		if !k.isNull("concurrencyLimit") {
			t.Errorf("API concurrencyLimit = %s after clearing it, want null", k.raw["concurrencyLimit"])
		}
		if k.RateLimit == nil || k.Quota == nil {
			t.Errorf("clearing the concurrency changed the rate %+v or the quota %+v", k.RateLimit, k.Quota)
		}
		b.waitJS("the row without a concurrency limit", fmt.Sprintf(`document.querySelector(%q)?.innerText === '20/s, burst 40'`, limitsCell("personal", plain.id)+` .limits-short`))

		// Clearing the rate and the quota puts the key back on the defaults.
		recordPuts(b)
		openEdit(b, "personal", plain.id)
		b.fill(`#edit-rate-requests`, "")
		b.fill(`#edit-rate-burst`, "")
		b.fill(`#edit-quota-requests`, "")
		b.click(`#edit-submit`)
		b.waitJS("the dialog to close", `!document.querySelector('#edit-dialog').open`)
		sent = lastPut(b, plain.id).fields(t)
		for _, f := range []string{"rateLimit", "quota"} {
			if got, ok := sent[f]; !ok || string(got) != "null" {
				t.Errorf("PUT %s = %s (sent: %v), want null", f, got, ok)
			}
		}
		if v, ok := sent["concurrencyLimit"]; ok {
			t.Errorf("PUT carries the untouched concurrencyLimit: %s", v)
		}
		k = s.getLimits(t, alice, plain.id)
		for _, f := range []string{"rateLimit", "concurrencyLimit", "quota"} {
			if !k.isNull(f) {
				t.Errorf("API %s = %s after clearing, want null", f, k.raw[f])
			}
		}
		b.waitJS("the row back on the defaults", fmt.Sprintf(`!!document.querySelector(%q)`, limitsCell("personal", plain.id)+` .limits-none`))
	})

	t.Run("a key without manageAccessKeys may not change limits", func(t *testing.T) {
		b := b.on(t)
		b.click(`#sign-out`)
		signIn(b, bob)
		b.waitJS("its own row", fmt.Sprintf(`!!document.querySelector(%q)`, row("personal", bob.id)))
		recordPuts(b)
		openEdit(b, "personal", bob.id)
		locked := eval[struct {
			Disabled bool
			Note     string
		}](b, `({Disabled: document.querySelector('#edit-limits').disabled, Note: document.querySelector('#edit-limits-locked').hidden ? '' : document.querySelector('#edit-limits-locked').innerText})`)
		if !locked.Disabled || !strings.Contains(locked.Note, "manageAccessKeys") {
			t.Errorf("Limits section for a key without manageAccessKeys: %+v, want it disabled with a note naming manageAccessKeys", locked)
		}
		b.screenshot("edit-key-limits-locked")
		// Other changes still save, and send no limits.
		b.fill(`#edit-cors`, s.origin("app.localhost"))
		b.click(`#edit-submit`)
		b.waitJS("the dialog to close", `!document.querySelector('#edit-dialog').open`)
		sent := lastPut(b, bob.id).fields(t)
		for _, f := range []string{"rateLimit", "concurrencyLimit", "quota"} {
			if v, ok := sent[f]; ok {
				t.Errorf("a key without manageAccessKeys sent %s: %s", f, v)
			}
		}

		// Were the section enabled (say, by a stale page), the API refuses
		// the change and the dialog shows its message.
		openEdit(b, "personal", bob.id)
		eval[bool](b, `(() => { document.querySelector('#edit-limits').disabled = false; return true; })()`)
		b.fill(`#edit-concurrency`, "3")
		b.click(`#edit-submit`)
		b.waitJS("the dialog's error", `!document.querySelector('#edit-dialog [data-role=error]').hidden`)
		msg := b.text(`#edit-dialog [data-role=error]`)
		if !strings.Contains(msg, "HTTP 403") || !errorIDPattern.MatchString(msg) {
			t.Errorf("error shown = %q, want the API's message, HTTP 403 and the error id", msg)
		}
		if sent := lastPut(b, bob.id).fields(t); string(sent["concurrencyLimit"]) != "3" {
			t.Errorf("PUT concurrencyLimit = %s, want 3", sent["concurrencyLimit"])
		}
		if k := s.getLimits(t, alice, bob.id); !k.isNull("concurrencyLimit") {
			t.Errorf("API concurrencyLimit = %s after a refused change, want null", k.raw["concurrencyLimit"])
		}
		b.click(`#edit-dialog [data-close]`)
		b.waitJS("the dialog to close", `!document.querySelector('#edit-dialog').open`)
	})

	t.Run("no script errors or CSP violations", func(t *testing.T) {
		b.on(t).assertNoProblems()
	})
}
