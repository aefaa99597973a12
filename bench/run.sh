#!/usr/bin/env bash
# sealcast benchmark harness. See bench/README.md.
#
#   bench/run.sh            run all workloads with script, asciinema and sealcast
#   bench/run.sh --soak     also run the slow soak tests (cargo test --release --workspace -- --ignored)
#
# Environment:
#   BENCH_SCALE=1.0         scale input sizes (0.01 for a smoke run)
#   BENCH_RUNS=3            runs per (tool, workload) pair; the median wall time is reported
#   BENCH_TOOLS="script asciinema sealcast"
#   BENCH_WORKLOADS="logs redraw seq"
#   BENCH_TIMEOUT=600       seconds before one run is killed (reported as a failure)
#   SEALCAST_BIN=PATH       use this binary, skip `cargo build`
#
# Progress goes to stderr; stdout gets only the markdown report, which is also
# written to bench/RESULTS.md.
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
WORK=$BENCH_DIR/work
HELPER=$BENCH_DIR/helper.py

SCALE=${BENCH_SCALE:-1.0}
RUNS=${BENCH_RUNS:-3}
TOOLS=${BENCH_TOOLS:-script asciinema sealcast}
WORKLOADS=${BENCH_WORKLOADS:-logs redraw seq}
RUN_TIMEOUT=${BENCH_TIMEOUT:-600}
SOAK=0

# Full-scale sizes (BENCH_SCALE multiplies them).
LOGS_BYTES=200000000
REDRAW_BYTES=75000000
SEQ_COUNT=3000000

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

for arg in "$@"; do
    case $arg in
        --soak) SOAK=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $arg" >&2; usage >&2; exit 3 ;;
    esac
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }
has_word() { [[ " $1 " == *" $2 "* ]]; }

[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_SCALE must be a positive number, got '$SCALE'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
for t in $TOOLS; do has_word "script asciinema sealcast" "$t" || die "unknown tool in BENCH_TOOLS: $t"; done
for w in $WORKLOADS; do has_word "logs redraw seq" "$w" || die "unknown workload in BENCH_WORKLOADS: $w"; done

# rustup's default bin dir, for cargo (and cargo-installed asciinema) on a
# machine whose PATH does not have it yet; appended so that PATH still wins.
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
[[ :$PATH: == *:$CARGO_BIN:* ]] || export PATH="$PATH:$CARGO_BIN"
# All three recorders run the workload through /bin/sh (script uses $SHELL).
export SHELL=/bin/sh

# ---------------------------------------------------------------- prerequisites
ensure_packages() {
    local missing=()
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v zstd >/dev/null || missing+=(zstd)
    command -v script >/dev/null || missing+=(bsdutils util-linux)
    command -v python3 >/dev/null || missing+=(python3)
    command -v timeout >/dev/null || missing+=(coreutils)
    if ((${#missing[@]})); then
        log "installing missing packages: ${missing[*]}"
        [[ $(id -u) == 0 ]] || die "need root to apt-get install ${missing[*]}"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

is_asciinema3() { [[ $("$1" --version 2>/dev/null) =~ ^asciinema\ 3\. ]]; }

# Sets ASCIINEMA to an asciinema 3.x binary: the one on PATH, else cargo's, else
# `cargo install asciinema --locked` (an apt asciinema 2.x may shadow it on PATH).
ensure_asciinema() {
    if command -v asciinema >/dev/null && is_asciinema3 asciinema; then
        ASCIINEMA=$(command -v asciinema)
    elif is_asciinema3 "$CARGO_BIN/asciinema"; then
        ASCIINEMA=$CARGO_BIN/asciinema
    else
        command -v cargo >/dev/null || die "asciinema 3.x missing and no cargo to install it"
        log "installing asciinema 3.x: cargo install asciinema --locked (found: '$(asciinema --version 2>/dev/null || echo none)')"
        cargo install asciinema --locked >&2
        is_asciinema3 "$CARGO_BIN/asciinema" || die "asciinema 3.x still not available in $CARGO_BIN"
        ASCIINEMA=$CARGO_BIN/asciinema
    fi
}

ensure_packages
has_word "$TOOLS" asciinema && ensure_asciinema

if [[ -n ${SEALCAST_BIN:-} ]]; then
    SEALCAST=$SEALCAST_BIN
    log "using SEALCAST_BIN=$SEALCAST (no cargo build)"
else
    command -v cargo >/dev/null || die "cargo not found (install Rust, or set SEALCAST_BIN)"
    log "cargo build --release --workspace"
    (cd "$ROOT" && cargo build --release --workspace) >&2
    target_dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    SEALCAST=$target_dir/release/sealcast
fi
[[ -x $SEALCAST ]] || die "sealcast binary not found or not executable: $SEALCAST"

mkdir -p "$WORK/out" "$WORK/stderr"

# ---------------------------------------------------------------- inputs
scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s); if (v < 1) v = 1; printf "%d\n", v }'; }

helper_sum=$(sha256sum "$HELPER" | cut -c1-16)

# gen NAME BYTES: (re)generate $WORK/NAME.txt unless a stamp says it is current.
gen() {
    local name=$1 bytes=$2 file=$WORK/$1.txt stamp=$WORK/$1.stamp
    local want="helper=$helper_sum bytes=$bytes"
    if [[ -f $file && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        log "reusing $file"
    else
        log "generating $file (~$bytes bytes)"
        rm -f "$stamp"
        python3 "$HELPER" "gen-$name" "$file.tmp" "$bytes"
        mv "$file.tmp" "$file"
        echo "$want" >"$stamp"
    fi
}

declare -A CMD INPUT_BYTES
for w in $WORKLOADS; do
    case $w in
        logs)
            gen logs "$(scaled $LOGS_BYTES)"
            CMD[logs]=$(printf 'cat %q' "$WORK/logs.txt")
            INPUT_BYTES[logs]=$(stat -c %s "$WORK/logs.txt")
            ;;
        redraw)
            gen redraw "$(scaled $REDRAW_BYTES)"
            CMD[redraw]=$(printf 'cat %q' "$WORK/redraw.txt")
            INPUT_BYTES[redraw]=$(stat -c %s "$WORK/redraw.txt")
            ;;
        seq)
            n=$(scaled $SEQ_COUNT)
            CMD[seq]="seq 1 $n"
            INPUT_BYTES[seq]=$(seq 1 "$n" | wc -c)
            ;;
    esac
done
# Warm the page cache so that the first tool does not pay for disk reads.
for w in logs redraw; do
    if has_word "$WORKLOADS" "$w"; then cat "$WORK/$w.txt" >/dev/null; fi
done

# ---------------------------------------------------------------- keys
if has_word "$TOOLS" sealcast; then
    KEYS=$WORK/keys
    rm -rf "$KEYS"
    "$SEALCAST" keygen --out "$KEYS" >&2 || die "sealcast keygen failed"
    [[ -f $KEYS/signing.key && -f $KEYS/signing.pub ]] || die "keygen did not write signing.key/signing.pub"
    echo "bench $(cut -d' ' -f1,2 "$KEYS/signing.pub")" >"$KEYS/allowed_signers"   # principal = the host id recorded
fi

# ---------------------------------------------------------------- measuring
RESULTS=$WORK/results.tsv
META=$WORK/meta.tsv
printf 'kind\ttool\tworkload\trun\twall\tuser\tsys\trss_kb\tout_bytes\texit\tstream_bytes\n' >"$RESULTS"
: >"$META"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

# measure LABEL CMD...: run CMD with stdin </dev/null and stdout >/dev/null under
# timeout and /usr/bin/time. Sets M_WALL M_USER M_SYS M_RSS M_RC. Wall time comes
# from bash's EPOCHREALTIME (microseconds; %e only has 10 ms resolution).
measure() {
    local label=$1; shift
    local tf=$WORK/time.out t0 t1 line
    rm -f "$tf"
    M_RC=0
    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" \
        </dev/null >/dev/null 2>>"$WORK/stderr/$label.log" || M_RC=$?
    t1=$EPOCHREALTIME
    M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
    # On a non-zero exit GNU time writes "Command exited with non-zero status N" first.
    line=$(tail -n 1 "$tf" 2>/dev/null || true)
    if [[ $line =~ ^[0-9.]+\ [0-9.]+\ [0-9.]+\ [0-9]+$ ]]; then
        read -r _ M_USER M_SYS M_RSS <<<"$line"
    else
        M_USER=0 M_SYS=0 M_RSS=0
        ((M_RC != 0)) || M_RC=125
    fi
}

out_path() {
    case $1 in
        script) echo /dev/null ;;
        asciinema) echo "$WORK/out/asciinema-$2.cast" ;;
        sealcast) echo "$WORK/out/sealcast-$2.cast.zst" ;;
    esac
}

record() { # record TOOL WORKLOAD RUN
    local tool=$1 w=$2 run=$3 out cmd bytes=0 stream=0
    out=$(out_path "$tool" "$w")
    cmd=${CMD[$w]}
    case $tool in
        script)
            measure "$tool-$w" script -q -e -c "$cmd" /dev/null
            ;;
        asciinema)
            rm -f "$out"
            measure "$tool-$w" "$ASCIINEMA" rec --headless --overwrite --quiet --return \
                --window-size 80x24 -c "$cmd" "$out"
            [[ -f $out ]] && bytes=$(stat -c %s "$out") && stream=$bytes
            ;;
        sealcast)
            rm -f "$out" "$out.seal"
            measure "$tool-$w" "$SEALCAST" record --host-id bench --out "$out" --key "$KEYS/signing.key" -- sh -c "$cmd"
            if [[ -f $out ]]; then
                bytes=$(stat -c %s "$out")
                stream=$(zstd -dc -- "$out" 2>/dev/null | wc -c || true)
            fi
            ;;
    esac
    printf 'rec\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$w" "$run" \
        "$M_WALL" "$M_USER" "$M_SYS" "$M_RSS" "$bytes" "$M_RC" "$stream" >>"$RESULTS"
    log "  $tool $w run $run: ${M_WALL}s rss=${M_RSS}KB bytes=$bytes exit=$M_RC"
    # A recording cannot be smaller than its input: the PTY turns LF into CRLF
    # and JSON escapes ESC as \u001b. Smaller means the recorder lost output.
    if [[ $tool != script && $M_RC == 0 ]] && ((stream < INPUT_BYTES[$w])); then
        meta "warn.$tool.$w.$run" "$tool/$w run $run: recorded stream is $stream bytes, less than the $((INPUT_BYTES[$w])) input bytes (output lost?)"
    fi
}

log "recording: scale=$SCALE runs=$RUNS tools=[$TOOLS] workloads=[$WORKLOADS]"
bench_t0=$EPOCHREALTIME
for run in $(seq 1 "$RUNS"); do
    for w in $WORKLOADS; do
        for tool in $TOOLS; do
            record "$tool" "$w" "$run"
        done
    done
done

if has_word "$TOOLS" sealcast; then
    log "verify"
    for w in $WORKLOADS; do
        out=$(out_path sealcast "$w")
        if [[ ! -f $out ]]; then
            meta "warn.verify.$w" "verify/$w: no recording to verify"
            continue
        fi
        stream=$(zstd -dc -- "$out" 2>/dev/null | wc -c || true)
        for run in $(seq 1 "$RUNS"); do
            measure "verify-$w" "$SEALCAST" verify --trusted "$KEYS/allowed_signers" "$out"
            printf 'verify\tsealcast\t%s\t%s\t%s\t%s\t%s\t%s\t0\t%s\t%s\n' "$w" "$run" \
                "$M_WALL" "$M_USER" "$M_SYS" "$M_RSS" "$M_RC" "$stream" >>"$RESULTS"
            log "  verify $w run $run: ${M_WALL}s rss=${M_RSS}KB exit=$M_RC"
        done
    done
fi
bench_secs=$(awk -v a="$bench_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------- soak
SOAK_RC=0
if ((SOAK)); then
    log "soak: cargo test --release --workspace -- --ignored (log: $WORK/soak.log)"
    soak_t0=$EPOCHREALTIME
    (cd "$ROOT" && cargo test --release --workspace -- --ignored) >"$WORK/soak.log" 2>&1 || SOAK_RC=$?
    soak_secs=$(awk -v a="$soak_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
    summary=$(grep -E '^test result:' "$WORK/soak.log" |
        awk '{ p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d ignored", p, f, i }')
    if ((SOAK_RC == 0)); then
        meta soak "PASS in ${soak_secs}s ($summary)"
    else
        meta soak "FAIL (exit $SOAK_RC) after ${soak_secs}s ($summary); see bench/work/soak.log"
        tail -n 40 "$WORK/soak.log" >&2
    fi
fi

# ---------------------------------------------------------------- report
meta workloads "$WORKLOADS"
meta tools "$TOOLS"
meta runs "$RUNS"
for w in $WORKLOADS; do meta "input_bytes.$w" "${INPUT_BYTES[$w]}"; done

first_line() { "$@" 2>&1 | head -n 1 || true; }
version_of() { command -v "$1" >/dev/null && first_line "$@" || echo "n/a"; }
sealcast_version=$("$SEALCAST" --version 2>/dev/null | head -n 1 || true)
[[ -n $sealcast_version ]] || sealcast_version="unknown version"
git_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain -- . ':!bench' 2>/dev/null) ]] || git_rev="$git_rev (dirty)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)

{
    echo "# sealcast benchmark results"
    echo
    echo "Generated by \`bench/run.sh$( ((SOAK)) && echo " --soak")\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| machine | $(nproc) CPUs (${cpu_model:-unknown CPU}), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM |"
    echo "| kernel | $(uname -r) |"
    echo "| sealcast | $sealcast_version, commit $git_rev |"
    echo "| script | $(version_of script --version) |"
    has_word "$TOOLS" asciinema && echo "| asciinema | $(version_of "$ASCIINEMA" --version) |"
    echo "| zstd | $(version_of zstd --version | sed 's/^[* ]*//; s/[* ]*$//') |"
    echo "| rustc | $(version_of rustc --version) |"
    echo "| scale | BENCH_SCALE=$SCALE, $RUNS runs per pair, benchmark took ${bench_secs}s |"
    echo
    echo "Throughput = input bytes / wall time (MB = 10^6 bytes). Verify throughput ="
    echo "decompressed stream bytes (\`zstd -dc | wc -c\`) / wall time. Every run has"
    echo "stdin </dev/null and stdout >/dev/null; see bench/README.md."
    echo
    python3 "$HELPER" report "$WORK"
    if [[ -f $BENCH_DIR/ANALYSIS.md ]]; then
        echo
        cat "$BENCH_DIR/ANALYSIS.md"
    fi
} >"$BENCH_DIR/RESULTS.md"

cat "$BENCH_DIR/RESULTS.md"
log "wrote $BENCH_DIR/RESULTS.md"
exit $((SOAK_RC != 0))
