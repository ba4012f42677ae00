package soak

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// EchoIDHeader is the response header in which the upstream echoes the
// X-Access-Id it received.
const EchoIDHeader = "X-Soak-Access-Id"

// TrafficPath is the path the traffic requests; the gateways' Caddyfile
// maps it to the scope the keys have.
const TrafficPath = "/api/v1/collectors"

// requestTimeout bounds one request of the traffic.
const requestTimeout = 10 * time.Second

// Result is one request of the traffic.
type Result struct {
	// Cred is the credential's index in the Book.
	Cred int
	// Gateway is the gateway's index.
	Gateway int
	// Request is what the client saw.
	Request Request
	// WrongID: a 200 whose upstream saw another Access ID than the one
	// sent.
	WrongID bool
}

// Upstream answers 200 and echoes the identity headers it received, the
// Access ID also in EchoIDHeader.
func Upstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(EchoIDHeader, r.Header.Get("X-Access-Id"))
		w.Header().Set("X-Soak-Access-Owner", r.Header.Get("X-Access-Owner"))
		w.Header().Set("X-Soak-Access-Scopes", r.Header.Get("X-Access-Scopes"))
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
}

// Traffic sends requests with credentials picked from book to gateways
// picked at random (bases are their URLs), pausing between requests,
// until ctx ends, and returns what it saw.
func Traffic(ctx context.Context, book *Book, bases []string, pause time.Duration, seed uint64) []Result {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	clients := make([]*http.Client, len(bases))
	for i := range bases {
		clients[i] = &http.Client{Timeout: requestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		defer clients[i].CloseIdleConnections()
	}
	var out []Result
	for ctx.Err() == nil {
		ci, id, key, ok := book.Pick(rng)
		if ok {
			g := rng.IntN(len(bases))
			out = append(out, send(clients[g], bases[g], g, ci, id, key))
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return out
}

// send makes one request and records it.
func send(client *http.Client, base string, g, ci int, id, key string) Result {
	res := Result{Cred: ci, Gateway: g}
	req, err := http.NewRequest(http.MethodGet, base+TrafficPath, nil)
	if err != nil {
		panic(err)
	}
	req.SetBasicAuth(id, key)
	res.Request.Send = time.Now()
	resp, err := client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	res.Request.Recv = time.Now()
	if err != nil {
		return res
	}
	res.Request.Status = resp.StatusCode
	res.WrongID = resp.StatusCode == http.StatusOK && resp.Header.Get(EchoIDHeader) != id
	return res
}
