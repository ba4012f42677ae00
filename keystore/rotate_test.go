package keystore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// retireHook watches the commands a Store sends during a rotation and
// acts once the old key's retirement has been committed (the transaction
// that sets its expiry): it may call onRetire, and it may fail, once, the
// next command that touches another key record, as a Redis blip would.
type retireHook struct {
	oldKey   string
	onRetire func()
	failNext bool

	mu      sync.Mutex
	retired bool
	failed  bool
}

// errInjected stands for a connection that broke mid-request.
var errInjected = errors.New("injected: connection reset by peer")

func (h *retireHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *retireHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.shouldFail([]redis.Cmder{cmd}) {
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *retireHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.shouldFail(cmds) {
			return errInjected
		}
		err := next(ctx, cmds)
		if err == nil && h.retires(cmds) {
			h.mu.Lock()
			first := !h.retired
			h.retired = true
			h.mu.Unlock()
			if first && h.onRetire != nil {
				h.onRetire()
			}
		}
		return err
	}
}

// retires reports whether cmds set the expiry of the old record.
func (h *retireHook) retires(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if args := c.Args(); c.Name() == "pexpire" && len(args) > 1 && args[1] == h.oldKey {
			return true
		}
	}
	return false
}

// shouldFail reports whether cmds are the first, after the retirement,
// to touch a key record other than the old one.
func (h *retireHook) shouldFail(cmds []redis.Cmder) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failNext || !h.retired || h.failed {
		return false
	}
	for _, c := range cmds {
		for _, a := range c.Args()[1:] {
			if s, ok := a.(string); ok && strings.Contains(s, ":key:{") && s != h.oldKey {
				h.failed = true
				return true
			}
		}
	}
	return false
}

// assertNoPending fails if any key record is still pending.
func assertNoPending(t *testing.T, f *fixture) {
	t.Helper()
	for name, v := range dumpDB(t, f.rdb) {
		if strings.Contains(name, ":key:{") && strings.Contains(v, `"pending":true`) {
			t.Errorf("pending record left behind: %s", name)
		}
	}
}

// TestRotationCompletesWhenTheCallerGoesAway: once the old key is retired,
// a caller whose context ends (a client that disconnected) still gets a
// complete rotation: the new key is live, listed and works.
func TestRotationCompletesWhenTheCallerGoesAway(t *testing.T) {
	f := newFixture(t)
	k, oldSecret := f.createKey(t, KeySpec{Label: "deploy"})
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	f.rdb.AddHook(&retireHook{oldKey: f.store.keyKey(k.ID), onRetire: cancel})

	nk, secret, err := f.store.RotateKey(ctx, k.ID, testOp)
	if err != nil {
		t.Fatalf("RotateKey with the caller gone after the retirement: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the test hook never cancelled the caller's context")
	}
	if _, err := f.verify(nk.ID, secret); err != nil {
		t.Errorf("the new key does not work: %v", err)
	}
	if _, err := f.verify(k.ID, oldSecret); err != nil {
		t.Errorf("the old key does not work in its grace: %v", err)
	}
	page, err := f.store.ListKeys(f.ctx, 10, "")
	if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != nk.ID {
		t.Errorf("ListKeys = %+v, %v; want only the new key", page.Keys, err)
	}
	if got := f.log.names(); !strings.Contains(strings.Join(got, " "), EventKeyRotated) {
		t.Errorf("events %q lack %s", got, EventKeyRotated)
	}
	assertNoPending(t, f)
}

// TestRotationRetryFinishesTheSuccessor: when the rotation's last step
// fails after the old key was retired, a retry of the same rotation
// completes it, handing out a working secret for the successor, instead
// of answering that the key does not exist.
func TestRotationRetryFinishesTheSuccessor(t *testing.T) {
	f := newFixture(t)
	k, oldSecret := f.createKey(t, KeySpec{Label: "deploy", Scopes: []string{"viewCollectors"}})
	f.rdb.AddHook(&retireHook{oldKey: f.store.keyKey(k.ID), failNext: true})

	if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); !errors.Is(err, errInjected) {
		t.Fatalf("first RotateKey = %v, want the injected failure", err)
	}
	if _, err := f.verify(k.ID, oldSecret); err != nil {
		t.Fatalf("the old key does not work in its grace: %v", err)
	}
	nk, secret, err := f.store.RotateKey(f.ctx, k.ID, testOp)
	if err != nil {
		t.Fatalf("retrying the rotation: %v", err)
	}
	old, err := f.store.rawKey(f.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if nk.ID != old.ReplacedBy || nk.Pending || nk.Label != "deploy" || nk.RotatedFrom != k.ID {
		t.Errorf("retry gave %+v; the old key was replaced by %s", nk, old.ReplacedBy)
	}
	id, err := f.verify(nk.ID, secret)
	if err != nil {
		t.Fatalf("the successor's secret from the retry does not work: %v", err)
	}
	if strings.Join(id.Scopes, " ") != "viewCollectors" {
		t.Errorf("successor scopes %q", id.Scopes)
	}
	if _, err := f.verify(k.ID, oldSecret); err != nil {
		t.Errorf("the old key stopped working in its grace: %v", err)
	}
	page, err := f.store.ListKeys(f.ctx, 10, "")
	if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != nk.ID {
		t.Errorf("ListKeys = %+v, %v; want only the successor", page.Keys, err)
	}
	assertNoPending(t, f)

	// Once the successor is live, rotating the old ID again is a conflict
	// that names the successor: its secret was handed out already.
	_, _, err = f.store.RotateKey(f.ctx, k.ID, testOp)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Code != "accessKey:rotated" || !strings.Contains(ce.Message, nk.ID) {
		t.Errorf("rotating a rotated-out key again = %v, want an accessKey:rotated conflict naming %s", err, nk.ID)
	}
}

// TestRetiredKeyCanBeCutOffDuringGrace: during its rotation grace the old
// Access ID can still be deactivated or deleted; either ends its grace at
// once, is announced to every instance and audited, and leaves the new
// key working. Nothing else can be done to it.
func TestRetiredKeyCanBeCutOffDuringGrace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cut   func(f *fixture, id string) error
		event string
	}{
		{"deactivate", func(f *fixture, id string) error {
			k, err := f.store.UpdateKey(f.ctx, id, KeyUpdate{Disabled: ptr(true)}, testOp)
			if err == nil && (!k.Disabled || k.ID != id) {
				return errors.New("UpdateKey did not return the deactivated old key")
			}
			return err
		}, EventKeyDeactivated},
		{"delete", func(f *fixture, id string) error { return f.store.DeleteKey(f.ctx, id, testOp) }, EventKeyDeleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			k, oldSecret := f.createKey(t, KeySpec{CORSHeaders: []string{"https://a.example.com"}})
			nk, newSecret, err := f.store.RotateKey(f.ctx, k.ID, testOp)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Minute)
			// Only deactivating or deleting: activation, scopes and
			// allowlist changes are refused and change nothing.
			before := dumpDB(t, f.rdb)
			for _, u := range []KeyUpdate{
				{Disabled: ptr(false)},
				{Disabled: ptr(true), Scopes: &[]string{"viewCollectors"}},
				{Disabled: ptr(true), CORSHeaders: &[]string{}},
			} {
				_, err := f.store.UpdateKey(f.ctx, k.ID, u, testOp)
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Code != "accessKey:rotated" {
					t.Errorf("UpdateKey(old, %+v) = %v, want an accessKey:rotated conflict", u, err)
				}
			}
			if after := dumpDB(t, f.rdb); mustJSON(t, after) != mustJSON(t, before) {
				t.Error("a refused change of the old key changed Redis")
			}

			sub := f.rdb.Subscribe(f.ctx, f.store.InvalidationChannel())
			defer sub.Close()
			if _, err := sub.Receive(f.ctx); err != nil {
				t.Fatal(err)
			}
			n := len(f.log.all())
			if err := tc.cut(f, k.ID); err != nil {
				t.Fatalf("%s of the old key in its grace: %v", tc.name, err)
			}
			if _, err := f.verify(k.ID, oldSecret); err == nil {
				t.Errorf("the old key still works after its %s", tc.name)
			}
			if _, err := f.verify(nk.ID, newSecret); err != nil {
				t.Errorf("the new key stopped working: %v", err)
			}
			evs := f.log.all()[n:]
			if len(evs) != 1 || evs[0].EventName != tc.event || evs[0].AccessKey == nil || evs[0].AccessKey.AccessID != k.ID {
				t.Errorf("events %+v, want one %s of %s", evs, tc.event, k.ID)
			}
			ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
			defer cancel()
			for {
				msg, err := sub.ReceiveMessage(ctx)
				if err != nil {
					t.Fatalf("no invalidation of %s published: %v", k.ID, err)
				}
				if all, id, _ := InvalidationTarget(msg.Payload); all || id == k.ID {
					break
				}
			}
			// Its grace is over: the old ID is gone for every change.
			if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp); !errors.Is(err, ErrNotFound) {
				t.Errorf("deactivating the old key again = %v, want not found", err)
			}
			if err := f.store.DeleteKey(f.ctx, k.ID, testOp); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleting the old key again = %v, want not found", err)
			}
		})
	}

	t.Run("after the grace", func(t *testing.T) {
		f := newFixture(t)
		k, _ := f.createKey(t, KeySpec{})
		if _, _, err := f.store.RotateKey(f.ctx, k.ID, testOp); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(5 * time.Minute)
		if _, err := f.store.UpdateKey(f.ctx, k.ID, KeyUpdate{Disabled: ptr(true)}, testOp); !errors.Is(err, ErrNotFound) {
			t.Errorf("deactivating after the grace = %v, want not found", err)
		}
		if err := f.store.DeleteKey(f.ctx, k.ID, testOp); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting after the grace = %v, want not found", err)
		}
	})
}
