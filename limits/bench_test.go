package limits

import (
	"context"
	"testing"

	"github.com/accessgate/accessgate/internal/redistest"
)

// BenchmarkAdmit measures one admitted request under each kind of limit,
// none of them reached, on one instance, and reports the Redis commands
// each request costs on average (redis-cmds/op: the script calls the
// server counted, so leases, releases and renewals are all in; the
// limiter sends nothing else).
func BenchmarkAdmit(b *testing.B) {
	srv := redistest.Start(b)
	conc := 1_000_000
	for _, bc := range []struct {
		name string
		s    Subject
	}{
		{"key rate", Subject{KeyID: "subenchrate001", KeyRate: Rate{Requests: MaxRequests, PeriodSeconds: 1}}},
		{"owner and key rate", Subject{KeyID: "subenchrate002", OwnerID: "owner", KeyRate: Rate{Requests: MaxRequests, PeriodSeconds: 1}, OwnerRate: Rate{Requests: MaxRequests, PeriodSeconds: 1}}},
		{"quota", Subject{KeyID: "subenchquota01", Quota: Quota{Requests: MaxQuota, Period: PeriodMonth}}},
		{"concurrency", Subject{KeyID: "subenchconc001", Concurrency: conc}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rdb := newRedis(b, srv.Addr)
			l := New(Options{Redis: rdb, Prefix: testPrefix})
			defer l.Close()
			ctx := context.Background()
			s := bc.s
			calls := func() int64 { return srv.CommandCount(b, "evalsha") + srv.CommandCount(b, "eval") }
			before := calls()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				d := l.Admit(ctx, &s)
				if !d.Allowed {
					b.Fatalf("refused by %v", d.Refused)
				}
				l.Release(ctx, &d)
			}
			b.StopTimer()
			b.ReportMetric(float64(calls()-before)/float64(b.N), "redis-cmds/op")
		})
	}
}
