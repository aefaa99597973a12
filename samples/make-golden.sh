#!/usr/bin/env bash
# Re-create the player's golden recordings in samples/golden/ with a fresh key: real
# sessions recorded by `sealcast record` in a tmux pane of 80x24 and typed with send-keys,
# as a person would. tui/tests/golden.rs plays them to fixed points and snapshots the screen
# (after re-creating them, review and accept the new snapshots: `cargo insta review`, or
# INSTA_UPDATE=always once). SEALCAST_BIN=path uses that binary instead of building one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=$here/golden
cd "$root"
if [ -z "${SEALCAST_BIN:-}" ]; then
    cargo build --release --quiet --bin sealcast
    bin=${CARGO_TARGET_DIR:-$root/target}/release/sealcast
else
    bin=$SEALCAST_BIN
fi
work=$(mktemp -d)
sock=$work/tmux.sock
trap 'tmux -S "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$out"
rm -f "$out"/*.cast.zst "$out"/*.cast.zst.seal

"$bin" keygen --out "$work/key" --comment "sealcast-golden" >/dev/null
# The principal is the host id the recordings name (SPEC §6: a key signs only for its hosts).
echo "golden-host namespaces=\"sealcast\" $(cut -d' ' -f1,2 "$work/key/signing.pub")" > "$out/allowed_signers"

export HOME=$work/home XDG_DATA_HOME=$work/data
mkdir -p "$HOME"
printf 'alpha\nbeta\ngamma\n' > "$HOME/notes.txt"
for i in $(seq 1 300); do echo "line $i of a long file for less"; done > "$HOME/long.txt"

tm() { tmux -S "$sock" -f /dev/null "$@"; }
# Wait until the pane shows TEXT (poll, 20 s at most).
wait_for() { # session text
    for _ in $(seq 1 200); do
        tm capture-pane -p -t "$1" | grep -qF -- "$2" && return 0
        sleep 0.1
    done
    echo "make-golden.sh: $1: timed out waiting for '$2'" >&2
    tm capture-pane -p -t "$1" >&2
    return 1
}
keys() { tm send-keys -t "$@"; }
# Record NAME running CMD in a new 80x24 pane; the session's keys come from golden_NAME.
record() { # name cmd
    local name=$1; shift
    tm new-session -d -s "$name" -x 80 -y 24 \
        "cd '$HOME' && PS1='\$ ' '$bin' record -q --host-id golden-host --key '$work/key/signing.key' --out '$out/$name.cast.zst' -- $*"
    "golden_$name"
    for _ in $(seq 1 200); do [ -f "$out/$name.cast.zst.seal" ] && return 0; sleep 0.1; done
    echo "make-golden.sh: $name did not finish" >&2
    return 1
}

# A shell: a \r progress bar, wide characters, the alternate screen, a resize.
golden_shell() {
    wait_for shell '$'
    keys shell "for i in \$(seq 0 10 100); do printf '\\rprogress %3d%% ' \$i; sleep 0.05; done; echo; echo bar-done" Enter
    wait_for shell 'bar-done'
    keys shell "printf 'wide: \\344\\270\\226\\347\\225\\214 \\357\\275\\210\\357\\275\\211 \\360\\237\\230\\200 e\\314\\201 end\\n'" Enter
    wait_for shell 'end'
    keys shell "printf '\\033[?1049h\\033[Hon the alternate screen\\n'; sleep 0.3; printf '\\033[?1049l'; echo back-on-main" Enter
    wait_for shell 'back-on-main'
    tm resize-window -t shell -x 60 -y 20
    sleep 0.3
    keys shell "stty size; echo resized" Enter
    wait_for shell 'resized'
    keys shell 'exit' Enter
}
record shell bash --norc -i

golden_vim() {
    wait_for vim 'notes.txt'
    keys vim 'Go' 'delta, typed in vim' Escape
    keys vim ':wq' Enter
}
record vim vim -u NONE -N notes.txt

golden_less() {
    wait_for less 'line 1 of'
    keys less ' '
    wait_for less 'line 40 of'
    keys less '/line 123' Enter
    wait_for less 'line 123 of'
    keys less 'q'
}
record less less long.txt

golden_top() {
    wait_for top 'load average'
    sleep 1.2   # two or three refreshes
    keys top 'q'
}
record top top -d 0.5

"$bin" verify --trusted "$out/allowed_signers" "$out"
