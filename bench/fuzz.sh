#!/usr/bin/env bash
# Run every cargo-fuzz target for FUZZ_SECS seconds (default 60), seeded with the test vectors.
# The toolchain here is stable; RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the flags it needs.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${FUZZ_SECS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in $(cd fuzz_targets && ls *.rs | sed "s/\.rs$//"); do
    mkdir -p "corpus/$target"
    case $target in
        verify | reader | agree | replay) cp ../format-spec/vectors/*.cast.zst "corpus/$target/" ;;
        notes | sshsig) cp ../format-spec/vectors/*.seal ../format-spec/vectors/allowed_signers "corpus/$target/" ;;
        classify_command)
            i=0
            for c in 'scp -t /tmp' 'scp -r -p -d -f -- -x' 'internal-sftp -l INFO' \
                'rsync --server --sender -vlogDtpre.iLsfxCIvu . a\ b' 'scp -t /tmp; echo MARK'; do
                printf '%s' "$c" >"corpus/$target/seed-$i"
                i=$((i + 1))
            done
            ;;
    esac
    echo "== fuzz $target for ${secs}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 |
        grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|.*panicked)' || true
    ls artifacts/"$target" 2>/dev/null | grep -q . && { echo "crash artifacts in fuzz/artifacts/$target"; exit 1; }
done
echo "no crashes"
