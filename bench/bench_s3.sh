#!/bin/bash
# bench/bench_s3.sh - cairn's S3 backend against restic's, into the same local s3rver (the
# pinned test server, tests/s3/), with the same data, in one run; prints ratios.
#
# Data: the 1 GiB ext4 image of bench/run.sh (mkfs.ext4 -d /usr/share: real files).
#   cairn, 1 upload    `cairn import` of the image into an empty encrypted repository
#                      s3://<bucket>/repo with CAIRN_S3_UPLOADS=1 (one pack upload at a
#                      time, as before the writer pool)
#   cairn, default     the same with the default writer pool (4 pack uploads at once)
#   restic             `restic backup --stdin` into s3:<endpoint>/<bucket> (restic's own
#                      S3 backend, minio-go; 5 connections by default)
#   cairn-1@link,      the two cairn runs again, into a plain-http s3rver reached through
#   cairn@link         tests/s3/fault_proxy.py --bw: every request and answer body waits
#                      size / BENCH_LINK_BPS (default 10 MiB/s), a link that is slow per
#                      connection, as a distant S3 endpoint is; loopback alone is not
#                      (restic cannot go through it: see below)
# s3rver serves https (a throwaway self-signed certificate; cairn trusts it through
# $AWS_CA_BUNDLE, restic through --cacert): over plain http, restic's minio-go signs
# uploads as aws-chunked streams, which s3rver 3.7 stores framing and all, so restic cannot
# read its own repository back ("Unmarshal: invalid character 'b'"); over https it sends
# UNSIGNED-PAYLOAD and works. Both tools pay the same TLS.
# Each run gets a fresh bucket; the timed span ends with `sync` (s3rver writes objects as
# files without fsync, so the sync makes every tool's upload durable). Reported: wall time
# as MB/s of the image, the bucket's bytes in s3rver's data directory, and the peak RSS of
# the ingesting process. cairn's volume is set to `--retain 0` (a backup target keeps
# versions, not every write), as in bench_import.sh. BENCH_ROUNDS (3) rounds, alternating
# the tools; medians are reported.
#
# Usage: make build && bash bench/bench_s3.sh   (needs node and npm for s3rver; restic is
# installed with apt-get when missing and run as root). BENCH_DIR: scratch directory.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAIRN=${CAIRN_BIN:-$ROOT/build/cairn}
DIR=${BENCH_DIR:-/tmp/cairn-bench-s3}
ROUNDS=${BENCH_ROUNDS:-3}
[ -x "$CAIRN" ] || { echo "bench_s3: $CAIRN missing; run make build" >&2; exit 1; }
need=()
command -v restic >/dev/null || need+=(restic)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "bench_s3: missing ${need[*]} (apt-get install ${need[*]})" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rm -rf "$DIR"; mkdir -p "$DIR"
export CAIRN_RUN_DIR=$DIR/run CAIRN_STATE_DIR=$DIR/state

IMG=$ROOT/tests/out/cache/usr-share.img
if [ ! -f "$IMG" ]; then
	mkdir -p "$(dirname "$IMG")" "$DIR/src"
	cp -a /usr/share "$DIR/src/"
	mkfs.ext4 -q -F -N 100000 -E lazy_itable_init=0,lazy_journal_init=0 -d "$DIR/src" "$IMG.tmp" 1G >/dev/null
	mv "$IMG.tmp" "$IMG"; rm -rf "$DIR/src"
fi
SIZE=$(stat -c %s "$IMG")
cat "$IMG" >/dev/null

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/key.pem" -out "$DIR/cert.pem" -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
"$ROOT/tests/s3/start-s3rver.sh" "$DIR/s3data" --key "$DIR/key.pem" --cert "$DIR/cert.pem" \
	>"$DIR/s3.port" 2>"$DIR/s3.log" &
PIDS=$!
"$ROOT/tests/s3/start-s3rver.sh" "$DIR/s3data-link" >"$DIR/s3-link.port" 2>"$DIR/s3-link.log" &
PIDS="$PIDS $!"
trap 'kill $PIDS 2>/dev/null; wait 2>/dev/null || true' EXIT
for f in s3 s3-link; do
	for _ in $(seq 600); do [ -s "$DIR/$f.port" ] && break; sleep 0.1; done
	[ -s "$DIR/$f.port" ] || { cat "$DIR/$f.log"; echo "bench_s3: s3rver did not start" >&2; exit 1; }
done
EP=https://127.0.0.1:$(head -1 "$DIR/s3.port")
LINK_BPS=${BENCH_LINK_BPS:-10485760}
python3 "$ROOT/tests/s3/fault_proxy.py" --upstream "127.0.0.1:$(head -1 "$DIR/s3-link.port")" \
	--rate 0 --bw "$LINK_BPS" >"$DIR/proxy.port" 2>"$DIR/proxy.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do [ -s "$DIR/proxy.port" ] && break; sleep 0.1; done
[ -s "$DIR/proxy.port" ] || { cat "$DIR/proxy.log"; echo "bench_s3: fault_proxy.py did not start" >&2; exit 1; }
LINK_EP=http://127.0.0.1:$(head -1 "$DIR/proxy.port")
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=$DIR/no-credentials CAIRN_S3_ENDPOINT=$EP AWS_CA_BUNDLE=$DIR/cert.pem
printf 'bench password\n' >"$DIR/pw"
export RESTIC_PASSWORD_FILE=$DIR/pw RESTIC_CACHE_DIR=$DIR/restic-cache

du_b() { du -sb "$1" | cut -f1; }
# timed OUTFILE cmd...: run cmd + sync, append "seconds peak_rss_kib" to OUTFILE
timed() {
	local out=$1; shift
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f %M -o "$DIR/rss" "$@" >"$DIR/cmd.log" 2>&1 || { cat "$DIR/cmd.log"; exit 1; }
	sync
	t1=$(date +%s.%N)
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $(tail -1 "$DIR/rss")" >>"$out"
}

# one TOOL ROUND: one ingest into a fresh bucket; records time, RSS and bucket size
one() {
	local tool=$1 r=$2 bucket=bench-${1%@link}-$2 data=$DIR/s3data
	rm -rf "$DIR/state" "$RESTIC_CACHE_DIR"
	case $tool in
	cairn-1|cairn|cairn-1@link|cairn@link)
		local uploads= ep=$EP
		[ "${tool%@link}" = cairn-1 ] && uploads=1
		[ "${tool%@link}" != "$tool" ] && { ep=$LINK_EP; data=$DIR/s3data-link; }
		local R=s3://$bucket/repo pw=(--password-file "$DIR/pw")
		export CAIRN_S3_ENDPOINT=$ep
		"$CAIRN" init -r "$R" --encrypt "${pw[@]}" >/dev/null
		"$CAIRN" volume create v1 --size "$SIZE" -r "$R" "${pw[@]}" >/dev/null
		"$CAIRN" volume set v1 --retain 0 -r "$R" "${pw[@]}" >/dev/null
		CAIRN_S3_UPLOADS=$uploads timed "$DIR/$tool.t" "$CAIRN" import v1 "$IMG" -r "$R" "${pw[@]}"
		;;
	restic)
		restic init -q --cacert "$DIR/cert.pem" -r "s3:$EP/$bucket" >/dev/null
		timed "$DIR/$tool.t" restic backup -q --cacert "$DIR/cert.pem" -r "s3:$EP/$bucket" \
			--stdin --stdin-filename disk.img <"$IMG"
		;;
	esac
	echo "$(du_b "$data/$bucket")" >>"$DIR/$tool.size"
	rm -rf "${data:?}/$bucket"
}

TOOLS="cairn-1 cairn restic cairn-1@link cairn@link"
for r in $(seq 1 "$ROUNDS"); do
	for t in $TOOLS; do one "$t" "$r"; done
done

# median COLUMN FILE
median() { awk -v c="$1" '{print $c}' "$2" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb() { awk -v s="$SIZE" -v t="$1" 'BEGIN {printf "%.1f", s / 1048576 / t}'; }
printf '\nimage %s MiB into s3rver at %s (@link: %s, %s bytes/s per connection); %s rounds, medians (per-round seconds in %s/*.t)\n\n' \
	"$((SIZE / 1048576))" "$EP" "$LINK_EP" "$LINK_BPS" "$ROUNDS" "$DIR"
printf '| tool | ingest MB/s | bucket MiB | peak RSS MiB | per round MB/s |\n|---|---|---|---|---|\n'
declare -A F
for t in $TOOLS; do
	F[$t]=$(mb "$(median 1 "$DIR/$t.t")")
	per=$(awk '{print $1}' "$DIR/$t.t" | while read -r s; do mb "$s"; printf ' '; done)
	printf '| %s | %s | %s | %s | %s|\n' "$t" "${F[$t]}" "$(( $(median 1 "$DIR/$t.size") / 1048576 ))" \
		"$(( $(median 2 "$DIR/$t.t") / 1024 ))" "$per"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
printf 'cairn default (4 uploads) / cairn 1 upload: %sx on loopback, %sx through the link\n' \
	"$(ratio "${F[cairn]}" "${F[cairn-1]}")" "$(ratio "${F[cairn@link]}" "${F[cairn-1@link]}")"
printf 'cairn default / restic: %sx; cairn 1 upload / restic: %sx (ingest speed, higher is better)\n' \
	"$(ratio "${F[cairn]}" "${F[restic]}")" "$(ratio "${F[cairn-1]}" "${F[restic]}")"
