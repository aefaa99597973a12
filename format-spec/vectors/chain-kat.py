#!/usr/bin/env python3
"""Independent known-answer computation of the sealcast v1 chain (SPEC §4) with hashlib.

Provenance: written from SPEC §4 alone, sharing no code with the Rust implementation.
Writes chain-kat.genesis.txt and chain-kat.head2.txt beside this file.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def genesis(host: bytes, session: bytes) -> bytes:
    return hashlib.sha256(
        b"sealcast/v1/genesis\0" + struct.pack(">I", len(host)) + host + struct.pack(">I", len(session)) + session
    ).digest()


def push(head: bytes, i: int, line: bytes) -> bytes:
    return hashlib.sha256(b"sealcast/v1/line\0" + head + struct.pack(">QQ", i, len(line)) + line).digest()


g = genesis(b"host-a", b"00000000000000000000000000000001")
h = push(g, 0, b'{"version":3,"term":{"cols":80,"rows":24}}')
h = push(h, 1, b'[0.000000, "o", "hi"]')
with open(os.path.join(HERE, "chain-kat.genesis.txt"), "w") as f:
    f.write(g.hex() + "\n")
with open(os.path.join(HERE, "chain-kat.head2.txt"), "w") as f:
    f.write(h.hex() + "\n")
