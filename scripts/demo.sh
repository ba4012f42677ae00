#!/usr/bin/env bash
# Runs the gateway with Caddyfile.example against a local Redis and prints a
# ready-to-use demo key. Installs redis-server (and make) with apt when they
# are missing and starts Redis on 127.0.0.1:6379 when none answers there.
#
# Safe next to real data: everything the demo writes lives under its own key
# prefix (ACCESSGATE_KEY_PREFIX, default accessgate_demo), which it refuses
# to use when it holds data the demo did not write; a rerun replaces the
# previous run's demo keys instead of adding more; the gateway listens on
# 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export ACCESSGATE_KEY_PREFIX="${ACCESSGATE_KEY_PREFIX:-accessgate_demo}"
# The demo's Redis and listen address, whatever the environment says
# (Caddyfile.example reads both from it).
export ACCESSGATE_REDIS=redis://127.0.0.1:6379/0 ACCESSGATE_BIND=127.0.0.1
prefix=$ACCESSGATE_KEY_PREFIX
marker="$prefix:demo-marker"

apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "demo: $* missing; run as root or install it: apt-get install -y $*" >&2
		exit 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v go >/dev/null || { echo "demo: Go 1.26 or newer is required (https://go.dev/doc/install)" >&2; exit 1; }
command -v redis-server >/dev/null || apt_install redis-server
command -v make >/dev/null || apt_install make

rcli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }
if ! rcli ping >/dev/null 2>&1; then
	echo "demo: starting redis-server on 127.0.0.1:6379"
	redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
	for _ in $(seq 50); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# The prefix must be empty or the demo's own from an earlier run.
if [ "$(rcli exists "$marker")" != "1" ] && [ -n "$(rcli --scan --pattern "$prefix:*" | head -n 1)" ]; then
	echo "demo: Redis on 127.0.0.1:6379 already holds keys under the prefix '$prefix' that the demo did not write;" >&2
	echo "demo: refusing to touch them. Choose another prefix: ACCESSGATE_KEY_PREFIX=my_demo bash scripts/demo.sh" >&2
	exit 1
fi
rcli set "$marker" "written by scripts/demo.sh" >/dev/null

echo "demo: building ./caddy"
go build -o caddy ./cmd/caddy

ak() { ./caddy access-keys --config Caddyfile.example "$@"; }
ak role add --replace --id demo-viewer --name "Demo viewer" \
	--capability viewCollectors --capability runLogSearch --capability createAccessKeys >/dev/null
ak user add --id demo --email demo@example.com --role demo-viewer >/dev/null
ak role add --replace --id demo-admin --name "Demo administrator" \
	--capability createAccessKeys --capability manageAccessKeys --capability manageOrgSettings \
	--capability manageUsersAndRoles --capability viewCollectors --capability manageCollectors \
	--capability runLogSearch >/dev/null
ak user add --id admin --email admin@example.com --role demo-admin >/dev/null

# A rerun replaces the keys of the previous run: their secrets were shown
# once and are gone anyway.
for owner in demo admin; do
	for old in $(ak list --user "$owner" | awk 'NR > 1 && $1 ~ /^su/ { print $1 }'); do
		ak delete "$old" >/dev/null
	done
done

field() { printf '%s\n' "$1" | sed -n "s/^$2: *//p"; }
out=$(ak create --user demo --label "demo key" --scope viewCollectors --scope runLogSearch --cors https://app.example.com 2>/dev/null)
id=$(field "$out" "Access ID")
key=$(field "$out" "Access Key")
out=$(ak create --user admin --label "demo admin key" 2>/dev/null)
admin_id=$(field "$out" "Access ID")
admin_key=$(field "$out" "Access Key")

cat <<TXT

Demo data lives under the Redis key prefix '$prefix'.

Demo key (shown once; it is stored only as a hash):
  Access ID:  $id
  Access Key: $key

Try it once the gateway below is up:
  curl -i -u '$id:$key' http://127.0.0.1:8080/api/v1/collectors        # 200, forwarded
  curl -i -u '$id:$key' -X POST http://127.0.0.1:8080/api/v1/collectors # 403, lacks manageCollectors
  curl -i http://127.0.0.1:8080/api/v1/collectors                        # 401
  ACCESSGATE_KEY_PREFIX=$prefix ./caddy access-keys --config Caddyfile.example list

Administrator key, for the management API and the web console
(http://127.0.0.1:8080/console/, reachable from this machine only):
  Access ID:  $admin_id
  Access Key: $admin_key
  curl -u '$admin_id:$admin_key' http://127.0.0.1:8080/api/v1/accessKeys

TXT
exec ./caddy run --config Caddyfile.example --adapter caddyfile
