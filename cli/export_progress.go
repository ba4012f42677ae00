package cli

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressEvery is the least time between two redraws of a progress bar.
const progressEvery = 100 * time.Millisecond

// progress draws a one-line progress bar on a terminal: records done of
// the total, the share done and the rate. On anything else (a file, a
// pipe, a test's buffer) it draws nothing, so that logs hold only the
// summary a verb prints at the end.
type progress struct {
	w     io.Writer // nil: not a terminal
	label string
	start time.Time
	last  time.Time
	drawn bool
	// done and total are the last counts given, drawn at the end.
	n, total int
}

// newProgress returns a progress bar on w, drawn only when w is a
// terminal.
func newProgress(w io.Writer, label string) *progress {
	p := &progress{label: label, start: time.Now()}
	if isTerminal(w) {
		p.w = w
	}
	return p
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update redraws the bar with done records of total (0: unknown), at
// most every progressEvery.
func (p *progress) update(done, total int) {
	if p.w == nil {
		return
	}
	p.n, p.total = done, total
	now := time.Now()
	if p.drawn && now.Sub(p.last) < progressEvery {
		return
	}
	p.draw(now)
}

func (p *progress) draw(now time.Time) {
	done, total := p.n, p.total
	p.last, p.drawn = now, true
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-3)
	line := fmt.Sprintf("%s: %d records", p.label, done)
	if total > 0 {
		const width = 30
		filled := min(width, done*width/total)
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < filled {
				bar[i] = '='
			}
		}
		line = fmt.Sprintf("%s: [%s] %d / %d records (%d%%)", p.label, bar, done, total, min(100, done*100/total))
	}
	fmt.Fprintf(p.w, "\r%s, %.0f/s\033[K", line, rate)
}

// done draws the last counts and ends the bar's line, if one was drawn.
func (p *progress) done() {
	if p.w != nil && p.drawn {
		p.draw(time.Now())
		fmt.Fprintln(p.w)
	}
}
