package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/accessgate/accessgate/keystore"
)

var (
	accessIDPattern  = regexp.MustCompile(`^su[0-9A-Za-z]{12}$`)
	accessKeyPattern = regexp.MustCompile(`^[0-9A-Za-z]{64}$`)
	errorIDPattern   = regexp.MustCompile(`Error ID: [A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}`)
)

// consoleFixture is the data the console test starts from.
type consoleFixture struct {
	s       *stack
	alice   cred // an administrator; the console signs in with this key
	expired cred
	bobSync cred // lists a scope its owner lacks
	nightly cred // deactivated, with an empty allowlist
	viewer  cred // may view its owner's keys but not change them
	outside cred // may not even list its owner's keys
	all     int  // number of keys
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	s := startStack(t)
	s.role(t, "admin", "createAccessKeys", "manageAccessKeys", "manageOrgSettings", "viewCollectors")
	s.role(t, "developer", "createAccessKeys", "viewCollectors")
	s.role(t, "auditor", "viewPersonalAccessKeys", "viewCollectors")
	s.role(t, "collector", "viewCollectors")
	s.user(t, "alice", "admin")
	s.user(t, "bob", "developer")
	s.user(t, "carol", "auditor")
	s.user(t, "dave", "collector")
	day := 24 * time.Hour
	f := &consoleFixture{s: s}
	// Same-origin requests other than GET carry an Origin header, so the
	// console's own origin is on the allowlist of the key it signs in with.
	f.alice = s.key(t, keystore.KeySpec{OwnerID: "alice", Label: "Console", CORSHeaders: []string{s.origin("api.localhost")}}, 2*day)
	s.key(t, keystore.KeySpec{OwnerID: "alice", Label: "CI deploy", Scopes: []string{"viewCollectors"}, CORSHeaders: []string{"https://ci.example.com"}}, 20*day)
	nightly := s.key(t, keystore.KeySpec{OwnerID: "alice", Label: "Nightly report"}, 5*day)
	f.nightly = nightly
	f.bobSync = s.key(t, keystore.KeySpec{OwnerID: "bob", Label: "Collector sync", Scopes: []string{"viewCollectors", "manageCollectors"}}, 10*day)
	f.expired = s.key(t, keystore.KeySpec{OwnerID: "bob", Label: "Legacy export"}, 200*day)
	disabled := true
	if _, err := s.store.UpdateKey(context.Background(), nightly.id, keystore.KeyUpdate{Disabled: &disabled}, testOp); err != nil {
		t.Fatal(err)
	}
	f.viewer = s.key(t, keystore.KeySpec{OwnerID: "carol", Label: "Audit view", CORSHeaders: []string{s.origin("api.localhost")}}, day)
	f.outside = s.key(t, keystore.KeySpec{OwnerID: "dave", Label: "Collector reader", CORSHeaders: []string{s.origin("api.localhost")}}, day)
	f.all = 7
	return f
}

// TestConsole signs in to the web console in headless Chromium and works
// through it as a person would: a failed and a successful sign-in, creating
// a key and reading its one-time secret, a rejected create (body B),
// paging and sorting the organisation's keys, the layout at 200% zoom,
// deactivating and activating from the keyboard, editing an allowlist,
// rotating, deleting, changing a policy and signing out. Each change is
// checked through the management API as well as on the page.
func TestConsole(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	f := newConsoleFixture(t)
	s := f.s
	consoleURL := s.origin("api.localhost") + "/console/"

	// The console must be there before a browser is worth starting.
	resp, err := s.client.Get(consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("GET /console/ = %d with Content-Security-Policy %q: access_keys_api does not serve the console (serveConsole)", resp.StatusCode, csp)
	}
	b := newBrowser(t, s)

	t.Run("sign in", func(t *testing.T) {
		b := b.on(t)
		b.run("opening the console", chromedp.Navigate(consoleURL), chromedp.WaitVisible(chromedp.CSS(`#signin-form`)))
		if got := b.activeID(); got != "signin-access-id" {
			t.Errorf("focus on load = %q, want the Access ID field", got)
		}
		b.screenshot("sign-in")

		wrong := f.alice.secret[:63] + string(flip(f.alice.secret[63]))
		b.fill(`#signin-access-id`, f.alice.id)
		b.fill(`#signin-access-key`, wrong)
		b.click(`#signin-submit`)
		b.waitJS("the sign-in error", `!document.querySelector('#signin-error').hidden`)
		msg := b.text(`#signin-error`)
		if !strings.Contains(msg, "Credential could not be verified.") || !errorIDPattern.MatchString(msg) {
			t.Errorf("sign-in error = %q, want the API message and its error id", msg)
		}

		b.fill(`#signin-access-key`, f.alice.secret)
		b.click(`#signin-submit`)
		b.waitJS("the personal keys", fmt.Sprintf(`!!document.querySelector('#panel-personal tr[data-id=%q]')`, f.alice.id))
		var storage storageState
		storage = eval[storageState](b, `({session: sessionStorage.getItem('accessgate.console.credentials') || '', local: localStorage.length, cookie: document.cookie})`)
		if !strings.Contains(storage.Session, f.alice.id) || storage.Local != 0 || storage.Cookie != "" {
			t.Errorf("credentials kept as %+v, want sessionStorage only", storage)
		}
		if got := b.text(`#session-id`); got != f.alice.id {
			t.Errorf("signed-in Access ID shown = %q", got)
		}
		rows := eval[[]string](b, `[...document.querySelectorAll('#panel-personal tbody tr')].map(r => r.dataset.id)`)
		if len(rows) != 3 {
			t.Errorf("personal keys = %v, want alice's 3", rows)
		}
		b.waitJS("the org and policies tabs", `!document.querySelector('#tab-org').hidden && !document.querySelector('#tab-policies').hidden`)
		b.screenshot("personal-keys")
	})

	t.Run("an empty allowlist says every browser origin is refused", func(t *testing.T) {
		b := b.on(t)
		cell := fmt.Sprintf(`#panel-personal tr[data-id=%q] td[data-label="Allowlist"] .no-origins`, f.nightly.id)
		got := eval[struct{ Text, Title string }](b, fmt.Sprintf(`({Text: document.querySelector(%q)?.innerText ?? '', Title: document.querySelector(%q)?.title ?? ''})`, cell, cell))
		if got.Text != "No browser origins" || !strings.Contains(got.Title, "Origin header") || !strings.Contains(got.Title, "refused") {
			t.Errorf("allowlist cell of a key without origins = %+v, want \"No browser origins\" and a title on refused Origin headers", got)
		}
	})

	var created cred
	t.Run("create a key and read the one-time secret", func(t *testing.T) {
		b := b.on(t)
		b.click(`#panel-personal [data-action="create"]`)
		b.waitJS("the create dialog", `document.querySelector('#create-dialog').open`)
		if got := b.activeID(); got != "create-label" {
			t.Errorf("focus in the create dialog = %q, want the name field", got)
		}
		// Focus stays in the dialog: Shift+Tab from the first field wraps
		// to the last button, Tab from there back to the first field.
		b.key(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
		if got := b.activeID(); got != "create-submit" {
			t.Errorf("Shift+Tab from the first field focused %q, want the Save button", got)
		}
		b.key(kb.Tab)
		if got := b.activeID(); got != "create-label" {
			t.Errorf("Tab from the last button focused %q, want the name field", got)
		}

		b.fill(`#create-label`, "Deploy pipeline")
		b.fill(`#create-cors`, s.origin("app.localhost"))
		b.click(`#create-submit`)
		b.waitJS("the one-time secret", `document.querySelector('#secret-dialog').open && document.querySelector('#secret-key').value !== ''`)
		secret := eval[struct{ ID, Key, Warning string }](b, `({ID: document.querySelector('#secret-id').value, Key: document.querySelector('#secret-key').value, Warning: document.querySelector('#secret-warning').innerText})`)
		if !accessIDPattern.MatchString(secret.ID) || !accessKeyPattern.MatchString(secret.Key) {
			t.Fatalf("one-time secret = %q / %q", secret.ID, secret.Key)
		}
		if !strings.Contains(secret.Warning, "only time it is shown") {
			t.Errorf("warning = %q", secret.Warning)
		}
		copyButtons := eval[int](b, `document.querySelectorAll('#secret-dialog [data-copy]').length`)
		if copyButtons != 2 {
			t.Errorf("copy buttons = %d, want 2", copyButtons)
		}
		b.screenshot("create-one-time-secret")
		created = cred{secret.ID, secret.Key}

		// The secret works.
		if code, body := s.apiCall(t, created, http.MethodGet, "accessKeys/personal", nil); code != http.StatusOK {
			t.Fatalf("the new key got %d: %s", code, body)
		}

		// Escape closes the dialog, forgets the secret and returns focus to
		// the button that opened the create dialog.
		b.key(kb.Escape)
		// The close event, which forgets the secret, follows the closing.
		b.waitJS("the secret dialog to close", `!document.querySelector('#secret-dialog').open && document.querySelector('#secret-id').value === ''`)
		after := eval[struct{ Secret, Focused string }](b, `({Secret: document.querySelector('#secret-key').value, Focused: document.activeElement?.dataset.action ?? ''})`)
		if after.Secret != "" || after.Focused != "create" {
			t.Errorf("after closing: secret %q left on the page, focus on %q", after.Secret, after.Focused)
		}
		b.waitJS("the new row", fmt.Sprintf(`!!document.querySelector('#panel-personal tr[data-id=%q]')`, created.id))
	})

	t.Run("a rejected create shows the API's message and error id", func(t *testing.T) {
		b := b.on(t)
		b.click(`#panel-personal [data-action="create"]`)
		b.waitJS("the create dialog", `document.querySelector('#create-dialog').open`)
		// Custom scopes come from the scope catalogue.
		b.click(`#create-scope-custom`)
		b.waitJS("the scope catalogue", `!!document.querySelector('#create-scopes input[value="viewCollectors"]')`)
		b.click(`#create-scope-default`)
		b.waitJS("the scope list to hide", `document.querySelector('#create-scopes').hidden`)
		b.fill(`#create-label`, "Bad origin")
		b.fill(`#create-cors`, "http://insecure.example.com/path")
		b.click(`#create-submit`)
		b.waitJS("the dialog's error", `!document.querySelector('#create-dialog [data-role=error]').hidden`)
		msg := b.text(`#create-dialog [data-role=error]`)
		if !errorIDPattern.MatchString(msg) || !strings.Contains(msg, "HTTP 400") {
			t.Errorf("error shown = %q, want the API's message, HTTP 400 and the error id", msg)
		}
		b.key(kb.Escape)
		b.waitJS("the create dialog to close", `!document.querySelector('#create-dialog').open`)
		f.all++ // the key created above
	})

	t.Run("organisation keys page and sort by Expires At", func(t *testing.T) {
		// A reload keeps the session (sessionStorage); a page size of 2
		// makes the list page.
		b.run("reloading with paging", chromedp.Navigate(consoleURL+"?pageSize=2#org"))
		b.waitJS("the first page", `document.querySelectorAll('#panel-org tbody tr').length === 2`)
		for range f.all {
			if more := eval[bool](b, `!document.querySelector('#org-more').hidden`); !more {
				break
			}
			shown := eval[int](b, `document.querySelectorAll('#panel-org tbody tr').length`)
			b.click(`#org-more`)
			b.waitJS("the next page", fmt.Sprintf(`document.querySelectorAll('#panel-org tbody tr').length > %d`, shown))
		}
		b.waitJS("every key", fmt.Sprintf(`document.querySelectorAll('#panel-org tbody tr').length === %d && document.querySelector('#org-more').hidden`, f.all))

		missing := b.text(fmt.Sprintf(`#panel-org tr[data-id=%q] .chip-missing`, f.bobSync.id))
		if !strings.Contains(missing, "manageCollectors") || strings.Contains(missing, "viewCollectors") {
			t.Errorf("scopes marked as lacking = %q, want manageCollectors only", missing)
		}
		if got := b.text(fmt.Sprintf(`#panel-org tr[data-id=%q] .badge`, f.expired.id)); got != "Expired" {
			t.Errorf("badge of the expired key = %q", got)
		}
		badges := eval[[]string](b, `[...document.querySelectorAll('#panel-org .badge')].map(e => e.innerText.trim())`)
		for _, want := range []string{"Active", "Deactivated", "Expired"} {
			if !slices.Contains(badges, want) {
				t.Errorf("no %s badge among %v", want, badges)
			}
		}
		b.run("scrolling to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		b.screenshot("org-keys")

		sortBy := func(dir string) []string {
			t.Helper()
			b.click(`#panel-org button.sort[data-sort="expiresAt"]`)
			b.waitJS("aria-sort "+dir, fmt.Sprintf(`document.querySelector('#panel-org button.sort[data-sort="expiresAt"]').closest('th').getAttribute('aria-sort') === %q`, dir))
			return eval[[]string](b, `[...document.querySelectorAll('#panel-org tbody tr')].map(r => r.dataset.expires)`)
		}
		asc := sortBy("ascending")
		if len(asc) != f.all || !slices.IsSortedFunc(asc, compareExpiry) {
			t.Errorf("ascending by Expires At: %v", asc)
		}
		desc := sortBy("descending")
		if len(desc) != f.all || !slices.IsSortedFunc(desc, func(a, b string) int { return compareExpiry(b, a) }) {
			t.Errorf("descending by Expires At: %v", desc)
		}
		if sortFocus := eval[string](b, `document.activeElement?.dataset.sort ?? ''`); sortFocus != "expiresAt" {
			t.Errorf("focus after sorting = %q, want the Expires At button", sortFocus)
		}
	})

	t.Run("readable at 200% zoom", func(t *testing.T) {
		// 640x400 CSS pixels at a device scale of 2 is a 1280x800 window
		// at 200% zoom: no horizontal scrolling, keys shown as cards.
		b.run("zooming", chromedp.EmulateViewport(viewportW/2, viewportH/2, chromedp.EmulateScale(2)))
		b.waitJS("the narrow layout", `getComputedStyle(document.querySelector('#panel-org tbody tr')).display === 'block'`)
		layout := eval[struct {
			Overflow int
			Cards    bool
		}](b, `({Overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth, Cards: getComputedStyle(document.querySelector('#panel-org tbody tr')).display === 'block'})`)
		if layout.Overflow > 0 || !layout.Cards {
			t.Errorf("at 200%% zoom: %+v, want no horizontal overflow and cards", layout)
		}
		b.run("unzooming", chromedp.EmulateViewport(viewportW, viewportH))
	})

	row := func(id string) string { return fmt.Sprintf(`#panel-org tr[data-id=%q]`, id) }
	menuButton := func(id string) string { return fmt.Sprintf(`#menubtn-org-%s`, id) }
	waitStatus := func(b *browser, id, status string) {
		b.t.Helper()
		b.waitJS(id+" "+status, fmt.Sprintf(`document.querySelector(%q)?.dataset.status === %q`, row(id), status))
	}
	// apiDisabled reads a key's disabled field from the management API.
	apiDisabled := func(t *testing.T, id string) bool {
		t.Helper()
		code, body := s.apiCall(t, f.alice, http.MethodGet, "accessKeys/"+id, nil)
		if code != http.StatusOK {
			t.Fatalf("GET accessKeys/%s = %d: %s", id, code, body)
		}
		var k struct {
			Disabled *bool `json:"disabled"`
		}
		if err := json.Unmarshal(body, &k); err != nil || k.Disabled == nil {
			t.Fatalf("GET accessKeys/%s: no disabled field in %s", id, body)
		}
		return *k.Disabled
	}

	t.Run("deactivate and activate from the keyboard", func(t *testing.T) {
		b := b.on(t)
		b.run("focusing the row menu", chromedp.Focus(chromedp.CSS(menuButton(created.id))))
		b.key(kb.Enter)
		b.waitJS("the open menu", fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-expanded') === 'true' && document.activeElement.getAttribute('role') === 'menuitem'`, menuButton(created.id)))
		// Escape closes the menu and returns focus to its button.
		b.key(kb.Escape)
		b.waitJS("the closed menu", fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-expanded') === 'false' && document.activeElement === document.querySelector(%q)`, menuButton(created.id), menuButton(created.id)))

		b.key(kb.ArrowDown)
		b.key(kb.ArrowDown)
		if got := b.text(`:focus`); got != "Deactivate" {
			t.Fatalf("second menu item = %q, want Deactivate", got)
		}
		b.key(kb.Enter)
		waitStatus(b, created.id, "deactivated")
		if !apiDisabled(t, created.id) {
			t.Errorf("the API says the key is not disabled after deactivating")
		}
		b.waitJS("focus back on the row menu", fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, menuButton(created.id)))
		if code, _ := s.apiCall(t, created, http.MethodGet, "accessKeys/personal", nil); code != http.StatusUnauthorized {
			t.Errorf("deactivated key got %d, want 401", code)
		}

		b.key(kb.ArrowUp) // opens the menu on its last item
		b.key(kb.Home)
		b.key(kb.ArrowDown)
		if got := b.text(`:focus`); got != "Activate" {
			t.Fatalf("second menu item = %q, want Activate", got)
		}
		b.key(kb.Enter)
		waitStatus(b, created.id, "active")
		if apiDisabled(t, created.id) {
			t.Errorf("the API says the key is disabled after activating")
		}
	})

	t.Run("edit the allowlist", func(t *testing.T) {
		b := b.on(t)
		b.click(menuButton(created.id))
		b.click(menuButton(created.id) + ` + [role=menu] [data-op="edit"]`)
		b.waitJS("the edit dialog", `document.querySelector('#edit-dialog').open`)
		if got := eval[string](b, `document.querySelector('#edit-cors').value`); got != s.origin("app.localhost") {
			t.Errorf("allowlist shown = %q, want the key's origin", got)
		}
		want := []string{s.origin("app.localhost"), "https://admin.example.com:8443"}
		b.fill(`#edit-cors`, strings.Join(want, "\n"))
		b.click(`#edit-submit`)
		b.waitJS("the new allowlist in the row", fmt.Sprintf(`!document.querySelector('#edit-dialog').open && document.querySelector(%q)?.innerText.includes('admin.example.com')`, row(created.id)))
		code, body := s.apiCall(t, f.alice, http.MethodGet, "accessKeys/"+created.id, nil)
		var k struct {
			CORSHeaders []string `json:"corsHeaders"`
			Disabled    bool     `json:"disabled"`
		}
		if err := json.Unmarshal(body, &k); code != http.StatusOK || err != nil {
			t.Fatalf("GET accessKeys/%s = %d %s", created.id, code, body)
		}
		if !slices.Equal(k.CORSHeaders, want) || k.Disabled {
			t.Errorf("after saving the allowlist: corsHeaders %v, disabled %v; want %v and active", k.CORSHeaders, k.Disabled, want)
		}
	})

	t.Run("edit the scopes", func(t *testing.T) {
		b := b.on(t)
		b.click(menuButton(created.id))
		b.click(menuButton(created.id) + ` + [role=menu] [data-op="edit"]`)
		b.waitJS("the edit dialog", `document.querySelector('#edit-dialog').open`)
		if !eval[bool](b, `document.querySelector('#edit-scope-default').checked && document.querySelector('#edit-scopes').hidden`) {
			t.Errorf("a key with the Default scope does not open with Default chosen")
		}
		if note := b.text(`#edit-label-note`); !strings.Contains(note, "name cannot be changed") {
			t.Errorf("the dialog does not say the name stays: %q", note)
		}
		b.click(`#edit-scope-custom`)
		b.waitJS("the scope catalogue", `!!document.querySelector('#edit-scopes input[value="viewCollectors"]')`)
		// createAccessKeys keeps the key able to list its own keys, which
		// the rotation below checks.
		b.click(`#edit-scopes input[value="createAccessKeys"]`)
		b.click(`#edit-scopes input[value="viewCollectors"]`)
		b.screenshot("edit-key")
		b.click(`#edit-submit`)
		b.waitJS("the new scope in the row", fmt.Sprintf(`!document.querySelector('#edit-dialog').open && document.querySelector(%q)?.querySelector('td[data-label="Scopes"]')?.innerText.includes('viewCollectors')`, row(created.id)))
		code, body := s.apiCall(t, f.alice, http.MethodGet, "accessKeys/"+created.id, nil)
		var k struct {
			Scopes      []string `json:"scopes"`
			CORSHeaders []string `json:"corsHeaders"`
			Disabled    bool     `json:"disabled"`
		}
		if err := json.Unmarshal(body, &k); code != http.StatusOK || err != nil {
			t.Fatalf("GET accessKeys/%s = %d %s", created.id, code, body)
		}
		wantCORS := []string{s.origin("app.localhost"), "https://admin.example.com:8443"}
		// The API keeps scopes in the order the console sent them, which
		// is the picker's order: compare them as a set.
		wantScopes := []string{"createAccessKeys", "viewCollectors"}
		if !slices.Equal(slices.Sorted(slices.Values(k.Scopes)), wantScopes) || !slices.Equal(k.CORSHeaders, wantCORS) || k.Disabled {
			t.Errorf("after editing the scopes: %+v, want scopes %v, the allowlist %v kept and active", k, wantScopes, wantCORS)
		}

		// Opening it again shows the custom scope chosen.
		b.click(menuButton(created.id))
		b.click(menuButton(created.id) + ` + [role=menu] [data-op="edit"]`)
		b.waitJS("the chosen scope", `document.querySelector('#edit-dialog').open && document.querySelector('#edit-scope-custom').checked && document.querySelector('#edit-scopes input[value="viewCollectors"]')?.checked === true && document.querySelector('#edit-scopes input[value="manageAccessKeys"]')?.checked === false`)
		// Back to the Default scope.
		b.click(`#edit-scope-default`)
		b.click(`#edit-submit`)
		b.waitJS("the Default scope in the row", fmt.Sprintf(`!document.querySelector('#edit-dialog').open && document.querySelector(%q)?.querySelector('td[data-label="Scopes"]')?.innerText.trim() === 'Default'`, row(created.id)))
		code, body = s.apiCall(t, f.alice, http.MethodGet, "accessKeys/"+created.id, nil)
		k.Scopes = nil
		if err := json.Unmarshal(body, &k); code != http.StatusOK || err != nil || len(k.Scopes) != 0 || !slices.Equal(k.CORSHeaders, wantCORS) {
			t.Errorf("after choosing the Default scope: %d %s", code, body)
		}
	})

	t.Run("rotate shows the new key once", func(t *testing.T) {
		b := b.on(t)
		b.click(menuButton(created.id))
		b.click(menuButton(created.id) + ` + [role=menu] [data-op="rotate"]`)
		b.waitJS("the confirmation", `document.querySelector('#confirm-dialog').open`)
		b.click(`#confirm-ok`)
		b.waitJS("the new secret", `document.querySelector('#secret-dialog').open && document.querySelector('#secret-key').value !== ''`)
		secret := eval[struct{ ID, Key, Title string }](b, `({ID: document.querySelector('#secret-id').value, Key: document.querySelector('#secret-key').value, Title: document.querySelector('#secret-title').innerText})`)
		if secret.ID == created.id || !accessIDPattern.MatchString(secret.ID) || !accessKeyPattern.MatchString(secret.Key) {
			t.Fatalf("rotation gave %q / %q (old %s)", secret.ID, secret.Key, created.id)
		}
		if secret.Title != "Access Key rotated" {
			t.Errorf("title = %q", secret.Title)
		}
		rotated := cred{secret.ID, secret.Key}
		if code, body := s.apiCall(t, rotated, http.MethodGet, "accessKeys/personal", nil); code != http.StatusOK {
			t.Fatalf("the rotated key got %d: %s", code, body)
		}
		// The previous key works in its grace until it is deactivated
		// from the same dialog.
		if code, body := s.apiCall(t, created, http.MethodGet, "accessKeys/personal", nil); code != http.StatusOK {
			t.Fatalf("the previous key got %d in its grace: %s", code, body)
		}
		if got := b.text(`#secret-previous-text`); !strings.Contains(got, created.id) {
			t.Errorf("the dialog does not name the previous Access ID: %q", got)
		}
		b.click(`#secret-previous-stop`)
		b.waitJS("the previous key deactivated", `document.querySelector('#secret-previous-text').innerText.includes('is deactivated')`)
		if code, _ := s.apiCall(t, created, http.MethodGet, "accessKeys/personal", nil); code != http.StatusUnauthorized {
			t.Errorf("the deactivated previous key got %d, want 401", code)
		}
		if code, body := s.apiCall(t, rotated, http.MethodGet, "accessKeys/personal", nil); code != http.StatusOK {
			t.Fatalf("the rotated key got %d after the previous one was deactivated: %s", code, body)
		}
		b.click(`#secret-dialog [data-close]`)
		b.waitJS("the rotated row", fmt.Sprintf(`!!document.querySelector(%q) && !document.querySelector('#secret-dialog').open`, row(rotated.id)))
		created = rotated
	})

	t.Run("delete asks first", func(t *testing.T) {
		b := b.on(t)
		b.click(menuButton(created.id))
		b.click(menuButton(created.id) + ` + [role=menu] [data-op="delete"]`)
		b.waitJS("the confirmation", `document.querySelector('#confirm-dialog').open`)
		if got := b.text(`:focus`); got != "Cancel" {
			t.Errorf("focus in the delete confirmation = %q, want Cancel", got)
		}
		if got := b.text(`#confirm-title`); !strings.Contains(got, "Delete") || !strings.Contains(got, "Deploy pipeline") {
			t.Errorf("confirmation title = %q", got)
		}
		b.click(`#confirm-ok`)
		b.waitJS("the row to go", fmt.Sprintf(`!document.querySelector(%q) && !document.querySelector('#confirm-dialog').open`, row(created.id)))
		if code, body := s.apiCall(t, f.alice, http.MethodGet, "accessKeys/"+created.id, nil); code != http.StatusNotFound {
			t.Errorf("deleted key: GET = %d %s, want 404", code, body)
		}
		if !strings.Contains(b.text(`#status`), "deleted") {
			t.Errorf("status message = %q", b.text(`#status`))
		}
	})

	t.Run("change a policy", func(t *testing.T) {
		b := b.on(t)
		b.click(`#tab-policies`)
		b.waitJS("the loaded policies", `document.querySelector('#policy-lifetime-days').value === '180' && document.querySelector('#policy-unused-days').value === '30'`)
		b.screenshot("policies")
		b.fill(`#policy-lifetime-days`, "90")
		b.click(`#policy-lifetime button[type=submit]`)
		b.waitJS("the saved message", `document.querySelector('#status').innerText.includes('90 days')`)
		code, body := s.apiCall(t, f.alice, http.MethodGet, "policies/accessKeysLifetime", nil)
		if code != http.StatusOK || !strings.Contains(string(body), `"accessKeysLifetimeInDays":90`) {
			t.Errorf("policy after saving: %d %s", code, body)
		}
	})

	t.Run("a policy out of bounds is refused in the form", func(t *testing.T) {
		b := b.on(t)
		for _, bad := range []string{"400", "1.5", "-1"} {
			b.fill(`#policy-lifetime-days`, bad)
			b.click(`#policy-lifetime button[type=submit]`)
			b.waitJS("the field's message", `!document.querySelector('#policy-lifetime-days-error').hidden`)
			msg := b.text(`#policy-lifetime-days-error`)
			if !strings.Contains(msg, "whole number of days from 0 to 365") {
				t.Errorf("message for %q = %q", bad, msg)
			}
			if st := b.text(`#status`); st != "" {
				t.Errorf("status %q left beside the refusal of %q", st, bad)
			}
			if inv := eval[string](b, `document.querySelector('#policy-lifetime-days').getAttribute('aria-invalid') ?? ''`); inv != "true" {
				t.Errorf("aria-invalid for %q = %q", bad, inv)
			}
		}
		b.screenshot("policy-invalid")
		code, body := s.apiCall(t, f.alice, http.MethodGet, "policies/accessKeysLifetime", nil)
		if code != http.StatusOK || !strings.Contains(string(body), `"accessKeysLifetimeInDays":90`) {
			t.Errorf("policy after refused values: %d %s, want 90 unchanged", code, body)
		}
		b.fill(`#policy-lifetime-days`, "365")
		b.click(`#policy-lifetime button[type=submit]`)
		b.waitJS("the saved message", `document.querySelector('#status').innerText.includes('365 days') && document.querySelector('#policy-lifetime-days-error').hidden`)
	})

	t.Run("sign out forgets the credentials", func(t *testing.T) {
		b := b.on(t)
		b.click(`#sign-out`)
		b.waitJS("the sign-in form", `!document.querySelector('#signin-view').hidden && document.querySelector('#app-view').hidden`)
		if left := eval[int](b, `sessionStorage.length + localStorage.length`); left != 0 {
			t.Errorf("%d items left in web storage after signing out", left)
		}
	})

	signIn := func(b *browser, c cred) {
		b.t.Helper()
		b.waitJS("the sign-in form", `!document.querySelector('#signin-view').hidden`)
		b.fill(`#signin-access-id`, c.id)
		b.fill(`#signin-access-key`, c.secret)
		b.click(`#signin-submit`)
		b.waitJS("the console", `!document.querySelector('#app-view').hidden`)
	}
	signOut := func(b *browser) {
		b.t.Helper()
		b.click(`#sign-out`)
		b.waitJS("the sign-in form", `!document.querySelector('#signin-view').hidden`)
	}
	// visible reports whether an element is shown.
	visible := func(b *browser, sel string) bool {
		b.t.Helper()
		return eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; })()`, sel))
	}

	t.Run("a key that may only view its keys sees no changes offered", func(t *testing.T) {
		b := b.on(t)
		signIn(b, f.viewer)
		b.waitJS("its own row", fmt.Sprintf(`!!document.querySelector('#panel-personal tr[data-id=%q]')`, f.viewer.id))
		for _, sel := range []string{`#tab-org`, `#tab-policies`, `#panel-personal [data-action="create"]`, `#panel-personal [aria-haspopup="menu"]`, `#app-error`} {
			if visible(b, sel) {
				t.Errorf("%s is shown to a key with viewPersonalAccessKeys only", sel)
			}
		}
		if !visible(b, `#app-notice`) || !strings.Contains(b.text(`#app-notice`), "not create or change") {
			t.Errorf("notice = %q, want one saying the key may not change keys", b.text(`#app-notice`))
		}
		b.screenshot("view-only-key")
		signOut(b)
	})

	t.Run("a key refused its own keys sees only what it may use", func(t *testing.T) {
		b := b.on(t)
		signIn(b, f.outside)
		b.waitJS("the policies", `!document.querySelector('#panel-policies').hidden && document.querySelector('#policy-lifetime-days').value === '365'`)
		for _, sel := range []string{`#tab-personal`, `#tab-org`, `#panel-personal`, `[data-action="create"]`, `#app-error`} {
			if visible(b, sel) {
				t.Errorf("%s is shown to a key without any access key capability", sel)
			}
		}
		notice := b.text(`#app-notice`)
		if !visible(b, `#app-notice`) || !strings.Contains(notice, "may not view or manage access keys") || !strings.Contains(notice, "manageOrgSettings") {
			t.Errorf("notice = %q, want one saying what the key may not do", notice)
		}
		b.screenshot("no-key-capabilities")

		// The form accepts 30; the API refuses it, and its message is shown.
		b.fill(`#policy-lifetime-days`, "30")
		b.click(`#policy-lifetime button[type=submit]`)
		b.waitJS("the field's message", `!document.querySelector('#policy-lifetime-days-error').hidden`)
		if msg := b.text(`#policy-lifetime-days-error`); !strings.Contains(msg, "lacks the capability manageOrgSettings") {
			t.Errorf("message after the API refused = %q, want the API's message", msg)
		}
		b.screenshot("policy-refused")

		// A reload, which signs in from the session, shows the same.
		b.run("reloading", chromedp.Reload())
		b.waitJS("the policies after a reload", `!document.querySelector('#panel-policies').hidden && document.querySelector('#tab-personal').hidden && !document.querySelector('#app-notice').hidden`)
		if visible(b, `#app-error`) || visible(b, `#panel-personal`) {
			t.Errorf("after a reload the key's refused own keys show an error or the Personal tab")
		}
		code, body := s.apiCall(t, f.alice, http.MethodGet, "policies/accessKeysLifetime", nil)
		if code != http.StatusOK || !strings.Contains(string(body), `"accessKeysLifetimeInDays":365`) {
			t.Errorf("policy after a refused change: %d %s, want 365", code, body)
		}
		signOut(b)
	})

	t.Run("no script errors or CSP violations", func(t *testing.T) {
		b := b.on(t)
		b.assertNoProblems()
	})
}

// storageState is where the page keeps data.
type storageState struct {
	Session string `json:"session"`
	Local   int    `json:"local"`
	Cookie  string `json:"cookie"`
}

// compareExpiry orders expiry times with "never" (empty) last.
func compareExpiry(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	ta, _ := time.Parse(time.RFC3339, a)
	tb, _ := time.Parse(time.RFC3339, b)
	return ta.Compare(tb)
}

// flip returns a different base62 character.
func flip(c byte) byte {
	if c == 'a' {
		return 'b'
	}
	return 'a'
}
