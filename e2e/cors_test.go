package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/accessgate/accessgate/keystore"
)

// fetchResult is what a page's fetch of the gateway gave.
type fetchResult struct {
	OK     bool   `json:"ok"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// fetchFrom opens a page of origin in the browser and, from that page,
// calls url with fetch and Basic credentials, as a web application would.
func fetchFrom(t *testing.T, b *browser, origin, url string, c cred) fetchResult {
	t.Helper()
	b.run("opening "+origin, chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if loc := eval[string](b, `location.origin`); loc != origin {
		t.Fatalf("page origin = %q, want %q", loc, origin)
	}
	script := fmt.Sprintf(`(async () => {
	try {
		const r = await fetch(%q, {headers: {Authorization: 'Basic ' + btoa(%q)}, cache: 'no-store'});
		return {ok: true, status: r.status, body: await r.text()};
	} catch (e) {
		return {ok: false, error: String(e)};
	}
})()`, url, c.id+":"+c.secret)
	return eval[fetchResult](b, script)
}

// TestBrowserCORS checks the allowlist in a real browser, over HTTPS: a
// page served from the allowlisted origin calls the gateway with fetch and
// Basic credentials (a CORS preflight, then the request) and reads the
// answer; the same page served from another origin is blocked, and the
// gateway logged the refusal as AccessKeyOriginRejected.
func TestBrowserCORS(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	s := startStack(t)
	s.role(t, "reader", "viewCollectors")
	s.user(t, "carol", "reader")
	app, evil := s.origin("app.localhost"), s.origin("evil.localhost")
	c := s.key(t, keystore.KeySpec{OwnerID: "carol", Label: "Web app", CORSHeaders: []string{app}}, 0)
	b := newBrowser(t, s, "has been blocked by CORS policy", "net::ERR_FAILED")
	data := s.origin("api.localhost") + "/data/collectors"

	t.Run("allowlisted origin", func(t *testing.T) {
		res := fetchFrom(t, b.on(t), app, data, c)
		// The page can read the answer only because it carries
		// Access-Control-Allow-Origin for its origin.
		if !res.OK || res.Status != 200 || res.Body != "upstream ok" {
			t.Fatalf("fetch from %s = %+v, want 200 with the upstream's body", app, res)
		}
	})

	t.Run("other origin is blocked", func(t *testing.T) {
		res := fetchFrom(t, b.on(t), evil, data, c)
		if res.OK || !strings.Contains(res.Error, "TypeError") {
			t.Fatalf("fetch from %s = %+v, want the browser to block it", evil, res)
		}
	})

	t.Run("the gateway logged the 403", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		var logged, accessLogged bool
		for time.Now().Before(deadline) && !(logged && accessLogged) {
			logged, accessLogged = false, false
			for _, line := range strings.Split(s.gw.Logs(), "\n") {
				if strings.Contains(line, "AccessKeyOriginRejected") && strings.Contains(line, c.id) && strings.Contains(line, evil) {
					logged = true
				}
				if strings.Contains(line, `"status":403`) && strings.Contains(line, "origin_not_allowlisted") {
					accessLogged = true
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !logged {
			t.Errorf("no AccessKeyOriginRejected audit line for %s in the Caddy log", evil)
		}
		if !accessLogged {
			t.Errorf("no access log line of the 403 with reason origin_not_allowlisted")
		}
		events, err := s.store.Events(context.Background(), keystore.EventFilter{Name: keystore.EventOriginRejected})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.AccessKey != nil && e.AccessKey.AccessID == c.id && fmt.Sprint(e.Details["origin"]) == evil {
				found = true
			}
		}
		if !found {
			t.Errorf("audit stream has no AccessKeyOriginRejected for %s from %s: %+v", c.id, evil, events)
		}
	})

	b.assertNoProblems()
}
