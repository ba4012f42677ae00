package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics are the samples of a Prometheus text exposition, keyed by the
// series as written: the name followed by its labels, if any, such as
// `accessgate_authentications_total{outcome="cache_hit"}`.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format. Comments, blank lines and
// timestamps are skipped; a line it cannot read is an error.
func ParseMetrics(text string) (Metrics, error) {
	out := Metrics{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series; label values may hold spaces, so
		// the series ends after the closing brace when there are labels.
		end := strings.IndexByte(line, ' ')
		if i := strings.IndexByte(line, '{'); i >= 0 && (end < 0 || i < end) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed metrics line %q", line)
			}
			end = j + 1
		}
		if end <= 0 || end >= len(line) {
			return nil, fmt.Errorf("malformed metrics line %q", line)
		}
		fields := strings.Fields(line[end:])
		if len(fields) == 0 {
			return nil, fmt.Errorf("malformed metrics line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed metrics line %q", line)
		}
		out[line[:end]] = v
	}
	return out, nil
}

// Sum returns the sum of the samples of the metric name over all its
// label sets, leaving out the series whose labels contain any of except
// (such as `outcome="cache_hit"`).
func (m Metrics) Sum(name string, except ...string) float64 {
	var sum float64
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		skip := false
		for _, e := range except {
			if strings.Contains(series, e) {
				skip = true
				break
			}
		}
		if !skip {
			sum += v
		}
	}
	return sum
}

// FetchMetrics reads a gateway's admin /metrics at addr (host:port).
func FetchMetrics(ctx context.Context, addr string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	return ParseMetrics(string(b))
}
