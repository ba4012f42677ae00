// Package limits enforces usage limits on access keys and their owners:
// rates, requests in flight and quotas, fleet-wide across every gateway
// instance that shares one Redis. It never imports Caddy.
//
// # Rates: GCRA in Redis, spent through leases
//
// Each rate limit is one GCRA bucket in Redis (the generic cell rate
// algorithm, as in redis-cell and in Brandur Leach's throttled): a single
// number, the theoretical arrival time, updated by a Lua script on the
// Redis server's clock, so that every instance shares one clock and one
// exact bucket, whatever their own clocks say. GCRA was chosen over
// fixed or sliding-window counters (Cloudflare's approximation) because
// it is exact for "N per period with bursts of B", needs one value per
// subject, and its state expires by itself.
//
// Asking Redis on every request would put a round trip on the request
// path, so an instance takes tokens from the bucket in leases and spends
// them locally, in the manner of Google's Doorman capacity leases and of
// the distributed token buckets of CockroachDB's tenant limiter, rather
// than deciding alone and reconciling later as Gubernator's GLOBAL
// behaviour and Envoy's local-then-global limits do (those admit more
// than the limit for the length of a sync interval times the number of
// instances, which a quota cannot allow). A lease starts at one token,
// doubles while leases are used up in under half a second and halves when one
// lasts more than a second; it never exceeds a tenth of a second of the
// rate or an eighth of the burst, and unspent tokens lapse after a
// second. The fleet therefore never admits more than the bucket allows;
// it may admit less by at most one lease per instance. A bucket found
// empty is not asked again before its next token is due.
//
// # Quotas: counters per UTC period, leased the same way
//
// A quota is a counter per subject and UTC day or month, incremented by
// a script that never lets it pass the quota. Leases are at most a
// sixteenth of what is left, so the last requests of a quota go one at a
// time to whichever instance needs them, and requests leased but unused
// for two seconds, or when the instance stops, go back to the counter:
// the quota is never exceeded and all of it can be used.
//
// # Concurrency: slots counted per instance, leased for liveness
//
// A concurrency limit keeps, per subject, a hash of requests in flight by
// instance and a sorted set of instance leases. Taking a slot (one script
// call) first drops the counts of instances whose lease ran out, which is
// how the slots of an instance that died come free; a living instance
// renews its leases every five seconds while it holds slots. Giving the
// slot back is one more call. Unlike rates and quotas this costs two
// Redis calls per request: a slot cannot be leased ahead without letting
// idle instances starve busy ones.
//
// # Redis unreachable
//
// When a call fails, the instance decides alone for a second before
// trying Redis again: rates from a local GCRA bucket with the full rate,
// quotas up to what was left when Redis last answered (the requests are
// added to the counter once it answers again), concurrency up to the
// limit on this instance. It logs once when that starts and once when
// limits are fleet-wide again.
package limits
