#!/usr/bin/env bash
# The GPU report: runs the test suite on this machine's GPU, then measures it (examples/gpu_report).
#
#   bash scripts/gpu-report.sh [--json FILE] [--allow-software] [--skip-tests] [--prebuilt DIR]
#
# --json FILE       also write the table as JSON
# --allow-software  run on a software adapter (small cases, labelled as not GPU figures)
# --skip-tests      do not run the test suite first (CI runs it on its own)
# --prebuilt DIR    use binaries built elsewhere (no Rust toolchain needed here): DIR holds
#                   gpu_report and tests/ with the test binaries; make it with
#                   `bash scripts/build-prebuilt.sh DIR` on a machine with cargo.
#
# With a GPU driver but no Vulkan loader, see ../shared/GPU.md (the .gl/ loader package).
set -euo pipefail
cd "$(dirname "$0")/.."

json="" allow="" skip_tests="" prebuilt=""
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json="${2:?--json needs a file}"; shift 2 ;;
        --allow-software) allow="--allow-software"; shift ;;
        --skip-tests) skip_tests=1; shift ;;
        --prebuilt) prebuilt="${2:?--prebuilt needs a directory}"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "gpu-report: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
# Mesa's window-system layer complains on every device open without a runtime directory.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

if [ -n "$prebuilt" ]; then
    report="$prebuilt/gpu_report"
    [ -x "$report" ] || { echo "gpu-report: $report is missing or not executable; build the directory with scripts/build-prebuilt.sh" >&2; exit 1; }
    if [ -z "$skip_tests" ]; then
        compgen -G "$prebuilt/tests/*" >/dev/null ||
            { echo "gpu-report: no test binaries in $prebuilt/tests; build the directory with scripts/build-prebuilt.sh, or pass --skip-tests" >&2; exit 1; }
    fi
else
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo >/dev/null ||
        { echo "gpu-report: no cargo here; build elsewhere with scripts/build-prebuilt.sh DIR and pass --prebuilt DIR" >&2; exit 1; }
    cargo build --release --example gpu_report >&2
    report=target/release/examples/gpu_report
fi

tests="skipped"
if [ -z "$skip_tests" ]; then
    # A missing adapter must fail the tests, not skip them.
    export CI=true
    log=$(mktemp)
    status=0
    if [ -n "$prebuilt" ]; then
        for t in "$prebuilt"/tests/*; do
            echo "== $(basename "$t")" >>"$log"
            "$t" >>"$log" 2>&1 || status=1
        done
    else
        cargo test --release >>"$log" 2>&1 || status=1
    fi
    passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
    if [ "$status" -eq 0 ]; then
        tests="passed ($passed tests)"
    else
        failed=$(grep -E '^test .* FAILED$' "$log" | awk '{print $2}' | tr '\n' ' ')
        tests="FAILED: ${failed:-see the log} ($passed passed; log $log)"
        echo "gpu-report: tests failed on this device: $failed (log: $log)" >&2
    fi
fi

args=(--tests "$tests")
[ -n "$allow" ] && args+=("$allow")
[ -n "$json" ] && args+=(--json "$json")
"$report" "${args[@]}"
case "$tests" in FAILED*) exit 1 ;; esac
