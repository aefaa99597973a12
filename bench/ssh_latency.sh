#!/usr/bin/env bash
# SSH benchmark: keystroke echo latency and `cat` throughput through a real sshd, with and
# without sealcast-shell as ForceCommand. See bench/README.md ("SSH benchmark").
#
#   bench/ssh_latency.sh            full run (10,000 round trips, 200 MB, 3 cat runs per path)
#   SSH_BENCH_BYTES=20000000 SSH_BENCH_ROUNDS=2000 bench/ssh_latency.sh   smoke run
#
# Environment:
#   SSH_BENCH_ROUNDS=10000   single-byte round trips per path (after 200 unmeasured)
#   SSH_BENCH_BYTES=200000000  size of the file `cat` prints
#   SSH_BENCH_RUNS=3         `cat` runs per path (median reported)
#   SSH_BENCH_OUT=PATH       report file (default bench/RESULTS-ssh.md)
#
# Needs root and openssh-server (scripts/setup-debian.sh). Builds in release mode. Prints
# the markdown report on stdout and writes it to bench/RESULTS-ssh.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case ${1:-} in
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "ssh_latency.sh: unknown argument: $1" >&2; exit 3 ;;
esac
[[ $(id -u) == 0 ]] || { echo "ssh_latency.sh: needs root (it adds a user and runs sshd)" >&2; exit 1; }
[[ -x /usr/sbin/sshd ]] || { echo "ssh_latency.sh: openssh-server is missing (scripts/setup-debian.sh)" >&2; exit 1; }
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
[[ :$PATH: == *:$CARGO_BIN:* ]] || export PATH="$PATH:$CARGO_BIN"

export SEALCAST_SSH_BENCH=1
# The harness rebuilds sealcast-shell in the same (release) profile before installing it.
exec cargo test --release --test bastion_bench -- --ignored --nocapture --test-threads=1
