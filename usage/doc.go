// Package usage counts how each access key is used, per minute: requests,
// and their outcomes (allowed, unauthorized, forbidden, rate-limited, and
// the status class of allowed requests). Counts are aggregated in memory
// on the request path (Recorder), written to Redis in batches (Store.Write)
// and kept at three resolutions: minute buckets for 2 hours, hour buckets
// for 14 days, day buckets for 400 days. It never imports Caddy.
package usage
