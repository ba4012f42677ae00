#!/usr/bin/env bash
# Soak test of a gateway fleet (see README.md, "Soak"): builds Caddy and
# cmd/soak, then runs three gateways on a Sentinel-managed Redis (master,
# replica, sentinel, all on free loopback ports) for SOAK_DURATION (default
# 10m, at most 10m) with a Sentinel failover every 2 minutes, a reload of
# each gateway every minute and keys created, disabled, enabled, rotated
# and deleted continually through the management API, while workers send
# valid and revoked credentials through every gateway. Prints a markdown
# report; exits non-zero on any wrong answer or memory growth over 10 %.
#
# Arguments are passed to cmd/soak (e.g. -workers 8). Every process it
# starts is stopped when it ends, on Ctrl-C too. Logs are kept on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

command -v redis-server >/dev/null || {
	echo "soak: redis-server not found: install it with 'apt-get install -y redis-server'" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/accessgate-soak.XXXXXX")
status=0
cleanup() {
	if [ "$status" -eq 0 ]; then
		rm -rf "$work"
	else
		rm -f "$work/caddy" "$work/soak"
		echo "soak: logs, configs and the full report are under $work/run" >&2
	fi
}
trap cleanup EXIT

echo "soak: building caddy and cmd/soak" >&2
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/soak" ./cmd/soak

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- . 2>/dev/null; then
	commit="$commit-dirty"
fi
echo "soak: machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Ctrl-C (or a TERM to this script) reaches the soak, which stops the
# gateways and Redis processes it started (they also die with it).
"$work/soak" -caddy "$work/caddy" -commit "$commit" -dir "$work/run" "$@" &
soak_pid=$!
trap 'status=130; kill -TERM "$soak_pid" 2>/dev/null || true' INT TERM
wait "$soak_pid" || status=$?
while kill -0 "$soak_pid" 2>/dev/null; do
	wait "$soak_pid" || true
done
exit "$status"
