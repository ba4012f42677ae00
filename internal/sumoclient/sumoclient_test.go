package sumoclient_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/accessgate/accessgate/internal/gatewaytest"
	"github.com/accessgate/accessgate/internal/redistest"
	"github.com/accessgate/accessgate/internal/sumoclient"
	"github.com/accessgate/accessgate/keystore"
)

const caddyfile = `{
	admin 127.0.0.1:%[1]d
	access_keys {
		redis %[2]s
		key_prefix sumoclient
		max_failures_per_client -1
		max_failures_per_key -1
	}
}

http://127.0.0.1:%[3]d {
	handle /api/v1/* {
		access_keys_api
	}
}
`

// loadSpec loads Sumo Logic's schemas that the client is generated from.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("testdata/sumo-openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return doc
}

// findRoute finds the operation of the document that a request path
// (below /api) matches, preferring literal segments to parameters.
func findRoute(doc *openapi3.T, method, path string) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *routers.Route
	var bestParams map[string]string
	bestScore := -1
	for tmpl, item := range doc.Paths.Map() {
		op := item.GetOperation(method)
		tsegs := strings.Split(strings.Trim(tmpl, "/"), "/")
		if op == nil || len(tsegs) != len(segs) {
			continue
		}
		params, score := map[string]string{}, 0
		for i, ts := range tsegs {
			switch {
			case strings.HasPrefix(ts, "{"):
				params[strings.Trim(ts, "{}")] = segs[i]
			case ts == segs[i]:
				score++
			default:
				score = -1
			}
			if score < 0 {
				break
			}
		}
		if score > bestScore {
			best = &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}
			bestParams, bestScore = params, score
		}
	}
	return best, bestParams
}

// knownDeviations are the differences between the gateway's answers and
// Sumo Logic's published schemas that the test knows of and tolerates,
// each logged when seen; any other validation error fails the test.
//   - "next" is null on the last page of a list, where the schemas
//     declare an optional, non-nullable string;
//   - "lastUsed" is null on a key that was never used, where the schemas
//     declare an optional, non-nullable date-time.
var knownDeviations = []*regexp.Regexp{
	regexp.MustCompile(`^/next: Value is not nullable$`),
	regexp.MustCompile(`^(/data/\d+)?/lastUsed: Value is not nullable$`),
}

// schemaErrors are the "Error at" parts of a kin-openapi validation error.
var schemaErrors = regexp.MustCompile(`Error at "([^"]*)": ([^\n|]*)`)

// unknownDeviations returns the parts of a validation error that are not
// known deviations; the whole message when it has no parts.
func unknownDeviations(err error) []string {
	parts := schemaErrors.FindAllStringSubmatch(err.Error(), -1)
	if len(parts) == 0 {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range parts {
		s := p[1] + ": " + strings.TrimSpace(p[2])
		if !slices.ContainsFunc(knownDeviations, func(re *regexp.Regexp) bool { return re.MatchString(s) }) {
			out = append(out, s)
		}
	}
	return out
}

// deviations lists the "Error at" parts of a validation error.
func deviations(err error) []string {
	var out []string
	for _, p := range schemaErrors.FindAllStringSubmatch(err.Error(), -1) {
		out = append(out, p[1]+": "+strings.TrimSpace(p[2]))
	}
	return out
}

// validatingDoer sends the generated client's requests and fails the test
// when an answer does not validate against Sumo Logic's schemas: required
// properties, types and formats, as a strict client of those schemas
// reads them.
type validatingDoer struct {
	t   *testing.T
	doc *openapi3.T
}

func (d validatingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	what := req.Method + " " + req.URL.Path
	route, params := findRoute(d.doc, req.Method, strings.TrimPrefix(req.URL.Path, "/api"))
	if route == nil {
		d.t.Errorf("%s: no operation of the schemas", what)
		return resp, nil
	}
	r2 := req.Clone(context.Background())
	r2.Body = http.NoBody
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		if bad := unknownDeviations(err); len(bad) > 0 {
			d.t.Errorf("%s: %d answer does not match Sumo Logic's schema: %s\n%v\n%s", what, resp.StatusCode, strings.Join(bad, "; "), err, body)
		} else {
			d.t.Logf("%s: known deviation from Sumo Logic's schema: %s", what, strings.Join(deviations(err), "; "))
		}
	}
	return resp, nil
}

// TestSumoClientEndToEnd runs the client generated from Sumo Logic's
// published schemas against a real gateway: roles, users and the
// lifecycle of an access key, each answer decoded by the generated client
// and validated against the schemas.
func TestSumoClientEndToEnd(t *testing.T) {
	doc := loadSpec(t)
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	admin, port := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	gatewaytest.Start(t, fmt.Sprintf(caddyfile, admin, srv.URL(), port))

	ctx := context.Background()
	store := keystore.New(rdb, keystore.Options{Prefix: "sumoclient"})
	caps := []string{"createAccessKeys", "manageAccessKeys", "manageUsersAndRoles", "viewUsersAndRoles"}
	if _, err := store.PutRole(ctx, keystore.Role{ID: "admin", Capabilities: caps}, "test"); err != nil {
		t.Fatal(err)
	}
	owner := keystore.Owner{ID: "ADMIN1", Kind: keystore.OwnerUser, FirstName: "Ada", LastName: "Admin", Email: "admin1@example.com", RoleIDs: []string{"admin"}, IsActive: true}
	if _, err := store.PutOwner(ctx, owner, "test"); err != nil {
		t.Fatal(err)
	}
	op := keystore.Operator{ID: "test", Interface: keystore.InterfaceCLI}
	adminKey, adminSecret, err := store.CreateKey(ctx, keystore.KeySpec{Label: "admin key", OwnerID: "ADMIN1"}, op)
	if err != nil {
		t.Fatal(err)
	}

	c, err := sumoclient.NewClientWithResponses(fmt.Sprintf("http://127.0.0.1:%d/api/", port),
		sumoclient.WithHTTPClient(validatingDoer{t: t, doc: doc}),
		sumoclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.SetBasicAuth(adminKey.ID, adminSecret)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}

	// Roles.
	desc := "Operates the widgets."
	role, err := c.CreateRoleWithResponse(ctx, sumoclient.CreateRoleDefinition{
		Name: "operators", Description: &desc, Capabilities: &[]string{"createAccessKeys"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if role.StatusCode() != http.StatusOK || role.JSON200 == nil {
		t.Fatalf("createRole: %d %s", role.StatusCode(), role.Body)
	}
	if role.JSON200.Id == "" || role.JSON200.Name != "operators" || role.JSON200.CreatedAt.IsZero() || role.JSON200.ModifiedAt.IsZero() {
		t.Errorf("createRole: %+v", role.JSON200)
	}
	roleID := role.JSON200.Id
	roles, err := c.ListRolesWithResponse(ctx, &sumoclient.ListRolesParams{})
	if err != nil {
		t.Fatal(err)
	}
	if roles.StatusCode() != http.StatusOK || roles.JSON200 == nil {
		t.Fatalf("listRoles: %d %s", roles.StatusCode(), roles.Body)
	}
	if !slices.ContainsFunc(roles.JSON200.Data, func(r sumoclient.RoleModel) bool { return r.Id == roleID }) {
		t.Errorf("listRoles: no role %s in %s", roleID, roles.Body)
	}
	gotRole, err := c.GetRoleWithResponse(ctx, roleID)
	if err != nil {
		t.Fatal(err)
	}
	if gotRole.StatusCode() != http.StatusOK || gotRole.JSON200 == nil || gotRole.JSON200.Name != "operators" {
		t.Errorf("getRole: %d %s", gotRole.StatusCode(), gotRole.Body)
	}

	// Users.
	user, err := c.CreateUserWithResponse(ctx, sumoclient.CreateUserDefinition{
		FirstName: "Dana", LastName: "Operator", Email: "dana@example.com", RoleIds: []string{roleID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if user.StatusCode() != http.StatusOK || user.JSON200 == nil {
		t.Fatalf("createUser: %d %s", user.StatusCode(), user.Body)
	}
	if user.JSON200.Id == "" || user.JSON200.Email != "dana@example.com" || !slices.Equal(user.JSON200.RoleIds, []string{roleID}) || user.JSON200.CreatedAt.IsZero() {
		t.Errorf("createUser: %+v", user.JSON200)
	}
	userID := user.JSON200.Id
	users, err := c.ListUsersWithResponse(ctx, &sumoclient.ListUsersParams{})
	if err != nil {
		t.Fatal(err)
	}
	if users.StatusCode() != http.StatusOK || users.JSON200 == nil {
		t.Fatalf("listUsers: %d %s", users.StatusCode(), users.Body)
	}
	var ids []string
	for _, u := range users.JSON200.Data {
		ids = append(ids, u.Id)
	}
	if !slices.Contains(ids, userID) || !slices.Contains(ids, "ADMIN1") {
		t.Errorf("listUsers: ids %v, want %s and ADMIN1", ids, userID)
	}
	gotUser, err := c.GetUserWithResponse(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if gotUser.StatusCode() != http.StatusOK || gotUser.JSON200 == nil || gotUser.JSON200.FirstName != "Dana" {
		t.Errorf("getUser: %d %s", gotUser.StatusCode(), gotUser.Body)
	}

	// An access key: create, list (paged), list personal, disable, delete.
	created, err := c.CreateAccessKeyWithResponse(ctx, sumoclient.AccessKeyCreateRequest{
		Label: "automation", CorsHeaders: &[]string{"https://app.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.StatusCode() != http.StatusOK || created.JSON200 == nil {
		t.Fatalf("createAccessKey: %d %s", created.StatusCode(), created.Body)
	}
	k := created.JSON200
	if k.Id == "" || k.Key == "" || k.Label != "automation" || k.Disabled || k.CreatedAt.IsZero() || k.CreatedBy != "ADMIN1" {
		t.Errorf("createAccessKey: %+v", k)
	}

	var listed []sumoclient.AccessKeyPublic
	params := &sumoclient.ListAccessKeysParams{Limit: new(int32(1))}
	pages := 0
	for ; ; pages++ {
		if pages > 10 {
			t.Fatal("listAccessKeys: too many pages")
		}
		resp, err := c.ListAccessKeysWithResponse(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
			t.Fatalf("listAccessKeys: %d %s", resp.StatusCode(), resp.Body)
		}
		if len(resp.JSON200.Data) > 1 {
			t.Errorf("listAccessKeys: %d keys on a page of limit 1", len(resp.JSON200.Data))
		}
		listed = append(listed, resp.JSON200.Data...)
		if resp.JSON200.Next == nil || *resp.JSON200.Next == "" {
			pages++
			break
		}
		params.Token = resp.JSON200.Next
	}
	if pages < 2 {
		t.Errorf("listAccessKeys: %d page(s) of limit 1 for two keys", pages)
	}
	var listedIDs []string
	for _, l := range listed {
		listedIDs = append(listedIDs, l.Id)
	}
	slices.Sort(listedIDs)
	want := []string{adminKey.ID, k.Id}
	slices.Sort(want)
	if !slices.Equal(listedIDs, want) {
		t.Errorf("listAccessKeys: ids %v, want %v", listedIDs, want)
	}

	personal, err := c.ListPersonalAccessKeysWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if personal.StatusCode() != http.StatusOK || personal.JSON200 == nil {
		t.Fatalf("listPersonalAccessKeys: %d %s", personal.StatusCode(), personal.Body)
	}
	if !slices.ContainsFunc(personal.JSON200.Data, func(a sumoclient.AccessKeyPublic) bool { return a.Id == k.Id }) {
		t.Errorf("listPersonalAccessKeys: no key %s in %s", k.Id, personal.Body)
	}

	updated, err := c.UpdateAccessKeyWithResponse(ctx, k.Id, sumoclient.AccessKeyUpdateRequest{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if updated.StatusCode() != http.StatusOK || updated.JSON200 == nil {
		t.Fatalf("updateAccessKey: %d %s", updated.StatusCode(), updated.Body)
	}
	if updated.JSON200.Id != k.Id || !updated.JSON200.Disabled {
		t.Errorf("updateAccessKey: %+v", updated.JSON200)
	}

	deleted, err := c.DeleteAccessKeyWithResponse(ctx, k.Id)
	if err != nil {
		t.Fatal(err)
	}
	if deleted.StatusCode() != http.StatusNoContent {
		t.Errorf("deleteAccessKey: %d %s", deleted.StatusCode(), deleted.Body)
	}
	again, err := c.DeleteAccessKeyWithResponse(ctx, k.Id)
	if err != nil {
		t.Fatal(err)
	}
	if again.StatusCode() != http.StatusNotFound || again.JSONDefault == nil || len(again.JSONDefault.Errors) == 0 {
		t.Errorf("deleteAccessKey again: %d %s", again.StatusCode(), again.Body)
	}
}
