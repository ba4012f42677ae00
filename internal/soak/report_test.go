package soak

import (
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	book := &Book{}
	valid := book.Add("suVALID", "k1", Change{What: "create", Start: at(0), End: at(0.1), After: Valid})
	deleted := book.Add("suDELETED", "k2", Change{What: "create", Start: at(0), End: at(0.1), After: Valid})
	book.Record(deleted, Change{What: "delete", Start: at(10), End: at(10.1), After: Invalid})
	req := func(cred int, send float64, status int) Result {
		return Result{Cred: cred, Request: Request{Send: at(send), Recv: at(send + 0.01), Status: status}}
	}
	results := []Result{
		req(valid, 5, 200),      // right
		req(deleted, 5, 200),    // right
		req(deleted, 10.5, 200), // not judged
		req(deleted, 20, 200),   // wrong, in the failover window
		req(deleted, 40, 200),   // wrong, outside
		req(valid, 21, 503),     // unavailable during the failover
		req(valid, 41, 0),       // unavailable outside
		req(valid, 42, 429),     // other
		{Cred: valid, Request: Request{Send: at(43), Recv: at(43.01), Status: 200}, WrongID: true},
	}
	book.MarkLost(deleted)
	var s Summary
	s.Evaluate(book, []string{"gw1"}, results, []Window{{Start: at(19), End: at(25)}})
	checks := []struct {
		name      string
		got, want int
	}{
		{"requests", s.Requests, len(results)},
		{"right", s.Verdicts[Right], 3},
		{"not judged", s.Verdicts[NotJudged], 1},
		{"accepted revoked", s.Verdicts[WrongAccepted], 2},
		{"wrong in failover", s.WrongInFailover, 1},
		{"wrong for a key with a lost change", s.WrongOnLost, 2},
		{"unavailable in failover", s.FailoverUnavailable, 1},
		{"unavailable outside", s.OtherUnavailable, 1},
		{"429s", s.OtherStatuses[429], 1},
		{"wrong identity", s.WrongID, 1},
		{"wrong answers listed", len(s.Wrong), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if len(s.Wrong) > 0 && (s.Wrong[0].AccessID != "suDELETED" || s.Wrong[0].Before == nil || s.Wrong[0].Before.What != "delete") {
		t.Errorf("first wrong answer = %+v, want suDELETED after its delete", s.Wrong[0])
	}
	if !s.Failed(0.10) {
		t.Error("Failed() = false with wrong answers")
	}
}

func TestFailedOnMemoryGrowth(t *testing.T) {
	mem := func(startRSS, endRSS, startHeap, endHeap int64) Summary {
		return Summary{Memory: []GatewayMemory{{Name: "gw1", Start: Memory{RSS: startRSS, Heap: startHeap}, End: Memory{RSS: endRSS, Heap: endHeap}}}}
	}
	tests := []struct {
		name string
		s    Summary
		want bool
	}{
		{"steady", mem(100, 100, 10, 10), false},
		{"RSS exactly +10 %", mem(100, 110, 10, 10), false},
		{"RSS over +10 %", mem(100, 111, 10, 10), true},
		{"heap over +10 %, RSS steady: reported, not judged", mem(100, 100, 100, 111), false},
		{"shrinking", mem(100, 50, 10, 5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Failed(0.10); got != tt.want {
				t.Errorf("Failed(0.10) = %v, want %v", got, tt.want)
			}
		})
	}
}
