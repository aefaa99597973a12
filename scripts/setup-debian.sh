#!/usr/bin/env bash
# Install everything sealcast's build, tests and demo need on a fresh Debian machine.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have zstd        || need_apt+=(zstd)
have tmux        || need_apt+=(tmux)
have zsh         || need_apt+=(zsh)    # shell hooks tests (dash is /bin/sh on Debian)
have vim         || need_apt+=(vim)
have less        || need_apt+=(less)
have script      || need_apt+=(bsdutils)
have ssh-keygen  || need_apt+=(openssh-client)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)   # the bastion tests start their own sshd
[ -x /usr/lib/openssh/sftp-server ] || need_apt+=(openssh-sftp-server)
have rsync       || need_apt+=(rsync)
have scp         || need_apt+=(openssh-client)
have cc          || need_apt+=(build-essential)
have pkg-config  || need_apt+=(pkg-config)
[ -x /usr/bin/time ] || need_apt+=(time)
have python3     || need_apt+=(python3)
# Database-proxy tests and bench (tests/db_*.rs, bench/db.sh): PostgreSQL 15 server and
# client (psql, pgbench), MariaDB 10.11 server and client, PgBouncer (the bench's peer).
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
have psql        || need_apt+=(postgresql-client-15)
have pgbench     || need_apt+=(postgresql-client-15)
[ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
have mariadb     || need_apt+=(mariadb-client)
have pgbouncer   || need_apt+=(pgbouncer)

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: apt-get install ${need_apt[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! have cargo; then
  # shellcheck disable=SC1091
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
have cargo || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }

# asciinema 3.x, for the asciicast compatibility tests and the benchmark.
export PATH="$HOME/.cargo/bin:$PATH"
if ! asciinema --version 2>/dev/null | grep -q '^asciinema 3\.'; then
  echo "setup: cargo install asciinema (3.x), a few minutes" >&2
  cargo install asciinema --locked --quiet
fi
# s3s-fs (crates.io, binary feature): the loopback S3 server of tests/s3_checksum.rs, which
# refuses a PUT whose body does not match its x-amz-checksum-sha256 and keeps nothing (moto
# stores it; s3s-fs before 0.17 answers BadDigest but leaves the body at the key). 0.17 declares
# rust-version 1.96 and builds with 1.95, hence --ignore-rust-version.
S3S_FS_VERSION=0.17.0
if ! s3s-fs --version 2>/dev/null | grep -qx "s3s-fs $S3S_FS_VERSION"; then
  echo "setup: cargo install s3s-fs $S3S_FS_VERSION, a few minutes" >&2
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --ignore-rust-version --quiet
fi
# moto_server (PyPI moto[server]): the loopback S3 server of tests/s3_*.rs.
python3 -c 'import moto.server' 2>/dev/null || { python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq python3-pip >/dev/null
  python3 -m pip install -q 'moto[server]' || python3 -m pip install -q --break-system-packages 'moto[server]'; }
