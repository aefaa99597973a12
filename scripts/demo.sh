#!/usr/bin/env bash
# The main job on the embedded defaults: record a session, verify it, replay it.
# With no key configured, `sealcast record` creates a dev key, a trust file and a local archive
# under ${XDG_DATA_HOME:-~/.local/share}/sealcast, and `verify`/`play` find them there.
#
#   scripts/demo.sh              interactive: records your login shell (type `exit` to stop)
#   scripts/demo.sh -- CMD...    records CMD instead
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/sealcast
[ "${1:-}" = "--" ] && shift

if [ $# -eq 0 ] && ! [ -t 0 ]; then
  # No terminal (CI, pipes): record a short scripted session instead of a login shell.
  set -- bash -c 'echo "sealcast demo on $(hostname)"; printf "\033[1;32mcolours\033[0m and bytes: \xff\xfe\n"; ls --color=always /; sleep 0.5; false; echo done'
fi

before=$(date +%s)
"$bin" record -- "$@" || true   # the recorder exits with the session's status
archive="${XDG_DATA_HOME:-$HOME/.local/share}/sealcast/archive"
latest=$(ls -t "$archive"/*.cast.zst | head -n 1)
echo
echo "== verify $latest"
"$bin" verify "$latest"
echo
echo "== info"
"$bin" info "$latest"
echo
echo "== commands (what ran, from the shell's hooks and the processes the recorder saw)"
"$bin" commands "$latest" || true
echo
echo "== replay (speed x2)"
"$bin" play --speed 2 "$latest"
echo
echo "recorded at $(date -d @"$before" -u +%FT%TZ); also try: zstd -dc '$latest' | asciinema play -"
