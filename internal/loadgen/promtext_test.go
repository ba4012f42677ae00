package loadgen

import (
	"maps"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Metrics
		wantErr bool
	}{
		{
			name: "exposition",
			text: `# HELP accessgate_cache_misses_total Authentication cache misses.
# TYPE accessgate_cache_misses_total counter
accessgate_cache_misses_total 200
accessgate_authentications_total{outcome="cache_hit"} 1.5e+06
accessgate_authentications_total{outcome="verified"} 12 1700000000000
weird{label="a b}c"} 3

`,
			want: Metrics{
				"accessgate_cache_misses_total":                         200,
				`accessgate_authentications_total{outcome="cache_hit"}`: 1.5e6,
				`accessgate_authentications_total{outcome="verified"}`:  12,
				`weird{label="a b}c"}`:                                  3,
			},
		},
		{name: "no value", text: "accessgate_cache_misses_total\n", wantErr: true},
		{name: "bad value", text: "x_total abc\n", wantErr: true},
		{name: "unclosed labels", text: `x_total{a="b" 1` + "\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetrics(tt.text)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetricsSum(t *testing.T) {
	m := Metrics{
		"a_total":                      1,
		`b_total{outcome="cache_hit"}`: 100,
		`b_total{outcome="verified"}`:  7,
		`b_total{outcome="rejected"}`:  3,
		"b_total_other":                1000,
	}
	tests := []struct {
		name   string
		except []string
		want   float64
	}{
		{"a_total", nil, 1},
		{"b_total", nil, 110},
		{"b_total", []string{`outcome="cache_hit"`}, 10},
		{"missing_total", nil, 0},
	}
	for _, tt := range tests {
		if got := m.Sum(tt.name, tt.except...); got != tt.want {
			t.Errorf("Sum(%q, %q) = %v, want %v", tt.name, tt.except, got, tt.want)
		}
	}
}
