#!/usr/bin/env bash
# Player benchmark: a 200 MB text recording, a 100 MB full-screen (top/vim-like) one, and
# 250 MB of each for the memory target (generated here by bench/player_gen.py inside
# `sealcast record`, never committed), measured with the player's own harness (tui/examples/player_bench.rs: first
# frame, seekable (keyframes built) MB/s, transcript MB/s, 200 random seeks, peak RSS) beside
# asciinema 3's full replay of the same recording in the same run (`asciinema convert -f
# txt`, its VT run over every event), and playback CPU at 1x on an idle screen (the real
# binary in tmux). Each row also gives the load average when it ran: the machine is shared.
# Writes a markdown report to stdout and bench/RESULTS-player.md. Inputs go to
# bench/work/player/ (delete them afterwards: about 190 MB).
#
#   bench/player.sh                  # full sizes
#   PLAYER_SCALE=0.05 bench/player.sh   # smoke run
#   SEALCAST_BIN=path bench/player.sh    # record and play with that binary (no cargo build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
scale=${PLAYER_SCALE:-1}
target=${CARGO_TARGET_DIR:-$root/target}
work=$here/work/player
mkdir -p "$work"
if [ -z "${SEALCAST_BIN:-}" ]; then
    cargo build --release --quiet --bin sealcast >&2
fi
cargo build --release --quiet -p sealcast-tui --example player_bench >&2
bin=${SEALCAST_BIN:-$target/release/sealcast}
pbench=$target/release/examples/player_bench
asciinema=$(command -v asciinema || echo "$HOME/.cargo/bin/asciinema")

"$bin" keygen --out "$work/key" --comment bench >/dev/null 2>&1 || true
mb() { python3 -c "print(max(1, round($1 * $scale)))"; }

gen() { # name kind size
    local f=$work/$1.cast.zst
    if [ ! -f "$f" ]; then
        echo "player.sh: recording $1 ($2 $3 MB)" >&2
        rm -f "$f" "$f.seal"
        "$bin" record -q --key "$work/key/signing.key" --out "$f" -- python3 "$here/player_gen.py" "$2" "$3" </dev/null >/dev/null
    fi
    echo "$f"
}
text=$(gen text-$(mb 200) text "$(mb 200)")
full=$(gen full-$(mb 100) full "$(mb 100)")
big=$(gen text-$(mb 250) text "$(mb 250)")
bigfull=$(gen full-$(mb 250) full "$(mb 250)")

# CPU seconds (user + sys) of a command: unlike wall time, hardly moved by other load.
cpu_s() {
    /usr/bin/time -f "%U %S" -o "$work/time.txt" "$@" >/dev/null 2>&1 || true
    python3 -c "u,s=open('$work/time.txt').read().split()[-2:]; print(f'{float(u)+float(s):.2f}')"
}

row() { # file
    local f=$1 out
    out=$("$pbench" "$f")
    # The seekable pass alone (scan + keyframes, one thread), in CPU seconds.
    local kf_cpu
    kf_cpu=$(cpu_s "$pbench" --keyframes-only "$f")
    # asciinema 3: a full replay of the same events through its VT (avt).
    zstd -dcq "$f" > "$work/replay.cast"
    local t0 t1
    t0=$(date +%s.%N)
    "$asciinema" convert -f txt "$work/replay.cast" "$work/replay.txt" --overwrite >/dev/null 2>&1 || \
        "$asciinema" convert "$work/replay.cast" "$work/replay.txt" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    local ascii_cpu
    ascii_cpu=$(cpu_s "$asciinema" convert -f txt "$work/replay.cast" "$work/replay.txt" --overwrite)
    local ascii_s
    ascii_s=$(python3 -c "print(f'{$t1-$t0:.2f}')")
    rm -f "$work/replay.cast" "$work/replay.txt"
    local ascii_mb_s
    ascii_mb_s=$(python3 -c "print(f'{$(echo "$out" | tr ' ' '\n' | sed -n 's/^output_mb=//p')/max($ascii_s,0.01):.1f}')")
    local mbs
    mbs=$(echo "$out" | tr ' ' '\n' | sed -n 's/^output_mb=//p')
    echo "$out asciinema_convert_s=$ascii_s asciinema_mb_s=$ascii_mb_s load=$(cut -d' ' -f1 /proc/loadavg) kf_cpu_s=$kf_cpu kf_mb_cpu_s=$(python3 -c "print(f'{$mbs/max($kf_cpu,0.01):.1f}')") ascii_cpu_s=$ascii_cpu ascii_mb_cpu_s=$(python3 -c "print(f'{$mbs/max($ascii_cpu,0.01):.1f}')")"
}

r_text=$(row "$text")
r_full=$(row "$full")
r_big=$(row "$big")
r_bigfull=$(row "$bigfull")

# Playback CPU at 1x on an idle screen: the real binary in tmux for 10 s.
idle=$work/idle.cast.zst
if [ ! -f "$idle" ]; then
    "$bin" record -q --key "$work/key/signing.key" --out "$idle" -- python3 "$here/player_gen.py" idle 30 </dev/null >/dev/null
fi
sock=$work/tmux.sock
tmux -S "$sock" -f /dev/null new-session -d -s idle -x 120 -y 40 "'$bin' play '$idle'; sleep 100"
trap 'tmux -S "$sock" kill-server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    pid=$(pgrep -P "$(tmux -S "$sock" display -p '#{pane_pid}')" || true)
    [ -n "$pid" ] && break
    sleep 0.1
done
sleep 1
tick=$(getconf CLK_TCK)
c0=$(awk '{print $14+$15}' "/proc/$pid/stat"); s0=$(date +%s.%N)
sleep 10
c1=$(awk '{print $14+$15}' "/proc/$pid/stat"); s1=$(date +%s.%N)
cpu=$(python3 -c "print(f'{100*($c1-$c0)/$tick/($s1-$s0):.2f}')")
tmux -S "$sock" kill-server 2>/dev/null || true

get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
report() {
    echo "# Player benchmark (bench/player.sh)"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, scale $scale; load = 1-minute load average when the row ran (other engineers share the cores)."
    echo
    echo "| recording | output MB | load | first frame ms | seekable MB/s (s) | transcript MB/s (s) | asciinema convert MB/s (s) | seekable pass MB per CPU-s (CPU s) | asciinema MB per CPU-s (CPU s) | vt100 replay alone s | seek p50 ms | seek max ms | keyframes (MiB) | transcript rows (MiB packed) | peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for r in "$r_text" "$r_full" "$r_big" "$r_bigfull"; do
        echo "| $(basename "$(get "$r" file)") | $(get "$r" output_mb) | $(get "$r" load) | $(get "$r" first_frame_ms) | $(get "$r" index_mb_s) ($(get "$r" index_s)) | $(get "$r" transcript_mb_s) ($(get "$r" transcript_s)) | $(get "$r" asciinema_mb_s) ($(get "$r" asciinema_convert_s)) | $(get "$r" kf_mb_cpu_s) ($(get "$r" kf_cpu_s)) | $(get "$r" ascii_mb_cpu_s) ($(get "$r" ascii_cpu_s)) | $(get "$r" replay_only_s) | $(get "$r" seek_p50_ms) | $(get "$r" seek_max_ms) | $(get "$r" keyframes) ($(get "$r" keyframe_mib)) | $(get "$r" transcript_rows) ($(get "$r" transcript_mib)) | $(get "$r" peak_rss_mib) |"
    done
    echo
    echo "Playback at 1x on an idle screen (\`sealcast play\` in a 120x40 tmux pane, 10 s): **${cpu} %** of a core."
    echo
    echo "Targets: first frame <= 100 ms; seekable (index built) >= 60 MB/s of output; seek p50 <= 10 ms, max <= 50 ms;"
    echo "peak RSS <= 64 MiB for 250 MB; idle playback <= 5 % of a core."
}
report | tee "$here/RESULTS-player.md"
