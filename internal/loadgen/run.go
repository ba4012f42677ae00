package loadgen

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one variant of the gateway under load: an address, a path
// and the credentials to present.
type Target struct {
	// Name labels the target in reports.
	Name string
	// Addr is the host:port to connect to.
	Addr string
	// Path is the request path.
	Path string
	// Auth are the Authorization header values to send, in turn; none
	// when empty.
	Auth []string
	// Header are further request header lines ("Name: value") sent with
	// every request.
	Header []string
	// Concurrency is the number of connections, each with one request
	// in flight at a time.
	Concurrency int
	// Rotate makes the workers share one walk through Auth, continued
	// from phase to phase, so that no value repeats before every one was
	// sent. Otherwise each worker cycles through Auth from an offset of
	// its own.
	Rotate bool
	// ServerPID, when set, is the process whose CPU time each phase
	// measures (Linux only).
	ServerPID int

	next  atomic.Int64
	conns []*conn
}

// Result is the measurement of one phase.
type Result struct {
	// Requests counts the requests answered 200.
	Requests int
	// Errors counts failed requests and other statuses; FirstError is the
	// first of them.
	Errors     int
	FirstError error
	// Elapsed runs from the start of the phase until the last request in
	// flight at its end was answered.
	Elapsed time.Duration
	// P50 and P99 are latency percentiles of the successful requests.
	P50, P99 time.Duration
	// ServerCPU is the CPU time Target.ServerPID used in the phase.
	ServerCPU time.Duration
	// ServerSyscalls counts the read and write system calls
	// Target.ServerPID made in the phase (Linux only; 0 when unknown).
	ServerSyscalls int64
}

// CPUPerRequest returns the server's CPU time per successful request.
func (r Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.Requests)
}

// SyscallsPerRequest returns the server's read and write system calls per
// successful request.
func (r Result) SyscallsPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.ServerSyscalls) / float64(r.Requests)
}

// Throughput returns the successful requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Run loads t for d: each of its Concurrency workers sends requests back
// to back on its own keep-alive connection until d has passed, then waits
// for the one in flight. Connections are kept for the next Run.
func (t *Target) Run(d time.Duration) Result {
	n := max(1, t.Concurrency)
	for len(t.conns) < n {
		t.conns = append(t.conns, newConn(t.Addr))
	}
	lats := make([][]time.Duration, n)
	errs := make([]int, n)
	firstErr := make([]error, n)
	var wg sync.WaitGroup
	cpu0, sys0 := ProcessCPU(t.ServerPID), ProcessSyscalls(t.ServerPID)
	start := time.Now()
	deadline := start.Add(d)
	for w := range n {
		wg.Go(func() {
			c := t.conns[w]
			lat := make([]time.Duration, 0, 1<<14)
			i := w * 7919
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				auth := ""
				if len(t.Auth) > 0 {
					if t.Rotate {
						i = int(t.next.Add(1))
					} else {
						i++
					}
					auth = t.Auth[i%len(t.Auth)]
				}
				if err := c.get(t.Path, auth, t.Header); err != nil {
					errs[w]++
					if firstErr[w] == nil {
						firstErr[w] = err
					}
					if _, ok := IsStatus(err); !ok {
						time.Sleep(10 * time.Millisecond) // do not spin on a refused connection
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		})
	}
	wg.Wait()
	r := Result{Elapsed: time.Since(start), ServerCPU: ProcessCPU(t.ServerPID) - cpu0}
	if sys0 > 0 {
		r.ServerSyscalls = ProcessSyscalls(t.ServerPID) - sys0
	}
	var all []time.Duration
	for w := range n {
		all = append(all, lats[w]...)
		r.Errors += errs[w]
		if r.FirstError == nil {
			r.FirstError = firstErr[w]
		}
	}
	r.Requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.P50 = percentile(all, 0.50)
		r.P99 = percentile(all, 0.99)
	}
	return r
}

// Close closes the target's connections.
func (t *Target) Close() {
	for _, c := range t.conns {
		c.close()
	}
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// Median returns the median of xs (the mean of the middle two for an
// even count), or 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
