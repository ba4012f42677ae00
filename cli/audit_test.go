package cli

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/accessgate/accessgate/keystore"
)

func TestCLIAudit(t *testing.T) {
	c, _ := newCLI(t)
	setupOwner(c)
	created := decodeJSON[keystore.AccessKey](t, c.ok("create", "--user", "alice", "--json"))
	c.ok("disable", created.ID)
	rotated := decodeJSON[keystore.AccessKey](t, c.ok("rotate", created.ID, "--json"))

	out := c.ok("audit", "--json", "--since", "1h")
	if strings.Contains(out, created.Key) || strings.Contains(out, rotated.Key) {
		t.Fatal("the audit stream holds a secret")
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		e := decodeJSON[keystore.Event](t, sc.Text())
		if e.Operator.ID != "cli:test" || e.Operator.Interface != keystore.InterfaceCLI {
			t.Errorf("operator = %+v", e.Operator)
		}
		names = append(names, e.EventName)
	}
	want := []string{keystore.EventRoleCreated, keystore.EventRoleCreated, keystore.EventUserCreated, // setupOwner
		keystore.EventKeyCreated, keystore.EventKeyDeactivated, keystore.EventKeyRotated}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("events = %v, want %v", names, want)
	}

	out = c.ok("audit", "--event", keystore.EventKeyCreated)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], keystore.EventKeyCreated) || !strings.Contains(lines[0], "cli:test (CLI)") || !strings.Contains(lines[0], created.ID) {
		t.Errorf("audit --event printed %q", out)
	}
	if out := c.ok("audit", "--since", "2000-01-01T00:00:00Z", "--limit", "1"); strings.Count(out, "\n") != 1 {
		t.Errorf("audit --limit 1 printed %q", out)
	}
	c.fail([]string{"audit", "--event", "KeyMade"}, `unknown event name "KeyMade"`)
	c.fail([]string{"audit", "--since", "yesterday"}, `--since "yesterday"`)
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: ""},
		{in: "90s", want: now.Add(-90 * time.Second)},
		{in: "1h", want: now.Add(-time.Hour)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "1.5d", want: now.Add(-36 * time.Hour)},
		{in: "1d12h", want: now.Add(-36 * time.Hour)},
		{in: "2000-01-01T00:00:00Z", want: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "-1h", wantErr: "must not be negative"},
		{in: "-1d", wantErr: "must not be negative"},
		{in: "d", wantErr: "want a duration"},
		{in: "yesterday", wantErr: "want a duration"},
		{in: strings.Repeat("1", 1025) + "s", wantErr: "want a duration"},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in, now)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("parseSince(%.20q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("parseSince(%q): %v", tc.in, err)
		case tc.wantErr == "" && !got.Equal(tc.want):
			t.Errorf("parseSince(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
