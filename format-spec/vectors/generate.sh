#!/usr/bin/env bash
# Regenerate the sealcast v1 test vectors in this directory.
#
# Provenance: every file here is written by tests/vectors.rs from three fixed Ed25519 keys
# (vector-signing.key, trusted for vector-host; vector-other.key, not trusted; vector-host2.key,
# trusted for other-host only: generated with ring on the first run, then inputs),
# a fixed clock (2025-11-21T04:40:00Z + scripted offsets), fixed session ids and zstd level 3.
# Ed25519 signatures are deterministic (RFC 8032), so regenerating gives identical bytes unless
# the format code changed. chain-kat.* come from chain-kat.py (Python hashlib, independent of
# the Rust code). Never edit these files by hand: `cargo test --test vectors` fails if they
# differ from what the code writes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
python3 "$here/chain-kat.py"
SEALCAST_REGEN_VECTORS=1 cargo test --quiet --test vectors
cargo test --quiet --test vectors
echo "vectors regenerated in $here"
