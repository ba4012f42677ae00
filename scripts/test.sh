#!/usr/bin/env bash
# Runs every check and test (vet, gofmt, the race-enabled test suite,
# Caddyfile.example adaptation) and prints a summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

# The suite runs real redis-server processes and headless Chromium; as root
# on Debian, install them when missing.
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "test: missing ${need[*]}: install with 'apt-get install -y ${need[*]}'" >&2
		exit 1
	fi
	echo "test: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "test: not gofmt-clean:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

# The full output goes to a file of this run (TEST_LOG names another), so
# that runs side by side never share one.
log=${TEST_LOG:-$(mktemp "${TMPDIR:-/tmp}/accessgate-test.XXXXXX")}
status=0
go test -race -count=1 -timeout 20m -v ${TESTFLAGS:-} ./... >"$log" 2>&1 || status=$?
grep -E '^(ok|FAIL|---|panic:|\?)|^\s+--- FAIL' "$log" | grep -v -- '--- PASS' || true
if [ "$status" -ne 0 ]; then
	echo "---- failures (full output: $log) ----"
	grep -E -- '--- FAIL|^panic:|^\s+[A-Za-z0-9_]+_test\.go:[0-9]+: ' "$log" | grep -v '"level"' | head -300 || true
	grep -E -A40 '^panic:' "$log" | head -80 || true
fi
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
echo "full output: $log"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
