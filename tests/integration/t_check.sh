#!/bin/bash
# cairn check on a plain and an encrypted repository (the same function for both): a
# clean repository passes; a byte flipped in a pack trailer, an index segment, a key
# slot or a metadata object is named by check (exit 1); a byte flipped inside a chunk's
# payload is found by check --read-data, and an iSCSI read of it fails (MEDIUM ERROR)
# instead of returning wrong data; a chunk only CDP history references is checked too.
source "$(dirname "$0")/lib.sh"
# check reads the volumes' journals from the state directory (and fetches the segments
# kept in the repository there): a test's own, not the machine's default
export CAIRN_STATE_DIR=$T/cli-state
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)
printf 'check password\n' >"$T/pw"

# flip FILE OFFSET: xor one byte (negative OFFSET counts from the end)
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[off] ^= 0x5a
open(p, 'wb').write(bytes(b))
PY
}

# damaged_is NAME REPO REGEX [check args]: check fails and names the object
damaged_is() {
	local name=$1 repo=$2 re=$3; shift 3
	local rc=0
	"$CAIRN" check -r "$repo" "$@" >"$T/check.out" 2>"$T/check.err" || rc=$?
	[ $rc -ne 0 ] || { cat "$T/check.out"; fail "[$name] check passed a damaged repository"; }
	grep -Eq "^damaged: $re" "$T/check.out" || { cat "$T/check.out" "$T/check.err"; fail "[$name] check did not name $re"; }
	qgrep "damaged object" "$T/check.err" || fail "[$name] no summary sentence on stderr"
	echo "  ok: $(grep "^damaged: " "$T/check.out" | head -1)"
}

# first_file DIR: the first object file under DIR
first_file() { find "$1" -type f ! -name '.*' | sort | head -1; }

run() {
	local name=$1 repo=$2; shift 2
	log "[$name] init $*, write an image through iSCSI"
	"$CAIRN" init -r "$repo" "$@" >/dev/null
	"$CAIRN" volume create disk --size 512M -r "$repo" >/dev/null
	start_daemon "$repo" "$T/state-$name"
	qemu-img convert -n -f raw -O raw "$IMG" "$(url disk)"
	log "[$name] check while the daemon serves"
	"$CAIRN" check -r "$repo" >/dev/null 2>&1 || fail "[$name] check fails while serving"
	stop_daemon

	log "[$name] a clean repository passes, with and without --read-data"
	"$CAIRN" check -r "$repo" | tail -1 | qgrep "no damage found" || fail "[$name] clean check"
	"$CAIRN" check -r "$repo" --read-data >"$T/rd.out" || { cat "$T/rd.out"; fail "[$name] clean check --read-data"; }
	grep -Eq "^[1-9][0-9]* chunk\(s\) read and verified" "$T/rd.out" || fail "[$name] --read-data read no chunk"
	grep -Eq "[1-9][0-9]* chunk reference" "$T/rd.out" || fail "[$name] no chunk reference walked"

	local pack seg meta key
	pack=$(find "$repo/packs" -type f ! -name '.*' -size +1M | sort | head -1)
	seg=$(first_file "$repo/index")
	meta=$(find "$repo/meta/volumes" -type f -name "head.*" | sort | head -1)

	log "[$name] a flipped byte in a pack trailer"
	cp "$pack" "$T/save"; flip "$pack" -40
	damaged_is "$name" "$repo" "packs/.*(trailer|footer)"
	cp "$T/save" "$pack"

	log "[$name] a flipped byte in an index segment"
	cp "$seg" "$T/save"; flip "$seg" 40
	damaged_is "$name" "$repo" "index/[0-9a-f]{32}: index segment is damaged"
	cp "$T/save" "$seg"

	log "[$name] a flipped byte in a metadata object (volume head)"
	cp "$meta" "$T/save"; flip "$meta" 20
	damaged_is "$name" "$repo" "meta/volumes/"
	cp "$T/save" "$meta"

	if [ -d "$repo/keys" ]; then
		log "[$name] a flipped byte in a key slot (the password opens another)"
		"$CAIRN" key add -r "$repo" --new-password-file "$T/pw" >/dev/null
		key=$(first_file "$repo/keys")
		cp "$key" "$T/save"; flip "$key" 90
		damaged_is "$name" "$repo" "keys/[0-9a-f]{32}: key slot"
		cp "$T/save" "$key"
	fi

	log "[$name] a flipped byte inside a chunk's payload: --read-data finds it, reads fail"
	cp "$pack" "$T/save"; flip "$pack" $((32 + 72 + 100))
	"$CAIRN" check -r "$repo" >/dev/null 2>&1 || fail "[$name] structure check should not read payloads"
	damaged_is "$name" "$repo" "packs/.*: chunk [0-9a-f]+\.\.\. at offset 32 does not decode" --read-data
	start_daemon "$repo" "$T/state-$name"
	rc=0
	qemu-img convert -f raw -O raw "$(url disk)" "$T/back-$name.img" 2>"$T/qemu.err" || rc=$?
	[ $rc -ne 0 ] || fail "[$name] reading a damaged chunk returned data"
	qgrep -i "error" "$T/qemu.err" || fail "[$name] no read error reported"
	echo "  ok: the read failed: $(head -1 "$T/qemu.err")"
	stop_daemon
	cp "$T/save" "$pack"
	"$CAIRN" check -r "$repo" --read-data >/dev/null || fail "[$name] restored repository fails check"
}

# history_only NAME REPO [init args]: check walks every root gc marks from, so a chunk
# that only a past point of a volume references (a CDP checkpoint) is checked too: its
# pack deleted, check names the checkpoint and the chunk (exit 1), gc counts it missing,
# and the volume's current state still reads back whole.
history_only() {
	local name=$1 repo=$2; shift 2
	local st=$T/hstate-$name
	log "[$name] a chunk referenced only by CDP history"
	head -c $((16 << 20)) /dev/urandom >"$T/h1.img"
	head -c $((16 << 20)) /dev/urandom >"$T/h2.img"
	"$CAIRN" init -r "$repo" "$@" >/dev/null
	"$CAIRN" volume create hv --size 16M -r "$repo" >/dev/null
	start_daemon "$repo" "$st"
	qemu-img convert -n -f raw -O raw "$T/h1.img" "$(url hv)"
	stop_daemon
	# the packs holding h1's chunks (the largest one is data only)
	local old
	old=$(find "$repo/packs" -type f ! -name '.*' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
	# h2 twice, with a checkpoint between: no head version names h1's map any more
	for _ in 1 2; do
		start_daemon "$repo" "$st"
		qemu-img convert -n -f raw -O raw "$T/h2.img" "$(url hv)"
		stop_daemon
	done
	"$CAIRN" check -r "$repo" --state-dir "$st" | tail -1 | qgrep "no damage found" || fail "[$name] clean check (history)"
	rm "$old" "$repo/index/$(basename "$old")"
	damaged_is "$name" "$repo" "volume hv: history/[0-9a-f]{32}/ckpt\.[0-9a-f.]+: references chunk [0-9a-f]{64}, which no pack holds" --state-dir "$st"
	grep -E "^damaged: " "$T/check.out" | qgrep -v "history/" && fail "[$name] damage reported against a root that does not reference it"
	local miss
	miss=$("$CAIRN" gc --dry-run --json -r "$repo" --state-dir "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["missing_chunks"])')
	[ "$miss" -eq "$(grep -c "^damaged: " "$T/check.out")" ] || fail "[$name] gc counts $miss missing chunks, check reported $(grep -c "^damaged: " "$T/check.out")"
	echo "  ok: gc agrees: $miss missing chunks"
	"$CAIRN" export hv "$T/hv.img" -r "$repo" --state-dir "$st" >/dev/null
	cmp -s "$T/hv.img" "$T/h2.img" || fail "[$name] the current state of hv differs"
}

run plain "$T/plain"
CAIRN_PASSWORD_FILE=$T/pw run encrypted "$T/enc" --encrypt
history_only plain "$T/hplain"
CAIRN_PASSWORD_FILE=$T/pw history_only encrypted "$T/henc" --encrypt
