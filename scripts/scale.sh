#!/usr/bin/env bash
# Scale measurements of the gateway, taken from outside: Redis INFO
# (commandstats, used_memory, CLIENT LIST), the gateways' HTTP answers and
# admin /metrics, and Caddy's CPU time from /proc. It starts its own
# redis-server, upstream and Caddy gateways on free loopback ports, and
# compares a small store (SMALL_KEYS) with a large one (SCALE_KEYS) in the
# same run:
#   1. Redis memory per key: used_memory growth ÷ keys seeded (record and
#      every index; keys seeded as the store writes them, pipelined)
#   2. listing: median time of GET /api/v1/accessKeys?limit=100, first page
#      and a page deep in the list (token), of the large store and of a
#      reference store of SMALL_KEYS keys (its own key_prefix and gateway),
#      the requests interleaved
#   3. sweep with nothing due: Redis commands per sweep (sweep_interval 1s),
#      counted between starts of sweeps (keyspace notifications of the sweep
#      lease) less what the same gateways send with sweep_interval 1h;
#      small vs large with 1 gateway, then 1 vs 3 gateways at the large size
#   4. subscription loss: SUB_CREDS credentials cached, the gateway's pub/sub
#      connection killed (CLIENT KILL TYPE pubsub), one cached key disabled
#      and another renamed meanwhile; once it has resubscribed, every
#      credential presented again: the share re-verified (cache misses on
#      /metrics); the disabled one must be refused. Then Redis restarted
#      without persistence: a full flush is expected.
#   5. cache miss ÷ cache hit, Caddy CPU per request (interleaved rounds)
# Each step prints a line; the end prints one markdown table.
#
# Environment: SCALE_KEYS (1000000; 10000000 is supported and checked
# against free memory first), SMALL_KEYS (10000), SUB_CREDS (200),
# LIST_REQS (200 per page), IDLE_WINDOW (10s), SWEEP_WINDOW (10s) and
# SWEEP_COUNT (10): a sweep count ends after SWEEP_COUNT sweeps or at the
# first sweep start after SWEEP_WINDOW; SWEEP_LEASE (lock:sweep), the
# sweep lease's Redis key after "<prefix>:"; SWEEP_QUIET (250ms): a sweep
# has ended when Redis ran no command for this long; ROUNDS (10), PHASE (1s),
# CONNS (16), MISS_KEYS (100000) for step 5; SCALE_RESULTS: keep the raw
# results file there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

SCALE_KEYS=${SCALE_KEYS:-1000000}
SMALL_KEYS=${SMALL_KEYS:-10000}
SUB_CREDS=${SUB_CREDS:-200}
LIST_REQS=${LIST_REQS:-200}
IDLE_WINDOW=${IDLE_WINDOW:-10s}
SWEEP_WINDOW=${SWEEP_WINDOW:-10s}
SWEEP_COUNT=${SWEEP_COUNT:-10}
SWEEP_LEASE=${SWEEP_LEASE:-lock:sweep}
SWEEP_QUIET=${SWEEP_QUIET:-250ms}
ROUNDS=${ROUNDS:-10}
PHASE=${PHASE:-1s}
CONNS=${CONNS:-16}
MISS_KEYS=${MISS_KEYS:-100000}
PREFIX=agscale
PREFIX_SMALL=agsmall

command -v redis-server >/dev/null || {
	echo "scale: redis-server not found: install it with 'apt-get install -y redis-server'" >&2
	exit 1
}
if [ "$SCALE_KEYS" -le "$SMALL_KEYS" ]; then
	echo "scale: SCALE_KEYS ($SCALE_KEYS) must be larger than SMALL_KEYS ($SMALL_KEYS)" >&2
	exit 1
fi

work=$(mktemp -d)
pids=()
gw_pids=()
cleanup() {
	for pid in "${gw_pids[@]}" "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${gw_pids[@]}" "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${SCALE_RESULTS:-}" ] && [ -f "$work/results" ]; then
		cp "$work/results" "$SCALE_RESULTS"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "scale: building caddy and loadgen"
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/loadgen" ./cmd/loadgen
lg="$work/loadgen"

read -r P_REDIS P_UP A1 A2 A3 S1 S2 S3 <<<"$("$lg" ports 8)"
admins=("$A1" "$A2" "$A3")
sites=("$S1" "$S2" "$S3")
R="redis://127.0.0.1:$P_REDIS/0"
common=(-redis "$R" -prefix "$PREFIX" -state "$work/state.json" -results "$work/results")

# start_redis: the run's redis-server on loopback, without persistence.
start_redis() {
	mkdir -p "$work/redis"
	redis-server --port "$P_REDIS" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/redis" >>"$work/redis/redis.log" 2>&1 &
	redis_pid=$!
	pids+=($redis_pid)
	for _ in $(seq 100); do
		redis-cli -p "$P_REDIS" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "scale: redis-server on port $P_REDIS did not start" >&2
	exit 1
}

# wait_port PORT: until something listens on it.
wait_port() {
	for _ in $(seq 400); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "scale: nothing listens on port $1" >&2
	exit 1
}

# start_gateway I INTERVAL PREFIX: gateway I (its own admin and site
# ports) on the run's Redis with key_prefix PREFIX, serving the management
# API and access_keys in front of the upstream, sweeping every INTERVAL.
start_gateway() {
	mkdir -p "$work/gw$1"
	cat >"$work/gw$1/Caddyfile" <<EOF
{
	admin 127.0.0.1:${admins[$1]}
	persist_config off
	auto_https off
	access_keys {
		redis $R
		key_prefix $3
		cache_size 1000
		sweep_interval $2
		max_failures_per_client -1
		max_failures_per_key -1
	}
}

http://127.0.0.1:${sites[$1]} {
	@management path /api/v1/accessKeys /api/v1/accessKeys/*
	handle @management {
		access_keys_api
	}
	handle {
		access_keys {
			scope viewCollectors GET HEAD /api/v1/collectors /api/v1/collectors/*
			scope runLogSearch * /api/v1/search/*
		}
		reverse_proxy 127.0.0.1:$P_UP
	}
}
EOF
	HOME="$work/gw$1" XDG_CONFIG_HOME="$work/gw$1" XDG_DATA_HOME="$work/gw$1" \
		"$work/caddy" run --config "$work/gw$1/Caddyfile" --adapter caddyfile >"$work/gw$1/caddy.log" 2>&1 &
	gw_pids+=($!)
	wait_port "${sites[$1]}"
	wait_port "${admins[$1]}"
}

# start_gateways N INTERVAL: N gateways on the measured store.
start_gateways() {
	local i
	for ((i = 0; i < $1; i++)); do
		start_gateway "$i" "$2" "$PREFIX"
	done
}

stop_gateways() {
	local pid
	for pid in "${gw_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${gw_pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	gw_pids=()
}

# on_failure: the tail of the gateways' logs.
on_failure() {
	echo "scale: a step failed; gateway log tails:" >&2
	for f in "$work"/gw*/caddy.log; do
		[ -f "$f" ] && tail -5 "$f" >&2
	done
	exit 1
}

# sweep_pair SIZE N: the idle baseline, then the sweep count, of N gateways.
sweep_pair() {
	echo "scale: step: $2 gateway(s), sweep_interval 1h: idle baseline"
	start_gateways "$2" 1h
	sleep 2
	"$lg" scale-idle "${common[@]}" -name "idle.$1.g$2" -window "$IDLE_WINDOW" || on_failure
	stop_gateways
	echo "scale: step: $2 gateway(s), sweep_interval 1s, nothing due: commands per sweep"
	start_gateways "$2" 1s
	"$lg" scale-sweep "${common[@]}" -name "sweep.$1.g$2" -lease "$SWEEP_LEASE" -quiet "$SWEEP_QUIET" -interval 1s -sweeps "$SWEEP_COUNT" -window "$SWEEP_WINDOW" || on_failure
	stop_gateways
}

start_redis
"$lg" upstream -addr "127.0.0.1:$P_UP" &
pids+=($!)
wait_port "$P_UP"
echo "scale: machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(redis-server --version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "scale: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)'); SCALE_KEYS=$SCALE_KEYS SMALL_KEYS=$SMALL_KEYS"

echo "scale: step: seeding $SMALL_KEYS keys"
"$lg" scale-seed "${common[@]}" -label small -keys "$SMALL_KEYS" -sub "$SUB_CREDS" -check-db 15
sweep_pair small 1
echo "scale: step: seeding a reference store of $SMALL_KEYS keys (key_prefix $PREFIX_SMALL) for the listing"
"$lg" scale-seed -redis "$R" -prefix "$PREFIX_SMALL" -state "$work/small.json" -results "$work/small-results" -label small -keys "$SMALL_KEYS" -sub 0

echo "scale: step: seeding up to $SCALE_KEYS keys"
"$lg" scale-seed "${common[@]}" -label large -keys "$SCALE_KEYS"
echo "scale: step: listing at $SMALL_KEYS and $SCALE_KEYS keys, interleaved"
start_gateway 0 1h "$PREFIX"
start_gateway 1 1h "$PREFIX_SMALL"
"$lg" scale-list "${common[@]}" -addr "127.0.0.1:$S1" -small-addr "127.0.0.1:$S2" -small-state "$work/small.json" -n "$LIST_REQS" || on_failure
stop_gateways
sweep_pair large 1
sweep_pair large 3

start_gateways 1 1h
caddy_pid=${gw_pids[0]}
echo "scale: step: subscription loss with $SUB_CREDS cached credentials"
"$lg" scale-sub "${common[@]}" -phase loss -addr "127.0.0.1:$S1" -admin "127.0.0.1:$A1" || on_failure
echo "scale: step: cache miss vs hit, Caddy CPU per request ($ROUNDS rounds of $PHASE)"
"$lg" scale-miss "${common[@]}" -addr "127.0.0.1:$S1" -pid "$caddy_pid" -rounds "$ROUNDS" -phase "$PHASE" -c "$CONNS" -miss-keys "$MISS_KEYS" || on_failure
echo "scale: step: Redis restart without persistence"
"$lg" scale-sub "${common[@]}" -phase before-restart -addr "127.0.0.1:$S1" -admin "127.0.0.1:$A1" || on_failure
redis-cli -p "$P_REDIS" shutdown nosave >/dev/null 2>&1 || true
wait "$redis_pid" 2>/dev/null || true
start_redis
"$lg" scale-sub "${common[@]}" -phase after-restart -addr "127.0.0.1:$S1" -admin "127.0.0.1:$A1" || on_failure
stop_gateways

echo
"$lg" scale-report -results "$work/results"
