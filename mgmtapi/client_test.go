package mgmtapi_test

import (
	"errors"
	"testing"

	"github.com/accessgate/accessgate/keystore"
	"github.com/accessgate/accessgate/mgmtapi/client"
)

// TestAPIClient drives the access keys and policies of a real gateway
// through the Go client.
func TestAPIClient(t *testing.T) {
	f := newAPIFixture(t)
	ctx := t.Context()
	admin, err := client.New(f.base, f.admin.id, f.admin.secret, nil)
	if err != nil {
		t.Fatal(err)
	}

	k, err := admin.CreateAccessKey(ctx, "", client.CreateRequest{Label: "ci", Scopes: []string{"viewWidgets"}, CORSHeaders: []string{"https://a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Key == "" || k.OwnerID != "ADMIN1" || k.Label != "ci" || len(k.Scopes) != 1 || k.LastUsed != nil {
		t.Fatalf("created %+v", k)
	}
	if st := f.gateStatus(t, cred{k.ID, k.Key}); st != 200 {
		t.Fatalf("the new key gets %d at the gate, want 200", st)
	}

	got, err := admin.GetAccessKey(ctx, k.ID)
	if err != nil || got.ID != k.ID || got.Key != "" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	personal, err := admin.PersonalAccessKeys(ctx)
	if err != nil || len(personal) != 2 {
		t.Fatalf("personal: %d keys, %v; want 2", len(personal), err)
	}

	page, err := admin.ListAccessKeys(ctx, 2, "")
	if err != nil || len(page.Data) != 2 || page.Next == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	all, err := admin.AllAccessKeys(ctx)
	if err != nil || len(all) != 6 {
		t.Fatalf("all keys: %d, %v; want 6", len(all), err)
	}

	scopes := []string{}
	up, err := admin.UpdateAccessKey(ctx, k.ID, client.UpdateRequest{Disabled: true, Scopes: &scopes})
	if err != nil || !up.Disabled || len(up.Scopes) != 0 || len(up.CORSHeaders) != 1 {
		t.Fatalf("update: %+v, %v", up, err)
	}

	rot, err := admin.RotateAccessKey(ctx, k.ID)
	if err != nil || rot.ID == k.ID || rot.Key == "" {
		t.Fatalf("rotate: %+v, %v", rot, err)
	}
	if err := admin.DeleteAccessKey(ctx, rot.ID); err != nil {
		t.Fatal(err)
	}
	_, err = admin.GetAccessKey(ctx, rot.ID)
	ae, ok := errors.AsType[*client.Error](err)
	if !ok || ae.Status != 404 || !ae.HasCode("accessKey:not_found") || ae.ID == "" || len(ae.Problems) != 1 {
		t.Fatalf("get of a deleted key: %#v", err)
	}

	if n, err := admin.SetLifetimeDays(ctx, 30); err != nil || n != 30 {
		t.Fatalf("set lifetime: %d, %v", n, err)
	}
	if n, err := admin.LifetimeDays(ctx); err != nil || n != 30 {
		t.Fatalf("lifetime: %d, %v", n, err)
	}
	if n, err := admin.SetUnusedDays(ctx, 7); err != nil || n != 7 {
		t.Fatalf("set unused: %d, %v", n, err)
	}
	if n, err := admin.UnusedDays(ctx); err != nil || n != 7 {
		t.Fatalf("unused: %d, %v", n, err)
	}
	_, err = admin.SetUnusedDays(ctx, -1)
	if ae, ok := errors.AsType[*client.Error](err); !ok || ae.Status != 400 || len(ae.Problems) == 0 {
		t.Fatalf("invalid policy: %#v", err)
	}

	users, err := admin.ListUsers(ctx, 2, "")
	if err != nil || len(users.Data) != 2 || users.Next == "" || users.Data[0].Email == "" {
		t.Fatalf("users: %+v, %v", users, err)
	}
	roles, err := admin.ListRoles(ctx, 0, "")
	if err != nil || len(roles.Data) != 3 || roles.Next != "" {
		t.Fatalf("roles: %+v, %v", roles, err)
	}
	if _, err := f.store.PutOwner(ctx, keystore.Owner{ID: "robot", Kind: keystore.OwnerServiceAccount, Name: "Robot", Email: "robot@example.com", RoleIDs: []string{"member"}, IsActive: true}, "test"); err != nil {
		t.Fatal(err)
	}
	sas, err := admin.ListServiceAccounts(ctx, 0, "")
	if err != nil || len(sas.Data) != 1 || sas.Data[0].Name != "Robot" {
		t.Fatalf("service accounts: %+v, %v", sas, err)
	}
	sk, err := admin.CreateAccessKey(ctx, "robot", client.CreateRequest{Label: "etl"})
	if err != nil || sk.ServiceAccountID != "robot" || sk.Key == "" {
		t.Fatalf("service account key: %+v, %v", sk, err)
	}
	if list, err := admin.ServiceAccountAccessKeys(ctx, "robot"); err != nil || len(list) != 1 || list[0].ID != sk.ID {
		t.Fatalf("service account keys: %+v, %v", list, err)
	}

	// Body A: a wrong Access Key.
	bad, err := client.New(f.base, f.admin.id, "wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.AllAccessKeys(ctx)
	if ae, ok := errors.AsType[*client.Error](err); !ok || ae.Status != 401 || ae.Code != "unauthorized" || ae.Message == "" || ae.ID == "" {
		t.Fatalf("wrong key: %#v", err)
	}
	// A key without manageAccessKeys cannot list every key.
	alice, _ := client.New(f.base, f.alice.id, f.alice.secret, nil)
	_, err = alice.AllAccessKeys(ctx)
	if ae, ok := errors.AsType[*client.Error](err); !ok || ae.Status != 403 {
		t.Fatalf("alice lists all keys: %#v", err)
	}
}

// TestClientNew refuses URLs and credentials it cannot use.
func TestClientNew(t *testing.T) {
	for _, c := range []struct{ base, id, key string }{
		{"ftp://x/api/v1", "a", "b"},
		{"127.0.0.1:2019", "a", "b"},
		{"http://x/api/v1", "", "b"},
		{"http://x/api/v1", "a", ""},
	} {
		if _, err := client.New(c.base, c.id, c.key, nil); err == nil {
			t.Errorf("New(%q, %q, %q) succeeded", c.base, c.id, c.key)
		}
	}
}
