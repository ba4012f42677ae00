// Package soak runs a fleet of gateways on a Sentinel-managed Redis under
// churn (failovers, reloads, key changes) and judges every answer against
// the history of the credential it carried. It is the library of the
// cmd/soak program: processes, the management API client, the judge and
// the report.
package soak

import (
	"net/http"
	"time"
)

// Margin is how close to a change a request may be and still be judged:
// a request whose send-to-receive interval comes within Margin of a
// change's start-to-completion interval is not judged.
const Margin = time.Second

// State is what a credential is expected to do after a change.
type State int

const (
	// Invalid: the gateway must refuse the credential (401 or 403).
	Invalid State = iota
	// Valid: the gateway must accept the credential (200).
	Valid
	// Unknown: the outcome of the change is not known (the management
	// API failed); no request is judged until the next change.
	Unknown
)

// Change is one step in a credential's history: the change was asked for
// at Start and had certainly taken effect at End (the answer of the
// management API, or, for the end of a rotation grace, the rotation's
// start and answer plus the grace).
type Change struct {
	// What names the change (create, disable, enable, rotate-out, delete).
	What string
	// Start is when the change was asked for.
	Start time.Time
	// End is when the change was complete.
	End time.Time
	// After is the state of the credential once the change is complete.
	After State
}

// Request is one request of the traffic as the client saw it.
type Request struct {
	// Send is when the request was sent; Recv when its answer arrived.
	Send, Recv time.Time
	// Status is the answer's status code, or 0 when no answer came.
	Status int
}

// Verdict is the judge's finding about one request.
type Verdict int

const (
	// NotJudged: the request came too close to a change, or the state it
	// met is unknown.
	NotJudged Verdict = iota
	// Right: the answer is what the credential's state calls for.
	Right
	// WrongAccepted: 200 for a credential revoked more than Margin before
	// the request was sent and not changed until Margin after the answer.
	WrongAccepted
	// WrongRejected: 401 or 403 for a credential valid since more than
	// Margin before the request and still valid Margin after the answer.
	WrongRejected
	// Unavailable: a 5xx or no answer; availability, not correctness.
	Unavailable
	// OtherStatus: any other status (429, 400...), not judged.
	OtherStatus
)

// String names the verdict as the report does.
func (v Verdict) String() string {
	switch v {
	case Right:
		return "right"
	case WrongAccepted:
		return "accepted-revoked"
	case WrongRejected:
		return "rejected-valid"
	case Unavailable:
		return "unavailable"
	case OtherStatus:
		return "other-status"
	default:
		return "not-judged"
	}
}

// Wrong reports whether the verdict is a wrong answer.
func (v Verdict) Wrong() bool { return v == WrongAccepted || v == WrongRejected }

// Judge finds the verdict for r, a request with a credential whose
// history is changes (in order of Start). Before its first change a
// credential does not exist, so it is Invalid.
func Judge(changes []Change, r Request) Verdict {
	switch {
	case r.Status == 0 || r.Status >= 500:
		return Unavailable
	case r.Status != http.StatusOK && r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden:
		return OtherStatus
	}
	state := Invalid
	for _, c := range changes {
		if overlaps(r.Send, r.Recv, c.Start.Add(-Margin), c.End.Add(Margin)) {
			return NotJudged
		}
		if c.End.Before(r.Send) {
			state = c.After
		}
	}
	accepted := r.Status == http.StatusOK
	switch {
	case state == Unknown:
		return NotJudged
	case accepted && state == Invalid:
		return WrongAccepted
	case !accepted && state == Valid:
		return WrongRejected
	}
	return Right
}

// Bracket returns the last change complete before t and the first one
// started after it, for describing a wrong answer; either may be nil.
func Bracket(changes []Change, t time.Time) (before, after *Change) {
	for i := range changes {
		c := &changes[i]
		if c.End.Before(t) && (before == nil || c.End.After(before.End)) {
			before = c
		}
		if c.Start.After(t) && (after == nil || c.Start.Before(after.Start)) {
			after = c
		}
	}
	return before, after
}

// overlaps reports whether the closed intervals [a0, a1] and [b0, b1]
// share an instant.
func overlaps(a0, a1, b0, b1 time.Time) bool {
	return !a1.Before(b0) && !b1.Before(a0)
}
