package loadgen

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

func TestResultsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results")
	if r, err := ReadResults(path); err != nil || len(r) != 0 {
		t.Fatalf("a missing file: %v, %v; want no results", r, err)
	}
	if err := AppendResults(path, Results{"b": 2, "a": 1.25}); err != nil {
		t.Fatal(err)
	}
	if err := AppendResults(path, Results{"b": 3}); err != nil {
		t.Fatal(err)
	}
	r, err := ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Results{"a": 1.25, "b": 3}); !maps.Equal(r, want) {
		t.Errorf("got %v, want %v (the later line wins)", r, want)
	}
	for _, bad := range []string{"a\n", "a 1 2\n", "a x\n"} {
		if _, err := ParseResults(bad); err == nil {
			t.Errorf("ParseResults(%q): no error", bad)
		}
	}
}

func TestSweepCost(t *testing.T) {
	full := Results{
		"sweep.small.g1.cmds": 10_000, "sweep.small.g1.sweeps": 4, "sweep.small.g1.seconds": 10,
		"idle.small.g1.rate": 2,
	}
	tests := []struct {
		name   string
		r      Results
		want   float64
		wantOK bool
	}{
		{"idle rate subtracted", full, (10_000 - 2*10) / 4.0, true},
		{"no idle baseline", without(full, "idle.small.g1.rate"), 0, false},
		{"no sweeps", with(full, "sweep.small.g1.sweeps", 0), 0, false},
		{"baseline above the count", with(full, "idle.small.g1.rate", 5000), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.r.SweepCost("small", "g1")
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func with(r Results, name string, v float64) Results {
	out := maps.Clone(r)
	out[name] = v
	return out
}

func without(r Results, name string) Results {
	out := maps.Clone(r)
	delete(out, name)
	return out
}

func TestScaleTable(t *testing.T) {
	r := Results{
		"keys.small": 10_000, "keys.large": 1_000_000,
		"mem.small.bytes_per_key": 1000, "mem.large.bytes_per_key": 950,
		"list.small.first_ms": 2, "list.large.first_ms": 2.5,
		"list.small.deep_ms": 2, "list.large.deep_ms": 4,
		"sweep.small.g1.cmds": 100, "sweep.small.g1.sweeps": 10, "sweep.small.g1.seconds": 10, "idle.small.g1.rate": 0,
		"sweep.large.g1.cmds": 120, "sweep.large.g1.sweeps": 10, "sweep.large.g1.seconds": 10, "idle.large.g1.rate": 0,
		"sub.creds": 200, "sub.reverified": 1,
		"restart.creds": 199, "restart.reverified": 199,
		"miss.hit_cpu_us": 80, "miss.miss_cpu_us": 100, "miss.ratio": 1.25,
	}
	table := ScaleTable(r)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2+8 {
		t.Fatalf("%d lines, want a header, a rule and 8 rows:\n%s", len(lines), table)
	}
	want := []struct{ row, cells string }{
		{"Redis memory", "| 1,000 | 950 | 0.95 | report |"},
		{"first page", "| 2.00 | 2.50 | 1.25 ✓ | ≤ 1.5 |"},
		{"deep in the list", "| 2.00 | 4.00 | 2.00 ✗ | ≤ 1.5 |"},
		{"1 gateway (10,000 → 1,000,000 keys)", "| 10 | 12 | 1.20 ✓ | ≤ 1.5 |"},
		{"(1 → 3 gateways)", "| 12 | n/a | n/a | ≤ 1.2 |"},
		{"subscription killed", "| 200 cached | 1 re-verified | 0.5 % ✓ | ≤ 1 % |"},
		{"Redis restarted", "| 199 cached | 199 re-verified | 100.0 % | 100 % (full flush expected) |"},
		{"cache hit → cache miss", "| 80.0 | 100.0 | 1.25 ✓ | ≤ 1.3 |"},
	}
	for i, w := range want {
		line := lines[2+i]
		if !strings.Contains(line, w.row) || !strings.HasSuffix(line, w.cells) {
			t.Errorf("row %d = %q, want it to name %q and end %q", i, line, w.row, w.cells)
		}
	}
}

func TestScaleNotes(t *testing.T) {
	tests := []struct {
		name string
		r    Results
		want []string
	}{
		{"fits", Results{"mem.large.bytes_per_key": 1000, "machine.mem_total": 24 << 30}, []string{"need about 9.3 GiB", ": fits."}},
		{"small stage only", Results{"mem.small.bytes_per_key": 3000, "machine.mem_total": 24 << 30}, []string{"at 3000 B/key", "does not fit"}},
		{"warnings", Results{"sweep.large.g3.estimated": 1, "sub.stale": 1, "restart.served": 5},
			[]string{"sweep.large.g3: the sweep lease was not seen", "still served from the cache", "5 credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes := strings.Join(ScaleNotes(tt.r), "\n")
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("notes %q lack %q", notes, w)
				}
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1_234_567.6: "1,234,568", -1500: "-1,500"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
