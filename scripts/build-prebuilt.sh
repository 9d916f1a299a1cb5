#!/usr/bin/env bash
# Builds what scripts/gpu-report.sh --prebuilt DIR needs, for a GPU machine without a Rust
# toolchain: DIR/gpu_report, DIR/acoustic_adjoint, DIR/bench_batch, DIR/bench_compression and
# DIR/tests/* (every test binary).
#
#   bash scripts/build-prebuilt.sh [DIR]      (default .dev, which ../shared/GPU.md carries)
#
# Then on the GPU machine, from a copy of the repository with DIR in it:
#   bash scripts/gpu-report.sh --prebuilt DIR --json report.json
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
dir="${1:-.dev}"
mkdir -p "$dir/tests"
cargo build --release --example gpu_report --example acoustic_adjoint
cp target/release/examples/gpu_report target/release/examples/acoustic_adjoint "$dir/"
# The batch and compression benches, which gpu-lent.sh runs.
for bench in batch compression; do
    cargo bench --no-run --bench "$bench" --message-format=json 2>/dev/null |
        grep -o "\"executable\":\"[^\"]*$bench-[^\"]*\"" | sed 's/"executable":"\(.*\)"/\1/' |
        while read -r exe; do cp "$exe" "$dir/bench_$bench"; done
done
# The test binaries: cargo names each in its JSON messages, with `"test":true` in its profile
# (the examples it also builds are not tests).
rm -f "$dir"/tests/*
cargo test --release --no-run --message-format=json 2>/dev/null |
    grep '"test":true' | grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' |
    while read -r exe; do cp "$exe" "$dir/tests/"; done
ls "$dir/tests" | wc -l | xargs printf "build-prebuilt: %s test binaries in $dir/tests\n"
