package caddymodule

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
)

// TestGuardCopy checks the guard copy of a key record against a state
// whose Redis is unreachable, so that any Redis read shows as an error: a
// wrong key is refused and the right one let through without Redis, and
// the copy goes with an invalidation message for its Access ID or a flush
// (after which screening needs Redis again), not with one for another ID.
func TestGuardCopy(t *testing.T) {
	st := offlineState(t)
	ctx := context.Background()
	id, secret := keystore.NewAccessID(), keystore.NewAccessKey()
	guard := func() {
		st.auth.Add(st.guardKey(id), &entry{guard: &keystore.Key{ID: id, SecretHash: keystore.HashSecret(secret), Label: "l", OwnerID: "u1"}}, time.Time{}, id)
	}
	screened := func(what string) {
		t.Helper()
		var ae *keystore.AuthError
		if err := st.screen(ctx, id, keystore.NewAccessKey()); !errors.As(err, &ae) || ae.Reason != keystore.ReasonWrongSecret || ae.Key == nil || ae.Key.OwnerID != "u1" {
			t.Errorf("%s: a wrong key gave %v, want wrong_secret with the record", what, err)
		}
		if err := st.screen(ctx, id, secret); err != nil {
			t.Errorf("%s: the right key gave %v, want nil", what, err)
		}
	}
	dropped := func(what string) {
		t.Helper()
		var ae *keystore.AuthError
		if err := st.screen(ctx, id, keystore.NewAccessKey()); err == nil || errors.As(err, &ae) {
			t.Errorf("%s: a wrong key gave %v, want a Redis error (the copy is gone, the record must be read)", what, err)
		}
	}

	guard()
	screened("copy held")
	st.invalidate("key:" + keystore.NewAccessID())
	screened("after another Access ID's invalidation")
	st.invalidate("key:" + id)
	dropped("after its invalidation")

	guard()
	st.flush("")
	dropped("after a flush")

	if st.credKeyOf([]byte(id), []byte(secret)) == st.guardKey(id) {
		t.Error("a credential has the guard key of its Access ID")
	}
}
