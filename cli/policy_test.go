package cli

import (
	"strings"
	"testing"

	"github.com/accessgate/accessgate/keystore"
)

func TestCLIPolicy(t *testing.T) {
	c, _ := newCLI(t)
	type pol struct {
		Lifetime *int `json:"accessKeysLifetimeInDays"`
		Unused   *int `json:"unusedAccessKeysDisableAfterInDays"`
	}
	check := func(out string, lifetime, unused int) {
		t.Helper()
		p := decodeJSON[pol](t, out)
		if p.Lifetime == nil || p.Unused == nil || *p.Lifetime != lifetime || *p.Unused != unused {
			t.Errorf("policy printed %s, want %d and %d", out, lifetime, unused)
		}
	}
	check(c.ok("policy", "--json"), keystore.DefaultLifetimeDays, keystore.DefaultUnusedDays)
	check(c.ok("policy", "--json", "--lifetime-days", "90", "--unused-days", "0"), 90, 0)
	check(c.ok("policy", "--json", "--unused-days", "7"), 90, 7)
	if out := c.ok("policy"); !strings.Contains(out, "accessKeysLifetimeInDays:") || !strings.Contains(out, " 90\n") {
		t.Errorf("policy text = %q", out)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--lifetime-days", "30", "--unused-days", "400"}, "--unused-days: 400 is not between 0 and 365"},
		{[]string{"--lifetime-days", "-1", "--unused-days", "3"}, "--lifetime-days: -1 is not between 0 and 365"},
		{[]string{"--lifetime-days", "ten"}, "invalid argument"},
	}
	for _, b := range bad {
		c.fail(append([]string{"policy"}, b.args...), b.want)
	}
	check(c.ok("policy", "--json"), 90, 7)
	events := c.ok("audit", "--event", keystore.EventPolicyUpdated, "--json")
	if n := strings.Count(events, "\n"); n != 3 {
		t.Errorf("audit has %d policy events, want 3 (none from refused changes):\n%s", n, events)
	}
}
