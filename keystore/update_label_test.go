package keystore

import (
	"errors"
	"slices"
	"testing"
)

// TestUpdateKeyLabelScopesAllowlist: a label, scopes and allowlist change
// together or not at all, one AccessKeyUpdated event each, none for a
// no-op or a refused change; a key rotated out cannot be renamed.
func TestUpdateKeyLabelScopesAllowlist(t *testing.T) {
	f := newFixture(t)
	k, secret := f.createKey(t, KeySpec{Scopes: []string{"viewCollectors"}, CORSHeaders: []string{"https://a.example.com"}})
	events := len(f.log.all())

	got, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Label: ptr("renamed")}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Label != "renamed" || got.Version != k.Version+1 || !slices.Equal(got.Scopes, k.Scopes) || !slices.Equal(got.CORSHeaders, k.CORSHeaders) {
		t.Errorf("after a label edit: %+v", got)
	}
	if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Label: ptr("renamed"), Scopes: &[]string{"viewCollectors"}}, testOp); err != nil {
		t.Fatal(err)
	}
	_, err = f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Label: ptr(" "), Scopes: &[]string{"runLogSearch"}, CORSHeaders: &[]string{"http://x"}}, testOp)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("bad label and allowlist: %v", err)
	}
	got, err = f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Scopes: &[]string{}, CORSHeaders: &[]string{}}, testOp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Label != "renamed" || len(got.Scopes) != 0 || len(got.CORSHeaders) != 0 || got.Version != k.Version+2 {
		t.Errorf("after clearing: %+v", got)
	}
	var names []string
	for _, e := range f.log.all()[events:] {
		names = append(names, e.EventName)
	}
	if !slices.Equal(names, []string{EventKeyUpdated, EventKeyUpdated}) {
		t.Errorf("events %v, want two %s (a no-op and a refused edit write none)", names, EventKeyUpdated)
	}
	if _, err := f.verify(k.ID, secret); err != nil {
		t.Errorf("the edited key no longer verifies: %v", err)
	}

	if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Label: ptr("x")}, testOp); !errors.Is(err, ErrConflict) {
		t.Errorf("editing a key rotated out: %v, want a conflict", err)
	}
	if _, err := f.store.UpdateKey(f.ctx, "su"+"AAAAAAAAAAAA", KeyUpdate{Label: ptr("x")}, testOp); !errors.Is(err, ErrNotFound) {
		t.Errorf("editing an unknown key: %v, want not found", err)
	}
}
