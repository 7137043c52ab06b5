#!/bin/bash
# cairn stats: sizes, dedup and compression ratios, per volume and in all, on a plain
# and an encrypted repository, while the daemon serves and after it stopped.
source "$(dirname "$0")/lib.sh"
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)
printf 'stats password\n' >"$T/pw"

jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

run() {
	local name=$1 repo=$2; shift 2
	log "[$name] empty volumes"
	"$CAIRN" init -r "$repo" "$@" >/dev/null
	"$CAIRN" volume create a --size 512M -r "$repo" >/dev/null
	"$CAIRN" volume create b --size 1G -r "$repo" >/dev/null
	"$CAIRN" stats -r "$repo" --json >"$T/s0.json" || fail "[$name] stats on empty volumes"
	[ "$(jget "$T/s0.json" 'd["chunks"]')" = 0 ] || fail "[$name] chunks in an empty repository"
	[ "$(jget "$T/s0.json" 'd["logical_bytes"]')" = 0 ] || fail "[$name] logical bytes of empty volumes"

	log "[$name] the same image in two volumes: dedup about 2x"
	start_daemon "$repo" "$T/state-$name"
	qemu-img convert -n -f raw -O raw "$IMG" "$(url a)"
	qemu-img convert -n -f raw -O raw "$IMG" "$(url b)"
	"$CAIRN" stats -r "$repo" >"$T/live.txt" || fail "[$name] stats while the daemon serves"
	qgrep "^dedup" "$T/live.txt" || fail "[$name] no dedup line"
	stop_daemon

	"$CAIRN" stats -r "$repo" --json >"$T/s.json" || fail "[$name] stats --json"
	cat "$T/s.json"
	[ "$(jget "$T/s.json" 'd["volumes"]')" = 2 ] || fail "[$name] volumes"
	[ "$(jget "$T/s.json" 'd["provisioned_bytes"]')" = $((1536 << 20)) ] || fail "[$name] provisioned"
	[ "$(jget "$T/s.json" 'd["per_volume"][0]["logical_bytes"] == d["per_volume"][1]["logical_bytes"] > 0')" = True ] || fail "[$name] per-volume logical bytes differ"
	[ "$(jget "$T/s.json" 'd["logical_bytes"] == d["per_volume"][0]["logical_bytes"] * 2')" = True ] || fail "[$name] logical bytes are not the sum"
	# two copies of one image: at least 2x, and exactly logical / distinct referenced bytes
	[ "$(jget "$T/s.json" 'd["dedup_ratio"] >= 2 and abs(d["dedup_ratio"] - d["logical_bytes"] / d["referenced_unique_bytes"]) < 1e-6')" = True ] || fail "[$name] dedup ratio"
	[ "$(jget "$T/s.json" 'd["referenced_unique_bytes"] <= d["per_volume"][0]["logical_bytes"] and d["referenced_unique_bytes"] <= d["unique_bytes"]')" = True ] || fail "[$name] referenced unique bytes"
	[ "$(jget "$T/s.json" 'd["compression_ratio"] > 1.3')" = True ] || fail "[$name] compression ratio too low for text"
	[ "$(jget "$T/s.json" 'd["stored_bytes"] < d["unique_bytes"] and d["packs"] >= 1 and d["chunks"] > 100')" = True ] || fail "[$name] stored/unique/packs/chunks"
	# the stored bytes are the packs' records: the packs on disk are no smaller
	local disk
	disk=$(find "$repo/packs" -type f ! -name '.*' -printf '%s\n' | awk '{s+=$1} END {print s}')
	[ "$(jget "$T/s.json" "d['stored_bytes'] <= $disk")" = True ] || fail "[$name] stored bytes exceed the packs on disk"
	"$CAIRN" stats -r "$repo" | grep -E "^a +512.0 MiB" || fail "[$name] per-volume table"
}

run plain "$T/plain"
CAIRN_PASSWORD_FILE=$T/pw run encrypted "$T/enc" --encrypt
