package soak

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Created at 0..100 ms, disabled at 10,000..10,200 ms, enabled again
	// at 20,000..20,050 ms, deleted at 30,000..30,100 ms.
	history := []Change{
		{What: "create", Start: at(0), End: at(100), After: Valid},
		{What: "disable", Start: at(10000), End: at(10200), After: Invalid},
		{What: "enable", Start: at(20000), End: at(20050), After: Valid},
		{What: "delete", Start: at(30000), End: at(30100), After: Invalid},
	}
	// A rotated-out key: rotated at 0..100 ms with a 5 s grace, so it is
	// certainly valid until 5,000 ms and certainly revoked from 5,100 ms.
	rotated := []Change{
		{What: "create", Start: at(-60000), End: at(-59900), After: Valid},
		{What: "rotate-out", Start: at(5000), End: at(5100), After: Invalid},
	}
	unknown := []Change{
		{What: "create", Start: at(0), End: at(100), After: Valid},
		{What: "disable (failed)", Start: at(10000), End: at(10500), After: Unknown},
	}
	tests := []struct {
		name       string
		changes    []Change
		send, recv int
		status     int
		want       Verdict
	}{
		{"valid key accepted", history, 5000, 5010, 200, Right},
		{"valid key refused", history, 5000, 5010, 401, WrongRejected},
		{"valid key refused 403", history, 5000, 5010, 403, WrongRejected},
		{"sent exactly 1 s after creation", history, 1100, 1110, 401, NotJudged},
		{"sent 1 ms more than 1 s after creation", history, 1101, 1110, 401, WrongRejected},
		{"answered exactly 1 s before disable", history, 8990, 9000, 401, NotJudged},
		{"answered more than 1 s before disable", history, 8990, 8999, 401, WrongRejected},
		{"during the disable", history, 10100, 10110, 200, NotJudged},
		{"sent exactly 1 s after the disable completed", history, 11200, 11210, 200, NotJudged},
		{"sent more than 1 s after the disable completed", history, 11201, 11210, 200, WrongAccepted},
		{"disabled key refused", history, 15000, 15010, 401, Right},
		{"disabled key accepted", history, 15000, 15010, 200, WrongAccepted},
		{"answer arrives within 1 s of enable", history, 18000, 19000, 200, NotJudged},
		{"long request spanning enable", history, 15000, 25000, 401, NotJudged},
		{"re-enabled key accepted", history, 25000, 25010, 200, Right},
		{"re-enabled key refused", history, 25000, 25010, 401, WrongRejected},
		{"deleted key accepted", history, 40000, 40010, 200, WrongAccepted},
		{"deleted key refused", history, 40000, 40010, 401, Right},
		{"before creation", history, -5000, -4990, 200, WrongAccepted},
		{"in grace, accepted", rotated, 3000, 3010, 200, Right},
		{"in grace, refused", rotated, 3000, 3010, 401, WrongRejected},
		{"answered within 1 s of grace end", rotated, 3990, 4000, 401, NotJudged},
		{"after grace, accepted", rotated, 6200, 6210, 200, WrongAccepted},
		{"after grace, within 1 s", rotated, 6000, 6010, 200, NotJudged},
		{"5xx is availability", history, 5000, 5010, 503, Unavailable},
		{"no answer is availability", history, 40000, 40010, 0, Unavailable},
		{"429 is not judged", history, 5000, 5010, 429, OtherStatus},
		{"after an unknown outcome", unknown, 20000, 20010, 200, NotJudged},
		{"before an unknown outcome", unknown, 5000, 5010, 401, WrongRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Judge(tt.changes, Request{Send: at(tt.send), Recv: at(tt.recv), Status: tt.status})
			if got != tt.want {
				t.Errorf("Judge(send %d ms, recv %d ms, %d) = %v, want %v", tt.send, tt.recv, tt.status, got, tt.want)
			}
		})
	}
}

func TestBracket(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	changes := []Change{
		{What: "create", Start: t0, End: t0.Add(time.Second), After: Valid},
		{What: "disable", Start: t0.Add(10 * time.Second), End: t0.Add(11 * time.Second), After: Invalid},
	}
	before, after := Bracket(changes, t0.Add(5*time.Second))
	if before == nil || before.What != "create" || after == nil || after.What != "disable" {
		t.Fatalf("Bracket(5s) = %+v, %+v; want create, disable", before, after)
	}
	before, after = Bracket(changes, t0.Add(20*time.Second))
	if before == nil || before.What != "disable" || after != nil {
		t.Fatalf("Bracket(20s) = %+v, %+v; want disable, nil", before, after)
	}
}
