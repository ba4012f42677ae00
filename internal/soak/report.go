package soak

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Window is an interval of the soak, such as a failover.
type Window struct {
	Start, End time.Time
}

// contains reports whether t falls in the window.
func (w Window) contains(t time.Time) bool { return !t.Before(w.Start) && !t.After(w.End) }

// Event is something the soak did to the fleet, kept to explain a wrong
// answer.
type Event struct {
	// What names it: "failover 127.0.0.1:1 -> 127.0.0.1:2", "reload gw2".
	What string
	Window
}

// WrongAnswer describes one wrong answer.
type WrongAnswer struct {
	Verdict  Verdict
	Gateway  string
	AccessID string
	Request  Request
	Lost     bool    // an acknowledged change of the key was found lost
	Before   *Change // the last change complete before the request
	After    *Change // the next change after it
}

// GatewayMemory is a gateway's memory after warm-up and at the end.
type GatewayMemory struct {
	Name       string
	Start, End Memory
}

// Summary is the outcome of a soak.
type Summary struct {
	Commit   string
	Duration time.Duration
	Gateways int
	Requests int
	Verdicts map[Verdict]int
	WrongID  int // 200s whose upstream saw another Access ID
	// WrongInFailover counts the wrong answers to requests sent within a
	// failover window.
	WrongInFailover int
	// WrongOnLost counts the wrong answers for credentials with an
	// acknowledged change found lost (Book.MarkLost).
	WrongOnLost int
	// Unavailable answers (5xx or none) inside a failover window, and
	// outside any.
	FailoverUnavailable, OtherUnavailable int
	OtherStatuses                         map[int]int
	Failovers, FailoverErrors             int
	Reloads, ReloadErrors                 int
	Changes                               map[string]int
	ChangeErrors                          int
	// Mismatches are keys whose stored state differed from what the soak
	// had been told, checked after each failover.
	Mismatches []string
	Memory     []GatewayMemory
	Wrong      []WrongAnswer
	Events     []Event
}

// Evaluate judges every result against the history in book and fills
// the request counts of s. Unavailable answers sent within a failover
// window count as FailoverUnavailable.
func (s *Summary) Evaluate(book *Book, gateways []string, results []Result, failovers []Window) {
	s.Verdicts = map[Verdict]int{}
	s.OtherStatuses = map[int]int{}
	histories := make([][]Change, book.Len())
	for i := range histories {
		histories[i] = book.Changes(i)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Request.Send.Before(results[j].Request.Send) })
	for _, r := range results {
		s.Requests++
		if r.WrongID {
			s.WrongID++
		}
		v := Judge(histories[r.Cred], r.Request)
		s.Verdicts[v]++
		inFailover := false
		for _, w := range failovers {
			inFailover = inFailover || w.contains(r.Request.Send)
		}
		if v.Wrong() && inFailover {
			s.WrongInFailover++
		}
		if v.Wrong() && book.Lost(r.Cred) {
			s.WrongOnLost++
		}
		switch v {
		case Unavailable:
			if inFailover {
				s.FailoverUnavailable++
			} else {
				s.OtherUnavailable++
			}
		case OtherStatus:
			s.OtherStatuses[r.Request.Status]++
		}
		if v.Wrong() {
			before, after := Bracket(histories[r.Cred], r.Request.Send)
			s.Wrong = append(s.Wrong, WrongAnswer{Verdict: v, Gateway: gateways[r.Gateway], AccessID: book.ID(r.Cred),
				Request: r.Request, Lost: book.Lost(r.Cred), Before: before, After: after})
		}
	}
}

// Failed reports whether the soak found a wrong answer, a mismatch, or a
// gateway whose memory (its resident set, what the machine gives it) grew
// by more than maxGrowth (0.10 for 10 %). The Go heap is reported beside
// it but not judged: a heap of a few MiB moves by a tenth with the live
// keys of the run (cached credentials and owners of keys created since
// the warm-up), which are bounded by the caches, not leaked.
func (s *Summary) Failed(maxGrowth float64) bool {
	if s.Verdicts[WrongAccepted]+s.Verdicts[WrongRejected]+s.WrongID+len(s.Mismatches) > 0 {
		return true
	}
	for _, m := range s.Memory {
		if ratio(m.End.RSS, m.Start.RSS) > 1+maxGrowth {
			return true
		}
	}
	return false
}

// ratio is end/start, or 0 when start is unknown.
func ratio(end, start int64) float64 {
	if start <= 0 {
		return 0
	}
	return float64(end) / float64(start)
}

// Markdown renders the summary as markdown tables, then the wrong
// answers and mismatches (at most limit of each, all if limit is
// negative) with the events around them.
func (s *Summary) Markdown(start time.Time, limit int) string {
	var b strings.Builder
	row := func(k string, v any) { fmt.Fprintf(&b, "| %s | %v |\n", k, v) }
	fmt.Fprintf(&b, "| soak (commit %s) | |\n|---|---|\n", s.Commit)
	row("duration", s.Duration.Round(time.Second))
	row("gateways", s.Gateways)
	row("requests", s.Requests)
	row("judged (not within 1 s of a change)", s.Verdicts[Right]+s.Verdicts[WrongAccepted]+s.Verdicts[WrongRejected])
	row("wrong: 200 for a revoked credential", s.Verdicts[WrongAccepted])
	row("wrong: 401/403 for a valid credential", s.Verdicts[WrongRejected])
	row("wrong: upstream saw another Access ID", s.WrongID)
	row("wrong answers sent during a failover (its start to 5 s after the old master rejoined)", s.WrongInFailover)
	row("wrong answers for keys with an acknowledged change lost in a failover", s.WrongOnLost)
	row("5xx / no answer during failovers", s.FailoverUnavailable)
	row("5xx / no answer outside failovers", s.OtherUnavailable)
	row("other statuses", formatStatuses(s.OtherStatuses))
	row("failovers done (failed)", fmt.Sprintf("%d (%d)", s.Failovers, s.FailoverErrors))
	row("reloads done (failed)", fmt.Sprintf("%d (%d)", s.Reloads, s.ReloadErrors))
	row("key changes done (failed)", fmt.Sprintf("%d (%d): %s", total(s.Changes), s.ChangeErrors, formatCounts(s.Changes)))
	row("acknowledged changes found lost (stored state checked after each failover)", len(s.Mismatches))
	b.WriteString("\n| gateway | RSS after warm-up | RSS at end | ratio | Go heap after warm-up | Go heap at end | ratio |\n|---|---|---|---|---|---|---|\n")
	for _, m := range s.Memory {
		fmt.Fprintf(&b, "| %s | %s | %s | %.3f | %s | %s | %.3f |\n", m.Name, mib(m.Start.RSS), mib(m.End.RSS), ratio(m.End.RSS, m.Start.RSS),
			mib(m.Start.Heap), mib(m.End.Heap), ratio(m.End.Heap, m.Start.Heap))
	}
	at := func(t time.Time) string { return fmt.Sprintf("%.3fs", t.Sub(start).Seconds()) }
	if len(s.Wrong) > 0 {
		fmt.Fprintf(&b, "\nWrong answers by kind, last change and gateway:\n\n")
		groups := map[string]int{}
		for _, w := range s.Wrong {
			what := "nothing"
			if w.Before != nil {
				what, _, _ = strings.Cut(w.Before.What, " ")
			}
			groups[fmt.Sprintf("%s after %s on %s", w.Verdict, what, w.Gateway)]++
		}
		for _, g := range sortedKeys(groups) {
			fmt.Fprintf(&b, "- %s: %d\n", g, groups[g])
		}
		fmt.Fprintf(&b, "\nWrong answers (%d; times from the start of the soak):\n\n", len(s.Wrong))
		for i, w := range s.Wrong {
			if i == limit {
				fmt.Fprintf(&b, "- ... %d more\n", len(s.Wrong)-limit)
				break
			}
			lost := ""
			if w.Lost {
				lost = " (a change of this key was lost)"
			}
			fmt.Fprintf(&b, "- %s: %s %s%s status %d, sent %s, answered %s", w.Verdict, w.Gateway, w.AccessID, lost, w.Request.Status, at(w.Request.Send), at(w.Request.Recv))
			if w.Before != nil {
				fmt.Fprintf(&b, "; last change %s %s..%s (sent %.3fs after it completed)", w.Before.What, at(w.Before.Start), at(w.Before.End),
					w.Request.Send.Sub(w.Before.End).Seconds())
			}
			if w.After != nil {
				fmt.Fprintf(&b, "; next change %s at %s", w.After.What, at(w.After.Start))
			}
			for _, e := range s.Events {
				if e.Start.Before(w.Request.Send.Add(10*time.Second)) && e.End.After(w.Request.Send.Add(-30*time.Second)) {
					fmt.Fprintf(&b, "; near %s %s..%s", e.What, at(e.Start), at(e.End))
				}
			}
			b.WriteString("\n")
		}
	}
	if len(s.Mismatches) > 0 {
		b.WriteString("\nStored state differing from what the management API acknowledged:\n\n")
		for i, m := range s.Mismatches {
			if i == limit {
				fmt.Fprintf(&b, "- ... %d more\n", len(s.Mismatches)-limit)
				break
			}
			fmt.Fprintf(&b, "- %s\n", m)
		}
	}
	return b.String()
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatCounts(m map[string]int) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func formatStatuses(m map[int]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d×%d", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
