#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: setup, format, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Public docs build without broken links; the fuzz targets (their own workspace) still compile.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
(cd fuzz && cargo check --locked --quiet)
cargo test --workspace --all-targets --locked
