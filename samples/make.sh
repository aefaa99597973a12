#!/usr/bin/env bash
# Re-create the sample recordings in this directory with a fresh sample key.
# Each sample is a real session recorded by `sealcast record` in a real PTY; the interactive
# ones are typed through tmux (send-keys), as a person would. Only the public key is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
cargo build --release --quiet
bin=$root/target/release/sealcast
work=$(mktemp -d)
trap 'tmux kill-server -L sealcast-samples 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" keygen --out "$work/key" --comment "sealcast-samples" >/dev/null
cp "$work/key/signing.pub" "$here/signing.pub"
echo "sample-host namespaces=\"sealcast\" $(cut -d' ' -f1,2 "$work/key/signing.pub")" > "$here/allowed_signers"
rm -f "$here"/*.cast.zst "$here"/*.cast.zst.seal

export HOME=$work/home XDG_DATA_HOME=$work/data
mkdir -p "$HOME"
printf 'alpha\nbeta\ngamma\n' > "$HOME/notes.txt"

# Run a recording inside a detached tmux session of 100x30 and type KEYS into it.
tmux_record() { # name cmd... ; keys come from the function tmux_keys_<name>
    local name=$1; shift
    tmux -L sealcast-samples new-session -d -s "$name" -x 100 -y 30 \
        "cd '$HOME' && PS1='\$ ' '$bin' record -q --host-id sample-host --key '$work/key/signing.key' --out '$here/$name.cast.zst' -- $*"
    sleep 1
    "tmux_keys_$name"
    for _ in $(seq 1 100); do [ -f "$here/$name.cast.zst.seal" ] && return 0; sleep 0.1; done
    echo "make.sh: $name did not finish" >&2
    return 1
}
keys() { tmux -L sealcast-samples send-keys -t "$1" "${@:2}"; sleep 0.4; }

tmux_keys_shell-session() {
    keys shell-session 'echo "hello from $(whoami) in $PWD"' Enter
    keys shell-session 'ls --color=always -l /usr/bin | head -5' Enter
    keys shell-session 'printf "\033[1;31mred\033[0m \033[1;32mgreen\033[0m\n"; false' Enter
    keys shell-session 'echo "exit status was $?"' Enter
    keys shell-session 'exit' Enter
}
tmux_record shell-session bash --norc -i

tmux_keys_fullscreen-vim() {
    keys fullscreen-vim 'Go' 'delta, typed in vim' Escape
    keys fullscreen-vim ':wq' Enter
    keys fullscreen-vim 'less /etc/services' Enter
    keys fullscreen-vim ' ' ; keys fullscreen-vim '/http' Enter; keys fullscreen-vim 'q'
    keys fullscreen-vim 'exit' Enter
}
tmux_record fullscreen-vim bash --norc -i -c "'vim -u NONE notes.txt; exec bash --norc -i'"

# Binary output: bytes that are not UTF-8 survive exactly (b events); no terminal needed.
head -c 4096 /dev/urandom > "$work/random.bin"
"$bin" record -q --host-id sample-host --key "$work/key/signing.key" --out "$here/binary-output.cast.zst" \
    -- sh -c "stty raw -echo; printf 'random bytes follow:\n'; cat '$work/random.bin'; printf '\nthe end\n'" </dev/null >/dev/null

"$bin" verify --trusted "$here/allowed_signers" "$here"
