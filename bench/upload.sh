#!/usr/bin/env bash
# Upload and bucket-verify benchmark against moto_server on 127.0.0.1 (issue 4).
#
#   bench/upload.sh          1,000 small recordings + 1 large one (2 GB of output: random base64,
#                            about 1.5 GB compressed, so it goes up as a multipart upload)
#
# Environment:
#   BENCH_SCALE=1.0          scale the counts and sizes (0.01 for a smoke run)
#   SEALCAST_BIN=PATH        use this binary, skip `cargo build --release`
#
# Reports, as markdown on stdout and in bench/RESULTS-upload.md (overwritten; the reading of
# the numbers is in bench/ANALYSIS.md): upload throughput (MB/s, recordings/s) for the small set and
# the large recording, the uploader's peak RSS, and `verify s3://…` throughput (MB/s,
# sessions/s). moto keeps objects in memory, so the numbers are a lower bound for a real store.
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
SCALE=${BENCH_SCALE:-1.0}
N_SMALL=$(python3 -c "print(max(1, int(1000 * $SCALE)))")
LARGE_BYTES=$(python3 -c "print(max(1000000, int(2000000000 * $SCALE)))")

if [ -z "${SEALCAST_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin sealcast)
    SEALCAST_BIN=$ROOT/target/release/sealcast
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealcast-upload-bench.XXXXXX")
MOTO_PID=""
cleanup() {
    [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
EP=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('$EP/moto-api/')" 2>/dev/null && break
    sleep 0.1
done
python3 - "$EP" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
s3.create_bucket(Bucket="bench", ObjectLockEnabledForBucket=True)
PY

"$SEALCAST_BIN" keygen --out "$WORK/key" >/dev/null
PUB=$(cat "$WORK/key/signing.pub")
echo "bench namespaces=\"sealcast,sealcast-manifest\" $PUB" >"$WORK/trust"
export XDG_DATA_HOME=$WORK/xdg

echo "bench: recording $N_SMALL small sessions and one of $LARGE_BYTES bytes" >&2
mkdir -p "$WORK/small" "$WORK/large"
for i in $(seq "$N_SMALL"); do
    "$SEALCAST_BIN" record -q --key "$WORK/key/signing.key" --host-id bench \
        --out "$WORK/small/s$i.cast.zst" -- sh -c "seq 1 200; echo session $i" </dev/null >/dev/null
done
"$SEALCAST_BIN" record -q --key "$WORK/key/signing.key" --host-id bench \
    --out "$WORK/large/big.cast.zst" -- sh -c "head -c $((LARGE_BYTES * 3 / 4)) /dev/urandom | base64 -w 100" </dev/null >/dev/null

bytes() { du -cb "$1"/*.cast.zst | tail -1 | cut -f1; }
SMALL_BYTES=$(bytes "$WORK/small")
BIG_BYTES=$(bytes "$WORK/large")

# sampled OUT CMD... -> "wall_s peak_rss_kb peak_anon_kb": runs CMD (stdout to OUT), sampling
# /proc/PID/status every 20 ms. Peak RSS (VmHWM) counts the pages of memory-mapped files too
# (page cache, reclaimable: verify maps each recording); peak RssAnon is the process's own
# memory. Exits the benchmark when CMD fails.
sampled() {
    local out=$1
    shift
    local t0 t1 pid a h anon=0 hwm=0 rc=0
    t0=$(date +%s.%N)
    "$@" >"$out" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        a=$(awk '/^RssAnon:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
        h=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
        if [ -n "$a" ] && [ "$a" -gt "$anon" ]; then anon=$a; fi
        if [ -n "$h" ] && [ "$h" -gt "$hwm" ]; then hwm=$h; fi
        sleep 0.02
    done
    wait "$pid" || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" -ne 0 ]; then
        echo "bench: $* failed ($rc):" >&2
        tail -5 "$out" >&2
        exit 1
    fi
    echo "$(python3 -c "print(f'{$t1 - $t0:.2f}')") $hwm $anon"
}

# upload DIR PREFIX -> "wall_s rss_kb anon_kb"
upload() {
    sampled "$WORK/upload.out" "$SEALCAST_BIN" upload --spool "$1" \
        --to "s3://bench/$2" --host bench --key "$WORK/key/signing.key" --endpoint-url "$EP" \
        --lock-mode governance --lock-days 1
}
read -r SMALL_S SMALL_RSS SMALL_ANON < <(upload "$WORK/small" small)
read -r BIG_S BIG_RSS BIG_ANON < <(upload "$WORK/large" large)

# verify PREFIX -> "wall_s rss_kb anon_kb"
verify() {
    sampled "$WORK/verify.out" "$SEALCAST_BIN" verify "s3://bench/$1" --host bench \
        --trusted "$WORK/trust" --endpoint-url "$EP"
}
read -r VSMALL_S VSMALL_RSS VSMALL_ANON < <(verify small)
read -r VBIG_S VBIG_RSS VBIG_ANON < <(verify large)

rate() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}' if b > 0 else 'inf')"; }
mb() { python3 -c "print(f'{$1/1e6:.2f}')"; }

cat <<EOF | tee "$BENCH_DIR/RESULTS-upload.md"
## Upload to S3 (moto_server on 127.0.0.1), BENCH_SCALE=$SCALE

| workload | objects | compressed MB | wall s | MB/s | recordings/s | uploader peak RSS MiB | peak anonymous MiB |
|---|---|---|---|---|---|---|---|
| $N_SMALL small recordings | $N_SMALL | $(mb "$SMALL_BYTES") | $SMALL_S | $(rate "$SMALL_BYTES/1e6" "$SMALL_S") | $(rate "$N_SMALL" "$SMALL_S") | $((SMALL_RSS / 1024)) | $((SMALL_ANON / 1024)) |
| 1 large recording (multipart at ≥ 64 MiB, 16 MiB parts, 4 in flight) | 1 | $(mb "$BIG_BYTES") | $BIG_S | $(rate "$BIG_BYTES/1e6" "$BIG_S") | $(rate 1 "$BIG_S") | $((BIG_RSS / 1024)) | $((BIG_ANON / 1024)) |

| verify s3://… | wall s | MB/s | sessions/s | peak RSS MiB (incl. mapped file) | peak anonymous MiB |
|---|---|---|---|---|---|
| small set | $VSMALL_S | $(rate "$SMALL_BYTES/1e6" "$VSMALL_S") | $(rate "$N_SMALL" "$VSMALL_S") | $((VSMALL_RSS / 1024)) | $((VSMALL_ANON / 1024)) |
| large recording | $VBIG_S | $(rate "$BIG_BYTES/1e6" "$VBIG_S") | $(rate 1 "$VBIG_S") | $((VBIG_RSS / 1024)) | $((VBIG_ANON / 1024)) |
EOF
