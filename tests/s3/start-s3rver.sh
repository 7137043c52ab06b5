#!/bin/bash
# start-s3rver.sh [DATA_DIR [S3RVER_OPTION...]] - run the pinned s3rver (package-lock.json)
# on a free 127.0.0.1 port, for tests.
#
# Contract: prints the port alone on the first line of stdout once the server listens,
# then stays in the foreground until it gets SIGTERM/SIGINT/SIGHUP or its parent process
# exits; the server is stopped with it. Data goes to DATA_DIR, or to a temporary
# directory that is removed on exit. Extra options go to s3rver (e.g.
# --configure-bucket NAME). s3rver accepts only the access key S3RVER (any secret) and
# does not verify SigV4 signatures or If-None-Match.
# When tests/s3/node_modules lacks s3rver, installs it with `npm ci` (under a lock, so
# parallel tests install once). Fails with a message when node or npm is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
parent=$PPID
die() { echo "start-s3rver: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed; install Debian's nodejs and npm"
if [ ! -f "$here/node_modules/s3rver/bin/s3rver.js" ]; then
	command -v npm >/dev/null || die "npm is not installed; install Debian's npm"
	command -v flock >/dev/null || die "flock is missing (util-linux)"
	(
		flock 9
		if [ ! -f "$here/node_modules/s3rver/bin/s3rver.js" ]; then
			cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2 ||
				die "npm ci failed in $here"
		fi
	) 9>"$here/.install.lock"
	[ -f "$here/node_modules/s3rver/bin/s3rver.js" ] || die "s3rver still missing after npm ci"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-s3rver.XXXXXX")
data=${1:-$tmp/data}
[ $# -gt 0 ] && shift
mkdir -p "$data"

# DES (continuation tokens of s3rver) needs the legacy provider of OpenSSL 3
node --openssl-legacy-provider "$here/node_modules/s3rver/bin/s3rver.js" -d "$data" -a 127.0.0.1 -p 0 --silent "$@" \
	>"$tmp/log" 2>&1 </dev/null &
srv=$!
cleanup() {
	kill "$srv" 2>/dev/null || true
	wait "$srv" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' TERM INT HUP

port=
for _ in $(seq 600); do
	port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$tmp/log" | head -n1)
	[ -n "$port" ] && break
	kill -0 "$srv" 2>/dev/null || { cat "$tmp/log" >&2; die "s3rver exited at start"; }
	sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/log" >&2; die "s3rver did not start listening within 60 s"; }
echo "$port"

while kill -0 "$srv" 2>/dev/null && kill -0 "$parent" 2>/dev/null; do
	sleep 0.5
done
