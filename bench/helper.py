#!/usr/bin/env python3
"""Helpers for bench/run.sh: deterministic input generation and the report.

  helper.py gen-logs   OUT BYTES     log lines with ANSI colours (seed fixed)
  helper.py gen-redraw OUT BYTES     full-screen 80x24 redraw frames (seed fixed)
  helper.py report     WORKDIR       read WORKDIR/results.tsv + meta, print markdown

Only the standard library is used. The generators use their own
random.Random(seed) instances and only random()/randrange()/choice(), whose
output for a given integer seed has been stable across CPython 3 releases, so
the same BENCH_SCALE gives byte-identical inputs on every machine.
"""

import os
import random
import statistics
import sys

SEED = 20251121

# --------------------------------------------------------------------------
# input generators


def gen_logs(path, target):
    rnd = random.Random(SEED)
    levels = [
        ("INFO ", "\x1b[32m", 60),
        ("DEBUG", "\x1b[36m", 20),
        ("WARN ", "\x1b[33m", 12),
        ("ERROR", "\x1b[1;31m", 6),
        ("TRACE", "\x1b[2;37m", 2),
    ]
    weighted = [lv for lv in levels for _ in range(lv[2])]
    services = ["api", "auth", "db-pool", "scheduler", "ingest", "cache",
                "billing", "mailer", "gateway", "search"]
    verbs = ["accepted", "rejected", "processed", "retrying", "completed",
             "queued", "timed out", "dropped", "forwarded", "flushed"]
    nouns = ["request", "connection", "job", "batch", "session", "upload",
             "query", "message", "checkpoint", "lease"]
    paths = ["/v1/users", "/v1/orders", "/healthz", "/v2/search", "/login",
             "/static/app.js", "/v1/items/42", "/metrics", "/v1/upload"]
    # Like real logs: a small pool of client addresses, request ids from a
    # counter, monotonic timestamps; durations, sizes and hashes stay random.
    peers = ["10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
             for _ in range(64)]
    state = {"id": 4000000}

    def next_id():
        state["id"] += rnd.randrange(1, 4)
        return state["id"]

    templates = [
        lambda: "%s %s id=%d in %d.%03dms" % (
            rnd.choice(nouns), rnd.choice(verbs), next_id(),
            rnd.randrange(0, 2000), rnd.randrange(0, 1000)),
        lambda: "GET %s status=\x1b[1m%d\x1b[22m bytes=%d peer=%s" % (
            rnd.choice(paths), rnd.choice([200, 200, 200, 201, 204, 301, 404, 500]),
            rnd.randrange(0, 10**6), rnd.choice(peers)),
        lambda: "pool size=%d idle=%d waiting=%d load=%.2f" % (
            rnd.randrange(1, 128), rnd.randrange(0, 64), rnd.randrange(0, 16),
            rnd.random() * 8),
        lambda: "user \x1b[4m%s%d\x1b[24m %s %s after %d attempts" % (
            rnd.choice(["alice", "bob", "carol", "dave", "eve"]), rnd.randrange(1000),
            rnd.choice(verbs), rnd.choice(nouns), rnd.randrange(1, 6)),
        lambda: "gc pause %dus heap=%dMiB objects=%d" % (
            rnd.randrange(10, 90000), rnd.randrange(16, 4096), rnd.randrange(10**4, 10**8)),
        lambda: "checksum %016x ok (%d/%d)" % (
            rnd.getrandbits(64), rnd.randrange(1, 1000), 1000),
    ]
    usec = 1763700000 * 10**6
    written = 0
    buf = []
    with open(path, "w", encoding="ascii", newline="\n") as f:
        while written < target:
            usec += rnd.randrange(1, 2000)
            sec = usec // 10**6
            lvl = rnd.choice(weighted)
            ts = "2025-11-%02dT%02d:%02d:%02d.%06dZ" % (
                21 + (sec // 86400) % 7, (sec // 3600) % 24, (sec // 60) % 60,
                sec % 60, usec % 10**6)
            line = "\x1b[90m%s\x1b[0m %s%s\x1b[0m [\x1b[35m%s\x1b[0m] %s\n" % (
                ts, lvl[1], lvl[0], rnd.choice(services), rnd.choice(templates)())
            buf.append(line)
            written += len(line)
            if len(buf) >= 8192:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))


def gen_redraw(path, target):
    """Frames like top(1) or a progress UI: home, then 24 absolutely positioned
    rows of 80 visible columns with SGR colours and changing digits."""
    rnd = random.Random(SEED + 1)
    rows, cols = 24, 80
    colours = ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m",
               "\x1b[36m", "\x1b[1;37m", "\x1b[38;5;208m", "\x1b[38;2;120;200;80m"]
    names = ["sealcast", "sshd", "bash", "postgres", "nginx", "kworker/0:1",
             "systemd", "cron", "rsyslogd", "python3", "cargo", "rustc"]
    procs = [[rnd.randrange(1, 99999), rnd.choice(names), rnd.random() * 100,
              rnd.random() * 20, rnd.randrange(1000, 10**6)] for _ in range(rows - 3)]
    written = 0
    frame_no = 0
    with open(path, "w", encoding="ascii", newline="\n") as f:
        chunk = []
        csize = 0
        while written + csize < target:
            frame_no += 1
            out = ["\x1b[H"]
            # title row, reverse video
            title = " frame %8d  load %5.2f %5.2f %5.2f  up %6ds" % (
                frame_no, rnd.random() * 4, rnd.random() * 4, rnd.random() * 4,
                frame_no // 10)
            out.append("\x1b[1;1H\x1b[7m%s\x1b[0m" % title.ljust(cols)[:cols])
            # progress bar row
            pct = (frame_no * 7) % 101
            filled = pct * (cols - 10) // 100
            out.append("\x1b[2;1H\x1b[32m%s\x1b[90m%s\x1b[0m %3d%%     " % (
                "#" * filled, "." * (cols - 10 - filled), pct))
            out.append("\x1b[3;1H\x1b[1m%s\x1b[0m" % (
                "  PID COMMAND           %CPU  %MEM      RSS  STATE".ljust(cols)))
            for r, p in enumerate(procs):
                p[2] = max(0.0, min(100.0, p[2] + rnd.random() * 10 - 5))
                p[3] = max(0.0, min(100.0, p[3] + rnd.random() * 2 - 1))
                p[4] = max(1000, p[4] + rnd.randrange(-5000, 5000))
                colour = colours[(r + frame_no) % len(colours)]
                cpu_col = "\x1b[1;31m" if p[2] > 80 else "\x1b[0m"
                text = "%5d %s%-16s\x1b[0m %s%5.1f\x1b[0m %5.1f %8d  %s" % (
                    p[0], colour, p[1], cpu_col, p[2], p[3], p[4],
                    rnd.choice(["R", "S", "S", "S", "D", "Z"]))
                # visible width is 46; pad to 80 columns, then clear to EOL
                out.append("\x1b[%d;1H%s%s\x1b[K" % (r + 4, text, " " * (cols - 46)))
            frame = "".join(out)
            chunk.append(frame)
            csize += len(frame)
            if csize >= 1 << 20:
                f.write("".join(chunk))
                written += csize
                chunk, csize = [], 0
        f.write("".join(chunk))


# --------------------------------------------------------------------------
# report


def load_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "\t" in line:
                    k, v = line.rstrip("\n").split("\t", 1)
                    out[k] = v
    return out


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt(x, nd=2):
    return "n/a" if x is None else "%.*f" % (nd, x)


def fmt_bytes(n):
    if n is None:
        return "n/a"
    n = float(n)
    for unit in ["B", "KB", "MB", "GB"]:
        if n < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.2f %s" % (n, unit))
        n /= 1000.0
    return "%d B" % n


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def report(workdir):
    meta = load_kv(os.path.join(workdir, "meta.tsv"))
    workloads = meta.get("workloads", "logs redraw seq").split()
    tools = meta.get("tools", "script asciinema sealcast").split()
    inbytes = {w: fnum(meta.get("input_bytes." + w)) for w in workloads}

    # results.tsv: kind tool workload run wall user sys rss_kb out_bytes exit stream_bytes
    rec = {}
    with open(os.path.join(workdir, "results.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 11 or p[0] == "kind":
                continue
            rec.setdefault((p[0], p[1], p[2]), []).append(p)

    def agg(kind, tool, w):
        runs = rec.get((kind, tool, w), [])
        ok = [r for r in runs if r[9] == "0"]
        if not runs:
            return None
        res = {"runs": len(runs), "ok": len(ok), "exits": sorted({r[9] for r in runs})}
        if ok:
            res["wall"] = statistics.median(float(r[4]) for r in ok)
            res["cpu"] = statistics.median(float(r[5]) + float(r[6]) for r in ok)
            res["rss"] = max(int(r[7]) for r in ok)
            res["bytes"] = fnum(ok[-1][8])
            res["stream"] = fnum(ok[-1][10])
        return res

    def status_note(a):
        if a is None:
            return "not run"
        if a["ok"] < a["runs"]:
            return "%d/%d runs failed (exit %s)" % (
                a["runs"] - a["ok"], a["runs"], ",".join(a["exits"]))
        return ""

    out = []
    nruns = meta.get("runs", "3")
    out.append("### Recording: wall time and throughput (median of %s runs)\n" % nruns)
    hdr = ["workload", "input"]
    for t in tools:
        hdr += ["%s wall s" % t, "%s MB/s" % t]
    rows = []
    notes = []
    for w in workloads:
        row = [w, fmt_bytes(inbytes[w])]
        for t in tools:
            a = agg("rec", t, w)
            if a and "wall" in a and a["wall"] > 0 and inbytes[w]:
                row += [fmt(a["wall"], 3), fmt(inbytes[w] / a["wall"] / 1e6, 1)]
            else:
                row += ["FAIL" if a else "n/a", "n/a"]
            n = status_note(a)
            if n and n != "not run":
                notes.append("%s/%s: %s" % (t, w, n))
        rows.append(row)
    out.append(table(hdr, rows))

    out.append("\n### Recording: CPU (user+sys, median) and peak RSS (max of runs)\n")
    hdr = ["workload"]
    for t in tools:
        hdr += ["%s CPU s" % t, "%s RSS KB" % t]
    rows = []
    for w in workloads:
        row = [w]
        for t in tools:
            a = agg("rec", t, w)
            if a and "cpu" in a:
                row += [fmt(a["cpu"], 2), str(a["rss"])]
            else:
                row += ["n/a", "n/a"]
        rows.append(row)
    out.append(table(hdr, rows))

    out.append("\n### Recording: bytes on disk (output of the last run)\n")
    hdr = ["workload", "input"]
    for t in tools:
        hdr.append("%s bytes" % t)
    hdr.append("sealcast stream (zstd -dc)")
    if "asciinema" in tools:
        hdr.append("sealcast / asciinema")
    rows = []
    for w in workloads:
        row = [w, str(int(inbytes[w])) if inbytes[w] else "n/a"]
        for t in tools:
            a = agg("rec", t, w)
            if t == "script":
                row.append("n.a. (0)")
            elif a and a.get("bytes") is not None:
                row.append(str(int(a["bytes"])))
            else:
                row.append("n/a")
        s = agg("rec", "sealcast", w)
        c = agg("rec", "asciinema", w)
        row.append(str(int(s["stream"])) if s and s.get("stream") else "n/a")
        if "asciinema" in tools:
            if s and c and s.get("bytes") and c.get("bytes"):
                row.append("%.4f" % (s["bytes"] / c["bytes"]))
            else:
                row.append("n/a")
        rows.append(row)
    out.append(table(hdr, rows))

    vrows = []
    for w in workloads:
        v = agg("verify", "sealcast", w)
        if v is None:
            continue
        if "wall" in v and v["wall"] > 0 and v.get("stream"):
            vrows.append([w, str(int(v["stream"])), fmt(v["wall"], 3),
                          fmt(v["stream"] / v["wall"] / 1e6, 1), fmt(v["cpu"], 2),
                          str(v["rss"])])
        else:
            vrows.append([w, "n/a", "FAIL", "n/a", "n/a", "n/a"])
        n = status_note(v)
        if n:
            notes.append("verify/%s: %s" % (w, n))
    if vrows:
        out.append("\n### `sealcast verify` (median of %s runs)\n" % nruns)
        out.append(table(["workload", "decompressed bytes", "wall s", "MB/s",
                          "CPU s", "peak RSS KB"], vrows))

    # ---------------------------------------------------------------- targets
    trows = []

    def target(name, measured, op, goal, unit, fmt_nd=2):
        """op: '>=', '>', '<=', '<'. Margin is headroom as a fraction of the
        target: positive means PASS with room, negative means MISS by that much."""
        if measured is None:
            trows.append([name, "n/a", "%s %s%s" % (op, fmt(goal, fmt_nd), unit), "n/a", "n/a"])
            return
        if op in (">=", ">"):
            ok = measured >= goal if op == ">=" else measured > goal
            margin = measured / goal - 1 if goal else 0.0
        else:
            ok = measured <= goal if op == "<=" else measured < goal
            margin = 1 - measured / goal if goal else 0.0
        trows.append([name, fmt(measured, fmt_nd) + unit, "%s %s%s" % (op, fmt(goal, fmt_nd), unit),
                      "PASS" if ok else "MISS", "%+.1f%%" % (margin * 100)])

    def tput(tool, w):
        a = agg("rec", tool, w)
        if a and a.get("wall") and inbytes[w]:
            return inbytes[w] / a["wall"]
        return None

    for w in workloads:
        s, sc, an = tput("sealcast", w), tput("script", w), tput("asciinema", w)
        if "script" in tools:
            target("throughput %s: sealcast / script" % w,
                   s / sc if s and sc else None, ">=", 0.9, "×")
        if "asciinema" in tools:
            target("throughput %s: sealcast / asciinema" % w,
                   s / an if s and an else None, ">", 1.0, "×")
    if "asciinema" in tools:
        for w in workloads:
            s, c = agg("rec", "sealcast", w), agg("rec", "asciinema", w)
            target("bytes on disk %s: sealcast / asciinema" % w,
                   s["bytes"] / c["bytes"] if s and c and s.get("bytes") and c.get("bytes") else None,
                   "<=", 0.1, "×", 4)
    for w in workloads:
        s = agg("rec", "sealcast", w)
        target("recorder peak RSS %s (KB)" % w, float(s["rss"]) if s and "rss" in s else None,
               "<", 16384.0, "", 0)
    for w in workloads:
        v = agg("verify", "sealcast", w)
        target("verify %s (MB/s of decompressed stream)" % w,
               v["stream"] / v["wall"] / 1e6 if v and v.get("wall") and v.get("stream") else None,
               ">=", 1000.0, "", 1)
    out.append("\n### Targets\n")
    out.append(table(["target", "measured", "goal", "result", "margin"], trows))
    npass = sum(1 for r in trows if r[3] == "PASS")
    out.append("\n%d/%d targets PASS. Margin = headroom as a share of the goal "
               "(negative: missed by that much)." % (npass, len(trows)))

    sanity = [v for k, v in sorted(meta.items()) if k.startswith("warn.")]
    if notes or sanity:
        out.append("\n### Warnings\n")
        for n in notes + sanity:
            out.append("- " + n)
    if meta.get("soak"):
        out.append("\n### Soak tests\n")
        out.append(meta["soak"])
    print("\n".join(out))


def main(argv):
    if len(argv) >= 4 and argv[1] == "gen-logs":
        gen_logs(argv[2], int(argv[3]))
    elif len(argv) >= 4 and argv[1] == "gen-redraw":
        gen_redraw(argv[2], int(argv[3]))
    elif len(argv) >= 3 and argv[1] == "report":
        report(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
