package loadgen

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Results are the figures of a scale run by name ("list.small.first_ms"),
// gathered from its steps in a file so that each step can be a process
// of its own and the report comes last.
type Results map[string]float64

// AppendResults adds r to the results file at path, one "name value"
// line each; a later line for a name overrides an earlier one.
func AppendResults(path string, r Results) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	w := bufio.NewWriter(f)
	for _, name := range names {
		fmt.Fprintf(w, "%s %s\n", name, strconv.FormatFloat(r[name], 'g', -1, 64))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadResults reads a results file written by AppendResults. A missing
// file is no results.
func ReadResults(path string) (Results, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return Results{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseResults(string(b))
}

// ParseResults reads the "name value" lines of a results file.
func ParseResults(text string) (Results, error) {
	r := Results{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("results line %d: want \"name value\", got %q", i+1, line)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("results line %d: %v", i+1, err)
		}
		r[f[0]] = v
	}
	return r, nil
}

// get returns the result name and whether it exists.
func (r Results) get(name string) (float64, bool) {
	v, ok := r[name]
	return v, ok
}

// SweepCost returns the Redis commands per sweep of the run labelled
// size ("small", "large") with the gateways gws ("g1", "g3"): the
// commands counted over whole sweeps, less what the same gateways send
// in the same time when they never sweep (the idle rate), per sweep.
func (r Results) SweepCost(size, gws string) (float64, bool) {
	base := "sweep." + size + "." + gws + "."
	cmds, ok1 := r.get(base + "cmds")
	sweeps, ok2 := r.get(base + "sweeps")
	secs, ok3 := r.get(base + "seconds")
	rate, ok4 := r.get("idle." + size + "." + gws + ".rate")
	if !ok1 || !ok2 || !ok3 || !ok4 || sweeps <= 0 {
		return 0, false
	}
	return max(0, cmds-rate*secs) / sweeps, true
}

// scaleRow is one line of the report table.
type scaleRow struct {
	metric       string
	small, large string
	ratio        string
	target       string
}

// target is a bound a ratio should meet.
type target struct {
	max     float64
	percent bool // the ratio is shown as a percentage
	text    string
}

// cell formats a ratio against its target.
func (t target) cell(ratio float64) (string, string) {
	s := strconv.FormatFloat(ratio, 'f', 2, 64)
	if t.percent {
		s = strconv.FormatFloat(ratio*100, 'f', 1, 64) + " %"
	}
	if t.max == 0 {
		return s, t.text
	}
	mark := " ✓"
	if ratio > t.max {
		mark = " ✗"
	}
	return s + mark, t.text
}

// ScaleTable returns the markdown table of a scale run: metric, the small
// and the large figure, their ratio and its target. Figures a run did not
// measure show as "n/a".
func ScaleTable(r Results) string {
	keys := func(size string) string {
		if n, ok := r.get("keys." + size); ok {
			return thousands(n)
		}
		return "?"
	}
	small, large := keys("small"), keys("large")
	num := func(v float64, ok bool, prec int) string {
		if !ok {
			return "n/a"
		}
		if prec == 0 {
			return thousands(v)
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	var rows []scaleRow
	pairV := func(metric string, x float64, okx bool, y float64, oky bool, prec int, t target) {
		row := scaleRow{metric: metric, small: num(x, okx, prec), large: num(y, oky, prec), ratio: "n/a", target: t.text}
		if okx && oky && x > 0 {
			row.ratio, row.target = t.cell(y / x)
		}
		rows = append(rows, row)
	}
	pair := func(metric, a, b string, prec int, t target) {
		x, okx := r.get(a)
		y, oky := r.get(b)
		pairV(metric, x, okx, y, oky, prec, t)
	}

	pair(fmt.Sprintf("Redis memory per key, bytes (used_memory growth ÷ keys; %s → %s keys)", small, large),
		"mem.small.bytes_per_key", "mem.large.bytes_per_key", 0, target{text: "report"})
	pair(fmt.Sprintf("List, first page (limit 100), median ms (%s → %s keys)", small, large),
		"list.small.first_ms", "list.large.first_ms", 2, target{max: 1.5, text: "≤ 1.5"})
	pair(fmt.Sprintf("List, page deep in the list (limit 100), median ms (%s → %s keys)", small, large),
		"list.small.deep_ms", "list.large.deep_ms", 2, target{max: 1.5, text: "≤ 1.5"})
	s1, ok1 := r.SweepCost("small", "g1")
	l1, ok2 := r.SweepCost("large", "g1")
	pairV(fmt.Sprintf("Sweep, nothing due: Redis commands per sweep, 1 gateway (%s → %s keys)", small, large),
		s1, ok1, l1, ok2, 0, target{max: 1.5, text: "≤ 1.5"})
	l3, ok3 := r.SweepCost("large", "g3")
	pairV(fmt.Sprintf("Sweep, nothing due, %s keys: Redis commands per sweep (1 → 3 gateways)", large),
		l1, ok2, l3, ok3, 0, target{max: 1.2, text: "≤ 1.2"})

	reverified := func(metric, prefix string, t target) {
		n, okn := r.get(prefix + ".creds")
		v, okv := r.get(prefix + ".reverified")
		row := scaleRow{metric: metric, small: num(n, okn, 0) + " cached", large: num(v, okv, 0) + " re-verified", ratio: "n/a", target: t.text}
		if okn && okv && n > 0 {
			row.ratio, row.target = t.cell(v / n)
		}
		rows = append(rows, row)
	}
	reverified("Pub/sub subscription killed, 2 key changes meanwhile: cached credentials re-verified",
		"sub", target{max: 0.01, percent: true, text: "≤ 1 %"})
	reverified("Redis restarted (no persistence): cached credentials re-verified",
		"restart", target{percent: true, text: "100 % (full flush expected)"})
	hit, okh := r.get("miss.hit_cpu_us")
	miss, okm := r.get("miss.miss_cpu_us")
	row := scaleRow{metric: "Caddy CPU per request, µs: cache hit → cache miss", small: num(hit, okh, 1), large: num(miss, okm, 1), ratio: "n/a", target: "≤ 1.3"}
	if q, ok := r.get("miss.ratio"); ok {
		row.ratio, row.target = target{max: 1.3, text: "≤ 1.3"}.cell(q)
	}
	rows = append(rows, row)

	var b strings.Builder
	b.WriteString("| metric | small | large | ratio | target |\n|---|---:|---:|---:|---|\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.metric, row.small, row.large, row.ratio, row.target)
	}
	return b.String()
}

// ScaleNotes returns the lines printed under the table: whether ten
// million keys fit in the machine's memory at the measured cost per key,
// and warnings about figures that are estimates.
func ScaleNotes(r Results) []string {
	var notes []string
	per, ok := r.get("mem.large.bytes_per_key")
	if !ok {
		per, ok = r.get("mem.small.bytes_per_key")
	}
	total, okt := r.get("machine.mem_total")
	if ok && okt && total > 0 {
		need := per * 10_000_000
		verdict := "fits"
		if need > 0.8*total {
			verdict = "does not fit (more than 80 % of the machine's memory)"
		}
		notes = append(notes, fmt.Sprintf("10,000,000 keys at %.0f B/key need about %.1f GiB of Redis; the machine has %.1f GiB: %s.",
			per, need/(1<<30), total/(1<<30), verdict))
	}
	for _, name := range []string{"sweep.small.g1", "sweep.large.g1", "sweep.large.g3"} {
		if v, _ := r.get(name + ".estimated"); v == 1 {
			notes = append(notes, "Warning: "+name+": the sweep lease was not seen; sweeps were estimated as window ÷ interval.")
		}
	}
	if v, _ := r.get("sub.stale"); v == 1 {
		notes = append(notes, "Warning: after the subscription loss, a credential disabled meanwhile was still served from the cache.")
	}
	if v, _ := r.get("restart.served"); v > 0 {
		notes = append(notes, fmt.Sprintf("Warning: after the Redis restart, %.0f credentials whose records were lost were still served.", v))
	}
	return notes
}

// thousands formats v rounded to a whole number with comma separators.
func thousands(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v < 0 && s != "0" {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
