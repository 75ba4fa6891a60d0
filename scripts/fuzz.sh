#!/usr/bin/env bash
# Fuzzes the decoder and the id/key parsers with cargo-fuzz (libFuzzer), which needs a nightly
# toolchain. Usage: scripts/fuzz.sh [TARGET] [SECONDS]   (targets: decode, parse_key; default both,
# 60 s each). New crashes land in fuzz/artifacts/TARGET/; add the interesting inputs to
# fuzz/corpus/TARGET/ so `cargo test` replays them forever (tests/it/fuzz_corpus.rs).
# Without nightly, the corpus replay and the bounded random test in `cargo test` still run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz.sh: no nightly toolchain; trying to install it (rustup toolchain install nightly)" >&2
    rustup toolchain install nightly --profile minimal || {
        echo "fuzz.sh: nightly is not available here; cargo test still replays fuzz/corpus" >&2
        exit 2
    }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || {
        echo "fuzz.sh: cannot install cargo-fuzz; cargo test still replays fuzz/corpus" >&2
        exit 2
    }
fi

targets=("${1:-decode}")
[[ $# -eq 0 ]] && targets=(decode parse_key)
seconds="${2:-60}"
for target in "${targets[@]}"; do
    echo "==> cargo fuzz run $target (${seconds}s)"
    # Fuzz into a scratch copy so the committed corpus only grows by hand-picked inputs.
    scratch="$(mktemp -d)"
    cp -r "fuzz/corpus/$target/." "$scratch/"
    cargo +nightly fuzz run "$target" "$scratch" -- -max_total_time="$seconds" -max_len=8192
    rm -rf "$scratch"
done
