#!/bin/bash
# The spine's flow on S3 (the pinned s3rver on loopback), plain and encrypted, and on a
# local encrypted repository: the same test function for every backend. init (creating
# the bucket), volume create, serve, qemu-img convert in and compare, kill -9, restart,
# compare; the writer lease keeps a second writer out; the local cache serves reads.
source "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed (s3rver needs it)"
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)
printf 'an s3 password\n' >"$T/pw"
start_s3rver

# flow NAME REPO [init args...]: the spine's integration flow on one repository.
flow() {
	local name=$1 repo=$2; shift 2
	local state=$T/state-$name
	log "[$name] init $* and volume create"
	"$CAIRN" init -r "$repo" "$@" >/dev/null || fail "[$name] init"
	expect_fail "already exists" "$CAIRN" init -r "$repo" "$@"
	"$CAIRN" volume create disk --size 1G -r "$repo" >/dev/null || fail "[$name] volume create"
	start_daemon "$repo" "$state"

	log "[$name] a second writer is kept out while the daemon serves"
	expect_fail "in use by another cairn process" "$CAIRN" serve -r "$repo" --listen 127.0.0.1:0 --state-dir "$T/other-$name"

	log "[$name] qemu-img convert in, compare"
	qemu-img convert -n -f raw -O raw "$IMG" "$(url disk)"
	qemu-img compare -f raw -F raw "$IMG" "$(url disk)" || fail "[$name] image differs after writing"
	"$CAIRN" volume list -r "$repo" | qgrep disk || fail "[$name] volume list through the daemon"

	log "[$name] kill -9, restart, compare"
	kill9_daemon
	start_daemon "$repo" "$state"
	qemu-img compare -f raw -F raw "$IMG" "$(url disk)" || fail "[$name] image differs after kill -9"
	stop_daemon
	if [ "${repo#s3://}" != "$repo" ]; then
		[ -n "$(find "$state/cache/packs" -type f | head -1)" ] || fail "[$name] no pack in the local S3 cache"
		[ -n "$(find "$state/cache/index" -type f | head -1)" ] || fail "[$name] no index segment in the local S3 cache"
	fi

	log "[$name] clean restart with an empty state dir: everything comes from the repository"
	rm -rf "$state"
	start_daemon "$repo" "$state"
	qemu-img compare -f raw -F raw "$IMG" "$(url disk)" || fail "[$name] image differs from a fresh state"
	stop_daemon
	"$CAIRN" check -r "$repo" >"$T/check-$name.log" 2>&1 || { cat "$T/check-$name.log"; fail "[$name] check after the flow"; }
}

flow s3-plain "s3://cairn-test/plain"
[ -n "$(find "$T/s3data" -path "*/packs/*" -print -quit)" ] || { find "$T/s3data" | head -20; fail "no pack stored in s3rver"; }
CAIRN_PASSWORD_FILE=$T/pw flow s3-encrypted "s3://cairn-test2/enc/repo" --encrypt
CAIRN_PASSWORD_FILE=$T/pw flow local-encrypted "$T/local-enc" --encrypt

log "more repositories in the same bucket, under other prefixes (one a prefix of another's)"
"$CAIRN" init -r "s3://cairn-test/pl" >/dev/null || fail "init of a second repository in an existing bucket"
"$CAIRN" init -r "s3://cairn-test/other/repo" >/dev/null || fail "init of a third repository in an existing bucket"
"$CAIRN" volume list -r "s3://cairn-test/pl" --json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []' ||
	fail "the new repository s3://cairn-test/pl is not empty"
"$CAIRN" volume list -r "s3://cairn-test/plain" --json | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) > 0' ||
	fail "the first repository lost its volumes"
expect_fail "already exists at s3://cairn-test/pl" "$CAIRN" init -r "s3://cairn-test/pl"

log "S3 errors are clear"
expect_fail "wrong password" "$CAIRN" volume list -r "s3://cairn-test2/enc/repo" --password-file "$T/s3.port"
expect_fail "no cairn repository at s3://cairn-test/nothing-here" "$CAIRN" volume list -r "s3://cairn-test/nothing-here"
expect_fail "S3 refused access" env AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= "$CAIRN" volume list -r "s3://cairn-test/plain"
