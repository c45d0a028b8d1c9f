#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time each. libFuzzer writes each new input that
# reaches new code into fuzz/corpus/<target>/, which protocol/tests/fuzz_corpus.rs replays in
# CI: commit those files. A crash stops the run, leaves its input under fuzz/artifacts/ and
# prints how to reproduce it; after the fix, copy that input into the target's corpus so CI
# keeps it fixed.
#
#   scripts/fuzz.sh                 every target, 60 s each
#   scripts/fuzz.sh 300             every target, 300 s each
#   scripts/fuzz.sh 30 request      one target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`, installed here when missing). Fuzzing
# needs nightly compiler flags; RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
case "$seconds" in
    '' | *[!0-9]*)
        echo "fuzz: the first argument is seconds per target, got '$seconds'" >&2
        exit 2
        ;;
esac
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^uchat-fuzz$')
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    [ -f "fuzz_targets/$target.rs" ] || {
        echo "fuzz: no target '$target' (fuzz_targets/*.rs)" >&2
        exit 2
    }
    mkdir -p "corpus/$target"
    before=$(find "corpus/$target" -type f | wc -l)
    echo "fuzz: $target for ${seconds}s (corpus: $before inputs)"
    # -rss_limit_mb keeps a runaway allocation a finding rather than a frozen machine.
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0; then
        echo "fuzz: $target found a crash; its input is under fuzz/artifacts/$target/." >&2
        echo "fuzz: reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $target <input>" >&2
        exit 1
    fi
    after=$(find "corpus/$target" -type f | wc -l)
    echo "fuzz: $target: $((after - before)) new inputs in fuzz/corpus/$target"
done
echo "fuzz: done; commit the new corpus files (git status fuzz/corpus)"
