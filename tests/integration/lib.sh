# lib.sh - shared helpers of the integration tests (sourced). Every test runs the real
# cairn binary against real initiators, in its own temporary directory, and leaves no
# process behind.
#
#   CAIRN_BUILD   build directory holding cairn and the test tools (default build-san)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${CAIRN_BUILD:-$ROOT/build-san}
CAIRN=$BUILD/cairn
ORACLE=$BUILD/tests/tools/iscsi_oracle
T=$(mktemp -d /tmp/cairn-it.XXXXXX)
export CAIRN_RUN_DIR=$T/run
# Commands' default state directory (journals, index tables) inside the test's own
# directory, never the machine's /var/lib/cairn: run as root, every test run would
# otherwise leave its volumes' journals there (gigabytes over many runs).
export CAIRN_STATE_DIR=$T/state-default
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
DAEMON_PID=
PORT=
IQN=iqn.2026-11.org.cairn

# qgrep ARGS...: grep -q that drains its input. grep -q exits at the first match, and under
# pipefail the writer's SIGPIPE (find, a long --help) would fail a check that passed.
qgrep() { command grep "$@" >/dev/null; }

cleanup() {
	local rc=$?
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -9 "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if [ -n "${S3PID:-}" ]; then
		kill "$S3PID" 2>/dev/null || true
		wait "$S3PID" 2>/dev/null || true
	fi
	for m in "$T"/mnt*; do
		[ -d "$m" ] && mountpoint -q "$m" && umount -l "$m"
	done
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "(test files kept in $T)"
	elif [ $rc -eq 0 ]; then
		rm -rf "$T"
	else
		# A failed test keeps its logs and small files for a look, not its images,
		# repositories and buckets: on a shared disk, gigabytes left by each failure
		# fill it and fail every test after them (KEEP_TMP=1 keeps everything).
		find "$T" -xdev -type f -size +1M ! -name '*.log' -delete 2>/dev/null || true
		echo "(test logs kept in $T; files over 1 MiB removed, KEEP_TMP=1 keeps them)"
	fi
}
trap cleanup EXIT

# start_s3rver: a pinned s3rver on a free loopback port with its data under $T, the
# AWS variables set for it and CAIRN_S3_ENDPOINT exported; cleanup stops it.
start_s3rver() {
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
	export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials
	"$ROOT/tests/s3/start-s3rver.sh" "$T/s3data" >"$T/s3.port" 2>"$T/s3.log" &
	S3PID=$!
	for _ in $(seq 600); do [ -s "$T/s3.port" ] && break; sleep 0.1; done
	S3PORT=$(head -1 "$T/s3.port")
	[ -n "$S3PORT" ] || { cat "$T/s3.log"; fail "s3rver did not start"; }
	export CAIRN_S3_ENDPOINT=http://127.0.0.1:$S3PORT
}

log() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }

# expect_fail STATUS_REGEX MESSAGE_REGEX cmd... : the command must fail with a clear message
expect_fail() {
	local msg_re=$1; shift
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "expected failure of: $* (got exit 0, output: $out)"
	echo "$out" | grep -Eq "$msg_re" || fail "message of '$*' does not match /$msg_re/: $out"
	echo "  ok (exit $rc): $out"
}

# start_daemon REPO STATE [extra args]: serve on a free loopback port; sets PORT, DAEMON_PID
start_daemon() {
	local repo=$1 state=$2; shift 2
	: >"$T/serve.log"
	"$CAIRN" serve -r "$repo" --listen 127.0.0.1:0 --state-dir "$state" "$@" >>"$T/serve.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 1 300); do
		if grep -q "cairn: serving" "$T/serve.log"; then
			PORT=$(sed -n 's/.*cairn: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/serve.log" | head -1)
			[ -n "$PORT" ] && return 0
		fi
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$T/serve.log"; fail "cairn serve exited at start"; }
		sleep 0.1
	done
	cat "$T/serve.log"
	fail "cairn serve did not come up"
}

# stop_daemon: SIGTERM and wait for a clean exit (status 0)
stop_daemon() {
	kill -TERM "$DAEMON_PID"
	local rc=0
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	[ $rc -eq 0 ] || { tail -30 "$T/serve.log"; fail "cairn serve exited with $rc on SIGTERM"; }
	if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/serve.log"; then
		grep -A30 "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/serve.log" | head -60
		fail "sanitizer report in the daemon log"
	fi
}

# kill9_daemon: crash it
kill9_daemon() {
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

url() { echo "iscsi://127.0.0.1:$PORT/$IQN:$1/0"; }

# cached_image NAME SIZE DIR...: an ext4 image of SIZE made with mkfs.ext4 -d from copies
# of the given real directory trees, built once per test run (tests/out/cache). The copies
# stay in $(image_src NAME), so comparisons do not depend on the live /usr.
cached_image() {
	local name=$1 size=$2; shift 2
	local cache=$ROOT/tests/out/cache
	mkdir -p "$cache"
	if [ ! -f "$cache/$name.img" ]; then
		local src=$cache/$name.src
		rm -rf "$src"; mkdir -p "$src"
		for d in "$@"; do cp -a "$d" "$src/" 2>/dev/null || true; done
		mkfs.ext4 -q -F -N 100000 -E lazy_itable_init=0,lazy_journal_init=0 -d "$src" "$cache/$name.img.tmp" "$size" >/dev/null || fail "mkfs.ext4 -d could not build the $name image"
		mv "$cache/$name.img.tmp" "$cache/$name.img"
	fi
	echo "$cache/$name.img"
}

image_src() { echo "$ROOT/tests/out/cache/$1.src"; }

# same_tree IMG DIR...: loop-mount IMG read-only and compare it with the trees
same_tree() {
	local img=$1; shift
	local m=$T/mnt.$RANDOM
	mkdir -p "$m"
	mount -o loop,ro "$img" "$m" || fail "cannot loop-mount $img"
	for d in "$@"; do
		diff -r --no-dereference "$d" "$m/$(basename "$d")" >/dev/null || { umount "$m"; fail "tree $d differs in $img"; }
	done
	umount "$m"
}
