#!/usr/bin/env bash
# End-to-end benchmark of the gateway on loopback. It starts its own
# redis-server, upstream and Caddy on free ports, then loads, interleaved
# round after round, the same upstream behind
#   (a) plain reverse_proxy
#   (a') reverse_proxy behind request_header directives that set the three
#       identity headers access_keys sets (and drop Authorization): the
#       cost of the headers alone
#   (a'') plain reverse_proxy sent by the client the very request (c)
#       forwards upstream (the 3 identity headers, no Authorization):
#       (c) ÷ (a'') is the module alone, (a'') ÷ (a) what forwarding the
#       headers costs Caddy
#   (b) Caddy's basic_auth (bcrypt at Caddy's default cost) + reverse_proxy,
#       as the Caddyfile configures it: with its in-memory hash cache
#   (b') the same without the hash cache (JSON only): bcrypt per request
#   (c) access_keys with cache hits + reverse_proxy
#   (c') the same with `usage off`: (c) ÷ (c') is what usage counting costs
#   (d) access_keys with cache misses (100k keys through a 1,000-entry
#       cache) + reverse_proxy
#   (e) respond alone, (f) access_keys + respond
#   (g), (h), (i) as (c) with keys under a rate limit, a quota and a
#       concurrency limit that are never reached: what enforcing costs
# and prints throughput, p50/p99 latency and Caddy's CPU time and read and
# write system calls per request, each as a ratio to (a) in the
# same round (the order of the variants is shuffled in each round). Every
# variant gets the same requests: the baselines ignore the Authorization
# header, so that the ratios measure the module, not the header's bytes.
# Then it measures Redis memory per stored key with 1M keys.
#
# Environment: ROUNDS (16), PHASE (1s), CONNS (16), MISS_KEYS (100000),
# MEM_KEYS (1000000; 0 skips the Redis memory measurement).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

ROUNDS=${ROUNDS:-16}
PHASE=${PHASE:-1s}
CONNS=${CONNS:-16}
MISS_KEYS=${MISS_KEYS:-100000}
MEM_KEYS=${MEM_KEYS:-1000000}

command -v redis-server >/dev/null || {
	echo "bench: redis-server not found: install it with 'apt-get install -y redis-server'" >&2
	exit 1
}

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

echo "bench: building caddy and loadgen"
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/loadgen" ./cmd/loadgen
lg="$work/loadgen"

read -r P_REDIS P_MEMREDIS P_UP P_ADMIN P_A P_A2 P_B P_B2 P_C P_C2 P_D P_E P_F <<<"$("$lg" ports 13)"

# start_redis PORT DIR: a throwaway redis-server on loopback.
start_redis() {
	mkdir -p "$2"
	redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$2" >"$2/redis.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "bench: redis-server on port $1 did not start" >&2
	exit 1
}

# wait_http URL: until something answers.
wait_http() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/${1##*:}") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "bench: nothing listens on $1" >&2
	exit 1
}

start_redis "$P_REDIS" "$work/redis"
"$lg" upstream -addr "127.0.0.1:$P_UP" &
pids+=($!)
wait_http "127.0.0.1:$P_UP"

echo "bench: hashing the basic_auth password (bcrypt, Caddy's default cost)"
BASIC_PASS=bench-password-0123456789
BASIC_HASH=$("$work/caddy" hash-password --plaintext "$BASIC_PASS")

scopes='scope viewCollectors GET HEAD /api/v1/collectors /api/v1/collectors/*
		scope manageCollectors POST PUT DELETE /api/v1/collectors /api/v1/collectors/*
		scope runLogSearch * /api/v1/search/*'
cat >"$work/Caddyfile" <<EOF
{
	admin 127.0.0.1:$P_ADMIN
	persist_config off
	auto_https off
	access_keys {
		redis redis://127.0.0.1:$P_REDIS/0
		key_prefix agbench
		cache_size 1000
		sweep_interval 1h
	}
}

http://127.0.0.1:$P_A {
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_A2 {
	request_header -Authorization
	request_header X-Access-Id suAAAAAAAAAAAA
	request_header X-Access-Owner bench-user-0001
	request_header X-Access-Scopes "runLogSearch viewCollectors"
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_B {
	basic_auth {
		bench $BASIC_HASH
	}
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_B2 {
	basic_auth bcrypt nohashcache {
		bench $BASIC_HASH
	}
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_C {
	access_keys {
		$scopes
	}
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_C2 {
	access_keys {
		usage off
		$scopes
	}
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_D {
	access_keys {
		$scopes
	}
	reverse_proxy 127.0.0.1:$P_UP
}

http://127.0.0.1:$P_E {
	respond "ok" 200
}

http://127.0.0.1:$P_F {
	access_keys {
		$scopes
	}
	respond "ok" 200
}
EOF

echo "bench: starting caddy"
"$work/caddy" adapt --config "$work/Caddyfile" --adapter caddyfile 2>/dev/null |
	"$lg" nohashcache nohashcache >"$work/caddy.json"
XDG_CONFIG_HOME="$work/xdg" XDG_DATA_HOME="$work/xdg" \
	"$work/caddy" run --config "$work/caddy.json" >"$work/caddy.log" 2>&1 &
caddy_pid=$!
pids+=($caddy_pid)
for p in $P_A $P_A2 $P_B $P_B2 $P_C $P_C2 $P_D $P_E $P_F; do
	wait_http "127.0.0.1:$p"
done

echo "bench: machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$lg" run -redis "redis://127.0.0.1:$P_REDIS/0" -prefix agbench \
	-plain "127.0.0.1:$P_A" -plain-headers "127.0.0.1:$P_A2" -basic "127.0.0.1:$P_B" -basic-nocache "127.0.0.1:$P_B2" -basic-pass "$BASIC_PASS" \
	-hits "127.0.0.1:$P_C" -hits-nousage "127.0.0.1:$P_C2" -misses "127.0.0.1:$P_D" \
	-respond "127.0.0.1:$P_E" -keys-respond "127.0.0.1:$P_F" \
	-limited -rounds "$ROUNDS" -phase "$PHASE" -c "$CONNS" -miss-keys "$MISS_KEYS" -caddy-pid "$caddy_pid" || {
	echo "bench: load run failed; caddy log tail:" >&2
	tail -20 "$work/caddy.log" >&2
	exit 1
}

if [ "$MEM_KEYS" -gt 0 ]; then
	echo
	start_redis "$P_MEMREDIS" "$work/memredis"
	"$lg" redismem -redis "redis://127.0.0.1:$P_MEMREDIS/0" -keys "$MEM_KEYS"
fi
