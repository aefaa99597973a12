#!/usr/bin/env bash
# Command-level metadata benchmark (bench/RESULTS-cmdmeta.md): hook latency per prompt,
# CPU of process observation, recall by process lifetime. Runs tests/commands_bench.rs (a
# debug build: no release build needed) and prints a markdown report, also written to
# bench/work/cmdmeta.md. Knobs: CMDMETA_PROMPTS (400), CMDMETA_IDLE_SECS (20),
# CMDMETA_RECALL_RUNS (3). Needs bash and zsh; run as root (the recorder reads /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
SEALCAST_CMDMETA_BENCH=1 cargo test --locked --test commands_bench -- --ignored --nocapture \
    --test-threads 1 cmdmeta_bench
