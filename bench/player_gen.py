#!/usr/bin/env python3
"""Output generators for bench/player.sh, run inside `sealcast record` (a real PTY).

text MB: coloured log lines with \\r progress bars, like a long build or `tail -f` (scrolls).
full MB: top/vim-like full-screen redraws on the alternate screen (cursor moves, colours,
scroll regions, a status line), like an auditor's worst case for a screen model.
idle SECS: a prompt, then nothing for SECS seconds (CPU of playback on an idle screen).
Fixed seeds: the same bytes every run.
"""
import os
import random
import sys
import time

out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 16)
kind, n = sys.argv[1], float(sys.argv[2])
rnd = random.Random(42)
words = [w.encode() for w in "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega".split()]

if kind == "text":
    total = int(n * 1e6)
    written = 0
    i = 0
    while written < total:
        i += 1
        if i % 50 == 0:
            chunk = b"".join(b"\rprogress %3d%% [%s%s]" % (p, b"#" * (p // 5), b"." * (20 - p // 5)) for p in range(0, 101, 10)) + b"\r\n"
        else:
            line = b" ".join(rnd.choice(words) for _ in range(rnd.randint(4, 14)))
            chunk = b"\x1b[32m%08d\x1b[0m \x1b[1m[INFO]\x1b[0m %s\r\n" % (i, line)
        out.write(chunk)
        written += len(chunk)
elif kind == "full":
    total = int(n * 1e6)
    written = 0
    out.write(b"\x1b[?1049h\x1b[H\x1b[2J")
    frame = 0
    while written < total:
        frame += 1
        parts = [b"\x1b[H\x1b[1;7m top - frame %d  load average: %.2f \x1b[0m\x1b[K\r\n" % (frame, rnd.random() * 4)]
        for row in range(2, 40):
            pid = rnd.randint(1, 99999)
            cpu = rnd.random() * 100
            name = rnd.choice(words)
            color = b"\x1b[31m" if cpu > 90 else b""
            parts.append(b"\x1b[%d;1H%s%7d root  20   0 %6.1f %6.1f %s\x1b[0m\x1b[K" % (row, color, pid, cpu, rnd.random() * 10, name))
        if frame % 7 == 0:
            parts.append(b"\x1b[5;35r\x1b[35;1H\n\n\x1b[r\x1b]0;vim - file%d\x07" % frame)
        chunk = b"".join(parts)
        out.write(chunk)
        written += len(chunk)
    out.write(b"\x1b[?1049l")
elif kind == "idle":
    out.write(b"$ ")
    out.flush()
    time.sleep(n)
    out.write(b"exit\r\n")
out.flush()
